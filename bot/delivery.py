"""What the core asks of an adapter to deliver answers: replies, and streamed text."""

from __future__ import annotations

from typing import Protocol

from bot.types import Actor, ConversationKey, Reply


class TextStream(Protocol):
    """One answer being shown progressively. The adapter decides the cadence (throttled edits,
    Slack chat streaming, or nothing until the end), so `append` must be cheap."""

    async def append(self, delta: str) -> None: ...

    async def finish(self, text: str) -> None:
        """The answer is complete: `text` is authoritative (split at platform limits as needed)."""
        ...

    async def abort(self) -> None:
        """The answer failed midway: keep what was shown, mark it unfinished. Never raises."""
        ...


class Outbox(Protocol):
    async def send(self, reply: Reply) -> None: ...

    def open_stream(self, key: ConversationKey, in_reply_to: str, actor: Actor) -> TextStream: ...
