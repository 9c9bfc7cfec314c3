"""A recording adapter for core tests: it implements the core's `Outbox` and keeps everything
delivered, so tests read what a platform would have shown."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.core.types import Actor, ConversationKey, Reply


@dataclass
class RecordedStream:
    key: ConversationKey
    in_reply_to: str
    deltas: list[str] = field(default_factory=list)
    final: str | None = None
    aborted: bool = False


class RecordingStream:
    def __init__(self, record: RecordedStream, shown: list[str]) -> None:
        self.record = record
        self._shown = shown

    async def append(self, delta: str) -> None:
        self.record.deltas.append(delta)

    async def finish(self, text: str) -> None:
        self.record.final = text
        self._shown.append(text)

    async def abort(self) -> None:
        self.record.aborted = True


class RecordingOutbox:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.streams: list[RecordedStream] = []
        self.shown: list[str] = []  # final answers and replies, in delivery order
        self.fail_next_stream: Exception | None = None

    async def send(self, reply: Reply) -> None:
        self.replies.append(reply)
        self.shown.append(reply.text)

    def open_stream(self, key: ConversationKey, in_reply_to: str, actor: Actor) -> RecordingStream:
        if self.fail_next_stream is not None:
            exc, self.fail_next_stream = self.fail_next_stream, None
            raise exc
        record = RecordedStream(key, in_reply_to)
        self.streams.append(record)
        return RecordingStream(record, self.shown)
