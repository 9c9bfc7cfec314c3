"""The one small protocol every backend implements, and the values it exchanges."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.assistant import AssistantConfig
from bot.types import ConversationKey, Usage
from storage.messages import HistoryMessage

OnDelta = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Turn:
    """One user turn to answer: what was said, by whom, where, under which assistant config."""

    key: ConversationKey
    user_id: str
    text: str
    config: AssistantConfig
    conversation_id: int
    backend_conversation_id: str | None = None
    # Images attached to the message, as data URLs, and the channel's vision detail setting.
    images: tuple[str, ...] = ()
    image_detail: str = "auto"


@dataclass(frozen=True, slots=True)
class TurnResult:
    text: str
    usage: Usage
    response_id: str | None = None
    # The backend conversation id to store when the backend created one during this turn.
    new_backend_conversation_id: str | None = None
    # History to persist with the run (chat backend only).
    history: tuple[HistoryMessage, ...] = ()
    # Shown after the answer, e.g. "(cut short: the answer hit the output token limit)".
    notice: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class Backend(Protocol):
    name: str

    async def reply(self, turn: Turn, on_delta: OnDelta) -> TurnResult:
        """Answer `turn`, calling `on_delta` with each text delta as it arrives. Raise
        `bot.errors.UserError` (or an OpenAI SDK exception) on failure."""
        ...
