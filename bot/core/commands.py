"""The slash commands of the public contract (`shared/design/contract.md`), the same names on
every platform. Adapters register all of them; a command whose capability is not in this build
answers so, plainly."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CommandInfo:
    name: str
    usage: str
    description: str
    admin_only: bool = False


CONTRACT_COMMANDS: tuple[CommandInfo, ...] = (
    CommandInfo("imagine", "prompt [size] [quality] [background] [count]", "Generate images"),
    CommandInfo("edit", "prompt image [mask]", "Edit an image"),
    CommandInfo("variation", "image [count]", "Variations of an image"),
    CommandInfo("speak", "text [voice]", "Text to speech, posted as an audio file"),
    CommandInfo("transcribe", "audio [language]", "Speech to text"),
    CommandInfo("translate", "audio", "Speech to English text"),
    CommandInfo("reset", "", "Start a new conversation here"),
    CommandInfo("cancel", "", "Stop the answer in progress here"),
    CommandInfo("steps", "", "What the assistant did for the last answer here (code, tools)"),
    CommandInfo(
        "assistant",
        "[set [workspace] FIELD VALUE | reset | history | knowledge add/list/remove]",
        "Show or configure this channel's assistant (changes: admins)",
    ),
    CommandInfo(
        "usage",
        "[me|channel|workspace] [today|7d|30d|all] | budget [AMOUNT|off] | moderation [on|off]",
        "Tokens and cost; budget and moderation settings (changes: admins)",
    ),
)

COMMAND_NAMES = frozenset(c.name for c in CONTRACT_COMMANDS)

# Commands that spend money at OpenAI: subject to rate limits and budgets like messages.
METERED_COMMANDS = frozenset({"imagine", "edit", "variation", "speak", "transcribe", "translate"})
