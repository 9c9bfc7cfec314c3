"""The Discord stream on a recording channel: cadence, cheap appends, prompt final flush,
split parts in order, abort. (The wire tests run it against the Discord fake.)"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from adapters.discord.stream import INTERRUPTED, ChannelThrottle, DiscordStream
from testing.waiting import until


class Msg:
    def __init__(self, channel: Channel, content: str) -> None:
        self.channel = channel
        self.content = content

    async def edit(self, *, content: str, **flags: Any) -> Msg:
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
    kw.setdefault("typing_after", 0.0)
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
    s = stream(channel, ChannelThrottle(5.0, clock=Clock()))  # time stands still: no next slot
    await s.append("first words")
    await until(lambda: channel.sent, what="the first words shown at once")
    await s.append(" and more")
    await asyncio.wait_for(s.finish("first words and more"), 30)  # waiting would never end
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
    throttle = ChannelThrottle(1.0, clock=Clock())  # time stands still: a shared slot never comes
    a, b = Channel(1), Channel(2)
    sa, sb = stream(a, throttle), stream(b, throttle)
    await sa.append("in a")
    await sb.append("in b")
    await until(lambda: a.sent and b.sent, what="both channels' first words")
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


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def spend(throttle: ChannelThrottle, channel: int = 1, *, final: bool = False) -> None:
    """One write that starts and ends at the clock's time."""
    await throttle.wait(channel, final=final)
    throttle.note(channel)


async def test_budget_keeps_a_write_for_the_final_text() -> None:
    clock = Clock()
    throttle = ChannelThrottle(1.0, limit=5, window=5.0, clock=clock)
    for _ in range(4):  # streamed writes, one per interval
        assert throttle.delay(1) == 0
        await spend(throttle)
        clock.now += 1.0
    clock.now -= 0.5  # 3.5 s after the first write: four writes in the window
    assert throttle.delay(1) == 1.5  # a fifth streamed write waits for the first to leave it
    assert throttle.delay(1, final=True) == 0  # the kept write
    await spend(throttle, final=True)
    assert throttle.delay(1, final=True) == 1.5  # now even a final write waits for the window
    assert throttle.delay(2) == 0 and throttle.delay(2, final=True) == 0  # other channels


async def test_streamed_writes_keep_the_interval_and_finals_do_not() -> None:
    clock = Clock()
    throttle = ChannelThrottle(1.3, clock=clock)
    assert throttle.window == 1.3 * 4
    await spend(throttle)
    clock.now += 0.3
    assert abs(throttle.delay(1) - 1.0) < 1e-9
    assert throttle.delay(1, final=True) == 0


async def test_a_write_in_flight_counts_until_it_ends() -> None:
    clock = Clock()
    throttle = ChannelThrottle(1.0, limit=2, window=5.0, clock=clock)
    await throttle.wait(1)  # started, not ended
    clock.now += 10.0
    assert throttle.delay(1) > 0  # still in flight: it holds its place
    assert throttle.delay(1, final=True) == 0
    throttle.note(1)
    clock.now += 5.0
    assert throttle.delay(1) == 0


async def test_sequences_within_the_budget_never_exceed_it_in_any_window() -> None:
    clock = Clock()
    throttle = ChannelThrottle(0.7, limit=5, window=5.0, clock=clock)
    starts: list[float] = []
    for step in range(400):  # a stream that wants to write every 0.1 s, a final every 13th
        clock.now += 0.1
        final = step % 13 == 0
        if throttle.delay(1, final=final) == 0:
            starts.append(clock.now)
            await spend(throttle, final=final)
    assert len(starts) >= 35  # close to the 40 the budget allows in 40 s
    for i, start in enumerate(starts):
        assert sum(1 for s in starts[i:] if s < start + 5.0) <= 5


async def test_first_text_shows_at_once_then_the_channel_budget_paces_edits() -> None:
    channel = Channel()
    throttle = ChannelThrottle(0.2, limit=3)  # 3 writes per 0.4 s, streamed edits 0.2 s apart
    s = stream(channel, throttle)
    await s.append("first")
    await until(lambda: channel.sent, what="the first word shown")
    assert [m.content for m in channel.sent] == ["first"]  # no waiting for more words
    for i in range(60):
        await s.append(f" w{i}")
        await asyncio.sleep(0.01)
    await s.finish("done")
    times = [t for _, _, t in channel.calls]
    for i, start in enumerate(times):  # never more than the budget in any window
        assert sum(1 for t in times[i:] if t < start + 0.39) <= 3
    assert [m.content for m in channel.sent] == ["done"]


async def test_typing_shows_only_when_the_first_words_are_slow() -> None:
    fast, slow = Channel(1), Channel(2)
    throttle = ChannelThrottle(0.05)
    quick = stream(fast, throttle, typing_after=0.2)
    await quick.append("at once")
    await quick.finish("at once")
    await asyncio.sleep(0.3)
    assert fast.typings == 0  # the answer started before a typing call was due
    late = stream(slow, throttle, typing_after=0.05)
    await until(lambda: slow.typings, what="typing while the first words are slow")
    assert slow.typings == 1  # the next one is due 8 s later
    await late.finish("late")
