"""The chat backend's history: what of it fits a request, and its running summary.

The history is the conversation's stored messages, oldest first. When it no longer fits the
request's budget (`bot.backends.context.ContextBudget`), its oldest messages are summarised
(by the chat backend, with the model) and the summary is stored as one more message, marked
with `SUMMARY_MARK`, followed by copies of the messages kept verbatim. Storage is append-only:
a summary stands for everything stored before it, so a request reads from the last summary on.
Without a summary (the call failed, or no room for one), the oldest messages are dropped.

Tokens are estimated (`bot.backends.context.estimate_tokens`), not counted with a tokenizer:
tiktoken downloads its vocabularies at run time, and compatible servers use other tokenizers
anyway, so the budget is a safety margin, not an exact count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.backends.context import estimate_tokens
from storage.messages import HistoryMessage

# Starts a stored summary (an "assistant" row: the messages table knows only user/assistant).
# Invisible separators, so no answer of the model starts with it (`stored_answer` makes sure).
SUMMARY_MARK = "\u2063summary\u2063\n"
SUMMARY_INTRO = "Summary of the earlier conversation (older messages are no longer shown):\n"


@dataclass(frozen=True, slots=True)
class Window:
    """The history a request carries: the running summary ("" for none) and the messages
    after it that fit, plus those that did not (`dropped`, oldest first)."""

    summary: str
    kept: tuple[HistoryMessage, ...]
    dropped: tuple[HistoryMessage, ...] = ()


def split_summary(history: Sequence[HistoryMessage]) -> tuple[str, list[HistoryMessage]]:
    """(the last stored summary or "", the messages stored after it)."""
    for index in range(len(history) - 1, -1, -1):
        message = history[index]
        if message.role == "assistant" and message.content.startswith(SUMMARY_MARK):
            return message.content[len(SUMMARY_MARK) :], list(history[index + 1 :])
    return "", list(history)


def cost(messages: Sequence[HistoryMessage]) -> int:
    return sum(estimate_tokens(m.content) for m in messages)


def fit(messages: Sequence[HistoryMessage], budget: int) -> tuple[list[HistoryMessage], list]:
    """(the most recent messages within `budget` tokens, the older ones): the kept part never
    opens on an assistant message whose question was dropped."""
    used, start = 0, len(messages)
    while start > 0:
        more = estimate_tokens(messages[start - 1].content)
        if used + more > budget:
            break
        used += more
        start -= 1
    while start < len(messages) and messages[start].role != "user":
        start += 1
    return list(messages[start:]), list(messages[:start])


def stored_summary(summary: str) -> HistoryMessage:
    return HistoryMessage("assistant", SUMMARY_MARK + summary)


def stored_answer(text: str) -> HistoryMessage:
    """An answer as stored: never mistaken for a summary."""
    return HistoryMessage("assistant", " " + text if text.startswith(SUMMARY_MARK) else text)


def system_text(instructions: str, summary: str) -> str:
    """The system message: the instructions, then the summary (one system message, which every
    compatible server accepts)."""
    if not summary:
        return instructions
    return "\n\n".join(part for part in (instructions, SUMMARY_INTRO + summary) if part)


def transcript(summary: str, messages: Sequence[HistoryMessage], budget: int) -> str:
    """What the summariser reads: the previous summary and the messages to fold in (their most
    recent part, when all of it exceeds `budget` tokens)."""
    lines = [f"{'Assistant' if m.role == 'assistant' else 'User'}: {m.content}" for m in messages]
    kept: list[str] = []
    room = budget - (estimate_tokens(summary) if summary else 0)
    for line in reversed(lines):
        room -= estimate_tokens(line)
        if room < 0:
            break
        kept.insert(0, line)
    head = f"Summary so far:\n{summary}\n\nMessages since:\n" if summary else "Messages:\n"
    return head + "\n\n".join(kept)
