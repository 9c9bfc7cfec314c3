"""The Discord stream on a recording channel: cadence, cheap appends, prompt final flush,
split parts in order, abort. (The wire tests run it against the Discord fake.)"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from adapters.discord.stream import INTERRUPTED, ChannelThrottle, DiscordStream


class Msg:
    def __init__(self, channel: Channel, content: str) -> None:
        self.channel = channel
        self.content = content

    async def edit(self, *, content: str) -> Msg:
        self.channel.calls.append(("edit", content, time.monotonic()))
        self.content = content
        return self

    async def delete(self) -> None:
        self.channel.calls.append(("delete", self.content, time.monotonic()))
        self.channel.sent.remove(self)


class Channel:
    def __init__(self, cid: int = 1) -> None:
        self.id = cid
        self.sent: list[Msg] = []
        self.calls: list[tuple[str, str, float]] = []
        self.typings = 0

    async def send(self, content: str, **kwargs: Any) -> Msg:
        self.calls.append(("send", content, time.monotonic()))
        message = Msg(self, content)
        self.sent.append(message)
        return message

    async def typing(self) -> None:
        self.typings += 1


def stream(channel: Channel, throttle: ChannelThrottle, **kw: Any) -> DiscordStream:
    kw.setdefault("first_delay", 0.0)
    return DiscordStream(channel, reference=None, throttle=throttle, **kw)


async def test_appends_are_buffered_and_edits_keep_the_channel_cadence() -> None:
    channel = Channel()
    s = stream(channel, ChannelThrottle(0.2))
    await asyncio.sleep(0)
    assert channel.typings == 1
    start = time.monotonic()
    for i in range(200):
        await s.append(f"w{i} ")
        await asyncio.sleep(0.005)
    await s.finish("the end")
    elapsed = time.monotonic() - start
    writes = [t for kind, _, t in channel.calls]
    assert len(channel.calls) <= elapsed / 0.2 + 2  # never one call per delta
    streamed = writes[:-1]
    assert all(b - a >= 0.18 for a, b in itertools.pairwise(streamed))
    assert [m.content for m in channel.sent] == ["the end"]


async def test_finish_does_not_wait_for_the_next_slot() -> None:
    channel = Channel()
    s = stream(channel, ChannelThrottle(5.0))
    await s.append("first words")
    await asyncio.sleep(0.05)  # shown at once, the next slot is 5 s away
    await s.append(" and more")
    start = time.monotonic()
    await s.finish("first words and more")
    assert time.monotonic() - start < 0.5
    assert [m.content for m in channel.sent] == ["first words and more"]


async def test_long_final_text_is_split_into_ordered_messages() -> None:
    channel = Channel()
    s = stream(channel, ChannelThrottle(0.05))
    text = " ".join(f"w{i:04d}" for i in range(900))
    await s.append(text[:3000])
    await asyncio.sleep(0.1)
    await s.finish(text)
    assert "".join(m.content for m in channel.sent) == text
    assert all(len(m.content) <= 2000 for m in channel.sent)


async def test_two_channels_do_not_share_a_cadence() -> None:
    throttle = ChannelThrottle(1.0)
    a, b = Channel(1), Channel(2)
    sa, sb = stream(a, throttle), stream(b, throttle)
    await sa.append("in a")
    await sb.append("in b")
    await asyncio.sleep(0.1)
    assert [m.content for m in a.sent] == ["in a"] and [m.content for m in b.sent] == ["in b"]
    await sa.finish("in a")
    await sb.finish("in b")


async def test_abort_keeps_what_arrived_and_marks_it() -> None:
    channel = Channel()
    s = stream(channel, ChannelThrottle(10.0), first_delay=5.0)
    await s.append("half an ans")
    await s.abort()  # never flushed yet: still shown, marked
    assert [m.content for m in channel.sent] == ["half an ans" + INTERRUPTED]
    quiet = Channel()
    s2 = stream(quiet, ChannelThrottle(1.0))
    await s2.abort()
    assert quiet.sent == []
