"""Wire layer under load and delivery faults: the real Slack adapter (slack-bolt, slack-sdk) and
core against FakeSlack and FakeOpenAI — a flood of messages into one conversation, and posts
that Slack refuses for a while or for good."""

from __future__ import annotations

import gc
import logging
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.core.dispatcher import busy_text, too_busy_text
from testing.fakes import slack_payloads as P
from tests.test_slack_adapter import Env, start_env, stop_env

FLOOD = 500
MAX_PER_CONVERSATION = 25
OURS = ("*/bot/*", "*/adapters/*", "*/storage/*")


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    environment = await start_env(
        tmp_path,
        SWITCHBOARD_DELIVERY_RETRY_WAIT=0.01,
        SWITCHBOARD_MAX_QUEUED_PER_CONVERSATION=MAX_PER_CONVERSATION,
        SWITCHBOARD_MAX_QUEUED_PER_USER=1000,  # one user floods: the conversation's bound here
    )
    yield environment
    await stop_env(environment)
    assert environment.slack.internal_errors == []


async def runs_of(env: Env) -> list[dict]:
    return [dict(row) for row in await env.app.db.fetch_all("SELECT * FROM runs ORDER BY id")]


def our_memory() -> int:
    """Bytes currently allocated by the bot's own code (bot/, adapters/, storage/)."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, pattern) for pattern in OURS]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


def covered(texts: list[str], notice: Callable[[int], str]) -> int:
    """How many messages the notices of one kind in `texts` speak for."""
    counts = {notice(n): n for n in range(1, FLOOD + 1)}
    return sum(counts.get(text, 0) for text in texts)


async def flood(env: Env, prefix: str, count: int) -> None:
    before = len(env.submitted)
    for n in range(count):
        await env.slack.send_event(P.im_message(f"{prefix}{n}"))
    await env.settle(before + count, seconds=240)


async def test_a_flood_into_one_conversation_is_bounded_and_every_message_answered_or_told(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)  # pytest keeps every captured record (and what it names)
    tracemalloc.start(1)
    try:
        # Two floods of the same size first: caches (sqlite3's bounded statement cache fills over
        # both), pools and the lanes' task set reach their high-water size, so the third one
        # shows what is retained per message.
        await flood(env, "warm", FLOOD)
        env.submitted.clear()
        env.slack.messages.clear()
        await flood(env, "warm2", FLOOD)
        env.submitted.clear()  # the test's own record of the events, not the bot's
        env.slack.messages.clear()
        baseline = our_memory()
        await flood(env, "m", FLOOD)
        submitted = [(e.event_id, e.text) for e in env.submitted]
        env.submitted.clear()
        grown = our_memory() - baseline
    finally:
        tracemalloc.stop()

    texts = env.bot_texts(P.DM_CHANNEL_ID)
    answers = [t for t in texts if t.startswith("echo: ")]
    refused = covered(texts, too_busy_text)
    assert refused + len(answers) == FLOOD  # every message answered or told
    assert len(set(answers)) == len(answers)  # no duplicates
    accepted = [f"echo: {text}" for _, text in submitted]
    assert answers == [a for a in accepted if a in set(answers)]  # in the order accepted
    assert MAX_PER_CONVERSATION <= len(answers) < FLOOD
    assert 1 <= covered(texts, busy_text) <= len(answers)
    notices = [t for t in texts if t not in answers]
    kinds = {notice(n) for notice in (busy_text, too_busy_text) for n in range(1, FLOOD + 1)}
    assert set(notices) <= kinds
    assert len(notices) < FLOOD - len(answers)  # coalesced: fewer notices than refusals
    assert env.app.lanes.high_water <= MAX_PER_CONVERSATION
    assert env.app.lanes.high_water <= MAX_PER_CONVERSATION
    assert env.app.lanes.total == 0
    assert grown < 25_000, f"the bot's own memory grew by {grown} bytes over the flood"
    flooded = {event_id for event_id, _ in submitted}
    statuses = [r["status"] for r in await runs_of(env) if r["event_id"] in flooded]
    assert statuses == ["completed"] * len(answers)  # refused messages left no run behind


async def test_a_post_slack_refuses_for_a_while_is_retried_and_delivered(env: Env) -> None:
    env.slack.fail_next("chat.postMessage", "service_unavailable")
    env.slack.fail_next("chat.postMessage", "internal_error", status=500)
    env.slack.rate_limit_next("chat.postMessage", 1, retry_after=1)
    await env.slack.send_event(P.im_message("hello"))
    await env.settle(1, seconds=30)
    assert env.bot_texts(P.DM_CHANNEL_ID) == ["echo: hello"]
    posts = [c for c in env.slack.calls if c.method == "chat.postMessage"]
    assert [c.status for c in posts] == [200, 500, 429, 200]
    (run,) = await runs_of(env)
    assert run["status"] == "completed"


async def test_a_post_slack_refuses_for_good_fails_the_run_with_the_reason(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    env.slack.fail_next("chat.postMessage", "fatal_error", times=20)  # never retried
    await env.slack.send_event(P.im_message("hello"))
    await env.settle(1, seconds=30)
    assert env.bot_texts(P.DM_CHANNEL_ID) == []
    (run,) = await runs_of(env)
    assert run["status"] == "failed"
    assert run["error"] == "delivery failed (answer): SlackApiError fatal_error"
    event_id = env.submitted[0].event_id
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(event_id in line and "fatal_error" in line for line in errors), errors

    env.slack.clear_faults()
    await env.slack.send_event(P.im_message("again"))
    await env.settle(2, seconds=30)
    assert env.bot_texts(P.DM_CHANNEL_ID) == ["echo: again"]
