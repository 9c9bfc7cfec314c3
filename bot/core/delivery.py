"""What the core asks of an adapter to deliver answers: replies, and streamed text."""

from __future__ import annotations

from typing import Protocol

from bot.core.types import Actor, ConversationKey, Reply


class DeliveryFailed(Exception):
    """An adapter could not deliver a reply, after the retries the platform allows. `reason`
    names the platform's error (never a token or the reply's text): it goes into the run's
    record and the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def delivery_reason(exc: BaseException) -> str:
    """A short, safe description of a failed delivery: the adapter's `DeliveryFailed` reason,
    else the exception's type with the HTTP status / platform error code it carries."""
    if isinstance(exc, DeliveryFailed):
        return exc.reason
    parts = [type(exc).__name__]
    for name in ("status", "code"):
        value = getattr(exc, name, None)
        if isinstance(value, int | str) and value not in ("", 0):
            parts.append(str(value))
    response = getattr(exc, "response", None)
    error = response.get("error") if hasattr(response, "get") else None
    if isinstance(error, str):
        parts.append(error)
    return " ".join(parts)[:300]


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
