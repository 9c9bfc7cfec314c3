"""Spare server-side conversations (issue 21, point 3): after a burst of new threads, the next
burst's first requests do not wait for `POST /v1/conversations`; new threads one at a time make
no spares; a spare taken is relabelled with its conversation's key; failures in the background
are logged and cost only the round trip; spares are deleted at close. Through the real `openai`
client against the loopback fake, and through the real app on Slack."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from bot.backends.conversations import ServerConversations
from bot.backends.retry import RetryPolicy
from bot.backends.spares import SPARE, SpareConversations
from storage import conversations
from testing.fakes import slack_payloads as P
from testing.fakes.openai_fake import FakeOpenAI
from tests.test_slack_adapter import start_env, stop_env


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


async def labels(client: openai.AsyncOpenAI, fake: FakeOpenAI) -> dict[str, str]:
    """Each conversation on the server and its label, read back through the API."""
    found = {}
    for conversation_id in list(fake.conversations):
        conversation = await client.conversations.retrieve(conversation_id)
        found[conversation_id] = (conversation.metadata or {}).get("switchboard", "")  # type: ignore[union-attr]
    return found


def creations(fake: FakeOpenAI) -> int:
    return sum(r.method == "POST" and r.path == "/v1/conversations" for r in fake.requests)


async def test_the_next_burst_takes_spares_and_relabels_them(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    clock = Clock()
    spares = SpareConversations(ServerConversations(client, RetryPolicy(attempts=0)), clock=clock)
    first = await asyncio.gather(*(spares.take(f"slack:T1:C{n}:1.{n}") for n in range(3)))
    await spares.idle()
    assert spares.spare == 3  # as many as the burst had
    before = await labels(client, fake)
    waiting = {cid for cid, label in before.items() if label == SPARE}
    assert len(waiting) == 3 and not waiting & set(first)
    made = creations(fake)

    clock.now += 60
    second = await asyncio.gather(*(spares.take(f"slack:T1:D{n}:2.{n}") for n in range(3)))
    assert set(second) == waiting  # taken, not made: no request stood before the answer
    assert creations(fake) == made
    await spares.idle()
    after = await labels(client, fake)
    assert {after[cid] for cid in second} == {f"slack:T1:D{n}:2.{n}" for n in range(3)}
    assert spares.spare == 3  # refilled for the next burst

    await spares.close()
    remaining = await labels(client, fake)
    assert set(remaining) == set(first) | set(second)  # the spares were deleted
    assert SPARE not in remaining.values()


async def test_new_threads_one_at_a_time_make_no_spares(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    clock = Clock()
    spares = SpareConversations(ServerConversations(client, RetryPolicy(attempts=0)), clock=clock)
    made = []
    for n in range(4):
        made.append(await spares.take(f"discord:G1:C{n}"))
        await spares.idle()
        clock.now += 30
    assert spares.spare == 0 and creations(fake) == 4
    assert await labels(client, fake) == {cid: f"discord:G1:C{n}" for n, cid in enumerate(made)}
    await spares.close()
    assert len(fake.conversations) == 4  # close deletes spares only


async def test_background_failures_are_logged_and_cost_only_the_round_trip(
    fake: FakeOpenAI, client: openai.AsyncOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    spares = SpareConversations(ServerConversations(client, RetryPolicy(attempts=0)), clock=clock)
    await asyncio.gather(*(spares.take(f"k{n}") for n in range(3)))
    await spares.idle()
    assert spares.spare == 3

    clock.now += 60
    fake.fail_next("server_error", times=4, endpoint="conversations")  # 3 labels, 1 spare
    with caplog.at_level(logging.WARNING, logger="bot.backends.spares"):
        taken = await asyncio.gather(*(spares.take(f"j{n}") for n in range(3)))
        await spares.idle()
    assert len(set(taken)) == 3 and spares.spare == 0
    logged = [r.getMessage() for r in caplog.records]
    assert sum("could not label conversation" in line for line in logged) == 3
    assert sum("could not make a spare conversation" in line for line in logged) == 1

    clock.now += 60
    made = creations(fake)
    alone = await spares.take("later")  # none spare: made on the way, as without spares
    assert alone in fake.conversations
    await spares.idle()
    assert spares.spare == 3  # the previous burst's size, refilled
    assert creations(fake) == made + 1 + 3
    await spares.close()
    assert spares.spare == 0


async def test_bursts_on_slack_leave_every_thread_its_own_labelled_conversation(
    tmp_path: Path,
) -> None:
    """Two bursts of new threads through the real app: whether or not a spare served a thread,
    each thread has its own conversation, labelled with its key, and no spare outlives the app."""
    env = await start_env(tmp_path, SWITCHBOARD_BACKEND="responses")
    mentions = []
    try:
        for burst in range(2):
            sent = [P.app_mention(f"b{burst} n{n}", channel=f"C{burst}{n}") for n in range(3)]
            mentions += sent
            await asyncio.gather(*(env.slack.send_event(m) for m in sent))
            await env.settle(len(mentions))
        for mention in mentions:
            assert env.bot_texts(mention["channel"], mention["ts"]) == [
                f"echo: {mention['text'].split('> ', 1)[1]}"
            ]
        keys = {}
        for event in env.submitted:
            record = await conversations.get_active(env.app.db, event.key, "responses")
            assert record is not None and record.backend_conversation_id
            keys[record.backend_conversation_id] = str(event.key)
    finally:
        await stop_env(env)
    assert len(keys) == 6
    assert env.openai.conversation_labels() == keys
