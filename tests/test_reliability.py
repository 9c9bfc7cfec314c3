"""Core layer under faults: the real app and openai SDK against the loopback fake OpenAI with
injected failures (a seeded soak, the circuit breaker, the retry budget) and back-pressure."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.core.dispatcher import BUSY, TOO_BUSY
from bot.core.types import CommandCall, ConversationKey, Inbound
from storage import inbox
from testing.fakes.openai_fake import FakeOpenAI, FakeTurn
from tests.harness import KEY, USER, Harness, make_settings

# Every way a turn may legitimately end besides its answer: one clear message each.
TOLD = (
    "rate limited",
    "server error",
    "took too long",
    "lost the connection",
    "OpenAI is unavailable right now",
)


async def until(predicate: Callable[[], Any], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def replies_by_event(bot: Harness) -> dict[str, list[str]]:
    """Everything delivered, by the message it answers: finished streams and replies."""
    out: dict[str, list[str]] = {}
    for stream in bot.outbox.streams:
        if stream.final is not None:
            out.setdefault(stream.in_reply_to, []).append(stream.final)
    for reply in bot.outbox.replies:
        out.setdefault(reply.in_reply_to, []).append(reply.text)
    return out


SOAK_TURNS = 500
SOAK_FAULTS = ("rate_limit", "server_error", "timeout", "break")


@pytest.mark.parametrize("backend", ["responses", "chat"])
async def test_fault_soak_absorbs_transient_faults(
    fake: FakeOpenAI, tmp_path: Path, backend: str
) -> None:
    """500 turns with 20% of OpenAI requests failing (429, 500, timeouts, streams dropped after
    text was shown): at least 99% answered, the rest told, each exactly once, the bot alive."""
    settings = make_settings(
        fake.base_url,
        tmp_path,
        SWITCHBOARD_BACKEND=backend,
        SWITCHBOARD_OPENAI_MAX_RETRIES=3,  # the default
        SWITCHBOARD_OPENAI_TIMEOUT=0.5,  # a "timeout" fault costs this much, not 120 s
        SWITCHBOARD_BUSY_QUEUED_PER_CONVERSATION=100,
        SWITCHBOARD_MAX_CONCURRENCY=32,
        SWITCHBOARD_MAX_QUEUED_PER_USER=1000,  # one user sends everything here
    )
    bot = await Harness.start(settings)
    try:
        fake.fail_randomly(0.2, SOAK_FAULTS, seed=20)
        keys = [ConversationKey("test", "W1", f"C{n}") for n in range(50)]
        sent: list[Inbound] = []
        for n in range(SOAK_TURNS):
            message = bot.message(f"turn {n} of the soak", key=keys[n % len(keys)])
            sent.append(message)
            assert await bot.app.dispatcher.submit(message)
        await asyncio.wait_for(bot.app.dispatcher.wait_idle(), 120)

        delivered = replies_by_event(bot)
        answered = 0
        for message in sent:
            (text,) = delivered.pop(message.message_id)  # exactly one reply: none lost, no twice
            if text == f"echo: {message.text}":
                answered += 1
            else:
                assert any(words in text for words in TOLD), text
        assert delivered == {}
        assert set(fake.random_faults) == set(SOAK_FAULTS)
        assert len(fake.random_faults) >= 0.15 * SOAK_TURNS
        assert answered >= 0.99 * SOAK_TURNS, answered
        statuses = Counter(run["status"] for run in await _runs(bot))
        assert statuses["completed"] == answered
        assert set(statuses) <= {"completed", "failed"}
        assert await inbox.pending(bot.app.db) == []  # every event settled
        found = await bot.app.ledger.check(stale_after=3600)  # one ending each, as delivered
        assert found.outcomes == {"answered": answered, "told": SOAK_TURNS - answered} or (
            answered == SOAK_TURNS and found.outcomes == {"answered": SOAK_TURNS}
        )
        assert found.without == 0
        if backend == "responses":  # dropped background streams were resumed, not restarted
            assert any(r.method == "GET" and r.query.get("stream") for r in fake.requests)

        fake.fail_randomly(0)
        await until(lambda: bot.app.breaker is not None and bot.app.breaker.retry_in() is None)
        assert await bot.say("still there?") == "echo: still there?"
    finally:
        await bot.close()


async def test_circuit_breaker_opens_answers_at_once_and_a_probe_closes_it(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    settings = make_settings(
        fake.base_url,
        tmp_path,
        SWITCHBOARD_BREAKER_FAILURES=3,
        SWITCHBOARD_BREAKER_COOLDOWN=30,
        SWITCHBOARD_BREAKER_MAX_COOLDOWN=100,
    )
    bot = await Harness.start(settings)
    breaker = bot.app.breaker
    assert breaker is not None
    now = [1000.0]
    breaker.clock = lambda: now[0]  # the cool-downs pass when the test says so
    try:
        assert await bot.say("warm up") == "echo: warm up"  # the conversation exists
        # Three answers that failed despite their retries (a try and two retries each).
        fake.fail_next("server_error", times=9)
        for n in range(3):
            assert "server error" in await bot.say(f"one.{n}")
        assert breaker.state == "open"

        requests = len(fake.requests)
        created = len(await _runs(bot))
        now[0] += 12.5
        reply = await bot.say("two")
        assert reply.startswith("OpenAI is unavailable right now; I'll try again in 18 s")
        assert len(fake.requests) == requests  # no work went out or piled up
        assert len(await _runs(bot)) == created

        now[0] += 17.5  # the cool-down is over: half-open
        fake.fail_next("server_error")  # the probe fails: open again, for twice as long
        assert "server error" in await bot.say("three")
        assert breaker.state == "open" and breaker.times_opened == 2
        assert len(fake.requests) == requests + 1  # the probe only, no retries while open
        assert "try again in 60 s" in await bot.say("three and a half")

        now[0] += 60
        assert await bot.say("four") == "echo: four"  # the probe succeeds
        assert breaker.state == "closed"
        assert await bot.say("five") == "echo: five"
    finally:
        await bot.close()


async def test_the_retry_budget_limits_how_long_one_answer_retries(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    settings = make_settings(
        fake.base_url,
        tmp_path,
        SWITCHBOARD_OPENAI_MAX_RETRIES=5,
        SWITCHBOARD_OPENAI_RETRY_MAX_WAIT=5.0,
        SWITCHBOARD_OPENAI_RETRY_BUDGET=1.0,
    )
    bot = await Harness.start(settings)
    try:
        assert await bot.say("warm up") == "echo: warm up"
        before = len(fake.requests)
        fake.fail_next("rate_limit", times=6, retry_after=0.7, endpoint="responses")
        assert "rate limited" in await bot.say("hello")
        # Two waits of 0.7 s cannot fit in 1 s: at most one retry, not five.
        assert 1 <= len(fake.requests) - before <= 2
    finally:
        await bot.close()


async def test_back_pressure_busy_notice_then_too_busy_and_order_kept(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    settings = make_settings(
        fake.base_url,
        tmp_path,
        SWITCHBOARD_BUSY_QUEUED_PER_CONVERSATION=2,
        SWITCHBOARD_MAX_QUEUED_PER_CONVERSATION=4,
    )
    bot = await Harness.start(settings)
    gate = asyncio.Event()

    async def held(turn: FakeTurn) -> str:
        await gate.wait()
        return "echo: " + turn.messages[-1][1]

    fake.answer = held
    try:
        sent = [bot.message(f"m{n}") for n in range(7)]
        for message in sent:
            assert await bot.app.dispatcher.submit(message)  # handled, also when refused
        await until(lambda: len(bot.outbox.replies) == 5)  # told at once, answers still held
        notices = [(r.in_reply_to, r.text) for r in bot.outbox.replies]
        ids = [m.message_id for m in sent]
        assert notices == [(ids[2], BUSY), (ids[3], BUSY)] + [(i, TOO_BUSY) for i in ids[4:]]
        assert bot.app.lanes.high_water == 4

        gate.set()
        await bot.app.dispatcher.wait_idle()
        assert [s.final for s in bot.outbox.streams] == [f"echo: m{n}" for n in range(4)]
        assert [run["event_id"] for run in await _runs(bot)] == [m.event_id for m in sent[:4]]
        # Refused events were handled: not replayed after a restart, and a redelivery is not
        # taken for a new message.
        assert await inbox.pending(bot.app.db) == []
        assert not await bot.app.dispatcher.submit(sent[6])
        assert await bot.say("later") == "echo: later"
    finally:
        gate.set()
        await bot.close()


async def _runs(bot: Harness) -> list[dict]:
    rows = await bot.app.db.fetch_all("SELECT * FROM runs ORDER BY id")
    return [dict(row) for row in rows]


async def test_cancel_gets_through_a_full_queue(fake: FakeOpenAI, tmp_path: Path) -> None:
    settings = make_settings(
        fake.base_url,
        tmp_path,
        SWITCHBOARD_BUSY_QUEUED_TOTAL=1,
        SWITCHBOARD_MAX_QUEUED_TOTAL=1,
    )
    bot = await Harness.start(settings)
    gate = asyncio.Event()

    async def held(turn: FakeTurn) -> str:
        await gate.wait()
        return "late"

    fake.answer = held
    try:
        assert await bot.app.dispatcher.submit(bot.message("long question"))
        assert await bot.app.dispatcher.submit(bot.message("another"))
        await until(lambda: [r.text for r in bot.outbox.replies] == [TOO_BUSY])
        cancel = CommandCall(KEY, USER, "cancel", "ev-cancel")
        assert await bot.app.dispatcher.submit(cancel)
        await until(lambda: any(r.in_reply_to == "" for r in bot.outbox.replies[1:]))
        gate.set()
        await bot.app.dispatcher.wait_idle()
        assert [r.text for r in bot.outbox.replies].count(TOO_BUSY) == 1
    finally:
        gate.set()
        await bot.close()
