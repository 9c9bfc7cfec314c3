"""The one command table: every slash command's name, options, who may run it, how it is
scheduled and metered. The Discord app commands, the Slack manifest's slash commands, the
adapters' listeners and the dispatcher's routing are all built from `COMMANDS`; handlers are
bound to the rows once, at wiring (`CommandTable`). Adding a command is one row here and one
handler in `bot.app`.

Names are the public contract (`shared/design/contract.md`): the same on every platform.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from bot.core.types import CommandCall, Inbound, Reply

OptionKind = Literal["text", "choice", "count", "file"]
# `admins`: channel or workspace admins (`bot.core.admins`); `workspace_admins`: only the latter.
Access = Literal["everyone", "admins", "workspace_admins"]


@dataclass(frozen=True, slots=True)
class Option:
    """One named option. `text` options are joined, in order, into `CommandCall.text` (what a
    Slack user types after the command); `file` options become attachments."""

    name: str
    description: str
    kind: OptionKind = "text"
    required: bool = False
    choices: tuple[str, ...] = ()
    min_length: int = 1
    max_length: int = 4000
    in_text: bool = False


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One row of the table.

    - `access`: `admins` (channel or workspace admins) and `workspace_admins` are checked by the
      dispatcher before the handler runs; `everyone` commands may still check admin rights for
      some of their arguments (`/assistant set`).
    - `ordered`: waits its turn in the conversation's lane (it touches the conversation's
      state); unordered commands (image generation, speech) run beside it, under the global
      concurrency limit only.
    - `metered`: spends money at OpenAI: subject to the rate limit and budgets like a message.
    - `preempt`: cancels the answer in progress in the conversation when it arrives (`/reset`).
    - `control`: never refused for load: it is how a user gets out of it (`/cancel`, `/reset`).
    - `in_message`: may also be typed at the start of a message to the bot, with its files
      (Slack's slash commands cannot carry files).
    - `private`: the reply is for the caller only (Discord defers ephemerally).
    """

    name: str
    usage: str
    description: str
    options: tuple[Option, ...] = ()
    access: Access = "everyone"
    ordered: bool = True
    metered: bool = False
    preempt: bool = False
    control: bool = False
    in_message: bool = False
    private: bool = False

    @property
    def text_options(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options if o.in_text)


_SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536")
_QUALITIES = ("auto", "low", "medium", "high")

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "imagine",
        "prompt [size] [quality] [background] [count]",
        "Generate images",
        options=(
            Option("prompt", "What to draw", required=True, in_text=True),
            Option("size", "Image size", kind="choice", choices=_SIZES),
            Option("quality", "Rendering quality", kind="choice", choices=_QUALITIES),
            Option(
                "background", "Background", kind="choice", choices=("auto", "transparent", "opaque")
            ),
            Option("count", "How many images (1-4)", kind="count"),
        ),
        ordered=False,
        metered=True,
        in_message=True,
    ),
    CommandSpec(
        "edit",
        "prompt image [mask]",
        "Edit an image",
        options=(
            Option("prompt", "What to change", required=True, in_text=True),
            Option("image", "The image to edit", kind="file", required=True),
            Option("mask", "Transparent = area to change", kind="file"),
        ),
        ordered=False,
        metered=True,
        in_message=True,
    ),
    CommandSpec(
        "variation",
        "image [count]",
        "Variations of an image",
        options=(
            Option("image", "The image to vary", kind="file", required=True),
            Option("count", "How many variations (1-4)", kind="count"),
        ),
        ordered=False,
        metered=True,
        in_message=True,
    ),
    CommandSpec(
        "speak",
        "text [voice]",
        "Text to speech, posted as an audio file",
        options=(
            Option("text", "What to say", required=True, in_text=True),
            Option("voice", "Voice name (optional)", max_length=40),
        ),
        ordered=False,
        metered=True,
        in_message=True,
    ),
    CommandSpec(
        "transcribe",
        "audio [language]",
        "Speech to text",
        options=(
            Option("audio", "A voice note or audio file", kind="file", required=True),
            Option("language", "e.g. en, fr (optional)", min_length=2, max_length=12),
        ),
        ordered=False,
        metered=True,
        in_message=True,
    ),
    CommandSpec(
        "translate",
        "audio",
        "Speech to English text",
        options=(Option("audio", "A voice note or audio file", kind="file", required=True),),
        ordered=False,
        metered=True,
        in_message=True,
    ),
    CommandSpec("reset", "", "Start a new conversation here", preempt=True, control=True),
    CommandSpec("cancel", "", "Stop the answer in progress here", ordered=False, control=True),
    CommandSpec(
        "steps",
        "",
        "What the assistant did for the last answer here (code, tools)",
        private=True,  # tool arguments and code output can be private
    ),
    CommandSpec(
        "assistant",
        "[set [workspace] FIELD VALUE | reset | history | knowledge add/list/remove]",
        "Show or configure this channel's assistant (changes: admins)",
        options=(
            Option(
                "args",
                "Empty to show; set FIELD VALUE | reset | history | knowledge add/list/remove",
                in_text=True,
            ),
            Option(
                "file",
                "knowledge add: a file for file search; set format: a .json schema",
                kind="file",
            ),
            Option("file2", "knowledge add: another file", kind="file"),
            Option("file3", "knowledge add: another file", kind="file"),
        ),
        # Unordered: `knowledge add` waits for OpenAI to process files, which must not hold up
        # the channel's conversation; configuration writes are serialised by their own lock.
        ordered=False,
        in_message=True,
        private=True,
    ),
    CommandSpec(
        "usage",
        "[me|channel|workspace] [today|7d|30d|all] | budget [AMOUNT|off] | moderation [on|off]",
        "Tokens and cost; budget and moderation settings (changes: admins)",
        options=(
            Option(
                "scope",
                "Whose usage (default: me), or budget / moderation settings",
                kind="choice",
                choices=("me", "channel", "workspace", "budget", "moderation"),
                in_text=True,
            ),
            Option(
                "period",
                "Which period (default: 30d)",
                kind="choice",
                choices=("today", "7d", "30d", "all"),
                in_text=True,
            ),
            Option(
                "value",
                "budget: dollars or off; moderation: on, off or default (admins)",
                in_text=True,
            ),
        ),
        ordered=False,
        private=True,
    ),
    CommandSpec(
        "status",
        "",
        "The bot's state: adapters, models, breaker, queues, recent runs, today's spend",
        access="workspace_admins",
        ordered=False,
        private=True,
    ),
)

SPECS: Mapping[str, CommandSpec] = {spec.name: spec for spec in COMMANDS}
COMMAND_NAMES = frozenset(SPECS)

CommandHandler = Callable[[CommandCall], Awaitable[Reply | None]]


@dataclass(frozen=True, slots=True)
class Command:
    """A row bound to its handler."""

    spec: CommandSpec
    handler: CommandHandler

    @property
    def name(self) -> str:
        return self.spec.name


class CommandTable:
    """The rows of `COMMANDS` that this build has handlers for. A row without a handler is still
    registered on the platforms (the contract's names), and answers that it is not available."""

    def __init__(self, handlers: Mapping[str, CommandHandler]) -> None:
        unknown = set(handlers) - COMMAND_NAMES
        if unknown:
            raise ValueError(f"handlers for commands not in the table: {sorted(unknown)}")
        self._bound = {name: Command(SPECS[name], h) for name, h in handlers.items()}

    def get(self, name: str) -> Command | None:
        return self._bound.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._bound

    def __iter__(self) -> Iterator[Command]:
        return iter(self._bound.values())

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._bound)

    def handlers(self) -> dict[str, CommandHandler]:
        """The bound handlers by name (a copy: build a new table to change them)."""
        return {name: command.handler for name, command in self._bound.items()}


def message_command(event: Inbound) -> CommandCall | None:
    """The command a message spells (`/transcribe fr` with a file attached), or None."""
    text = event.text.strip()
    if not text.startswith("/"):
        return None
    name, _, rest = text[1:].partition(" ")
    spec = SPECS.get(name.lower())
    if spec is None or not spec.in_message:
        return None
    return CommandCall(
        event.key,
        event.actor,
        spec.name,
        event.event_id,
        text=rest.strip(),
        attachments=event.attachments,
        received_at=event.received_at,
    )
