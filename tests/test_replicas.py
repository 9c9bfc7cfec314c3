"""Several bot processes on one PostgreSQL database (issue #16), in-process: two complete apps
(storage, dispatcher, lanes, recovery) on one real PostgreSQL server, each with its own
recording adapter, against the fake OpenAI. What the subprocess test
(tests/test_replicas_slack.py) shows end to end, here shown step by step and without waiting for
heartbeats: the sweep is called directly and a death is a heartbeat set back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.config import Settings
from bot.core.types import ConversationKey
from bot.spend.quota import Quota
from storage import configs, conversations
from storage.connect import open_database
from testing.fakes.openai_fake import FakeOpenAI, FakeTurn
from testing.postgres import PostgresServer
from testing.waiting import until
from tests.harness import KEY, PLATFORM, Harness, make_settings

OTHER = ConversationKey(PLATFORM, "W1", "C2")


class Gate:
    """Answers wait here until opened; records the order in which the model was asked."""

    def __init__(self, fake: FakeOpenAI) -> None:
        self.asked: list[str] = []
        self.open = asyncio.Event()
        self.open.set()
        fake.answer = self.answer

    async def answer(self, turn: FakeTurn) -> str:
        text = turn.messages[-1][1]
        self.asked.append(text)
        await self.open.wait()
        await asyncio.sleep(0.01)
        return f"answer to {text}"


@pytest.fixture
async def settings(fake: FakeOpenAI, postgres: PostgresServer, tmp_path: Path) -> Settings:
    return make_settings(
        fake.base_url,
        tmp_path,
        DATABASE_URL=postgres.create_database(),
        SWITCHBOARD_BACKEND="chat",
        SWITCHBOARD_SHUTDOWN_GRACE=30,
    )


@pytest.fixture
async def pair(settings: Settings) -> AsyncIterator[tuple[Harness, Harness]]:
    a = await Harness.start(settings)
    b = await Harness.start(settings)
    yield a, b
    for bot in (a, b):
        if not bot.app.lanes.closed:
            await bot.close()


def finals(*bots: Harness) -> list[str]:
    return [text for bot in bots for text in bot.outbox.shown]


async def owners(bot: Harness) -> dict[str, str | None]:
    rows = await bot.app.db.fetch_all(
        "SELECT event_id, owner FROM processed_events WHERE done_at IS NULL"
    )
    return {row["event_id"]: row["owner"] for row in rows}


async def test_one_conversation_across_two_processes_is_answered_once_each_in_order(
    fake: FakeOpenAI, pair: tuple[Harness, Harness]
) -> None:
    a, b = pair
    gate = Gate(fake)
    sent = []
    for n in range(8):
        bot = (a, b)[n % 2]
        for key in (KEY, OTHER):
            text = f"m{n} in {key.channel}"
            assert await bot.app.dispatcher.submit(bot.message(text, key=key))
            sent.append(text)
    await until(lambda: len(finals(a, b)) == len(sent), 60)
    await a.app.dispatcher.wait_idle()
    await b.app.dispatcher.wait_idle()
    assert sorted(finals(a, b)) == sorted(f"answer to {t}" for t in sent)  # each once
    for channel in ("C1", "C2"):
        asked = [t for t in gate.asked if t.endswith(channel)]
        assert asked == [t for t in sent if t.endswith(channel)]  # in order
    # the chat backend's history, kept in PostgreSQL, has every turn in order
    record = await conversations.get_active(a.app.db, KEY, "chat")
    assert record is not None
    rows = await a.app.db.fetch_all(
        "SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY id", (record.id,)
    )
    users = [r["content"] for r in rows if r["role"] == "user"]
    assert users == [t for t in sent if t.endswith("C1")]


async def test_a_redelivery_to_the_other_process_is_a_duplicate(
    pair: tuple[Harness, Harness],
) -> None:
    a, b = pair
    message = a.message("only once", event_id="EvTwice")
    assert await a.app.dispatcher.submit(message)
    assert not await b.app.dispatcher.submit(message)
    await until(lambda: len(finals(a, b)) == 1)
    await a.app.dispatcher.wait_idle()
    assert finals(a, b) == ["echo: only once"] and b.outbox.shown == []


async def test_a_dead_process_has_its_work_taken_over(
    fake: FakeOpenAI, pair: tuple[Harness, Harness]
) -> None:
    """A accepts two messages of one conversation and is answering the first when it dies
    (its lane is cancelled and its heartbeat stops): B's sweep takes both over and answers
    each once, in order."""
    a, b = pair
    gate = Gate(fake)
    gate.open.clear()
    assert await a.app.dispatcher.submit(a.message("first", event_id="EvA1"))
    assert await a.app.dispatcher.submit(a.message("second", event_id="EvA2"))
    await until(lambda: gate.asked == ["first"])
    # A dies: nothing of it runs any more, and it is not seen again
    assert a.app.queue is not None
    await a.app.queue.stop_beating()
    await a.app.lanes.drain(0)
    await a.app.db.execute("UPDATE replicas SET seen_at = 0 WHERE id = ?", (a.app.queue.id,))
    assert set((await owners(b)).values()) == {a.app.queue.id}

    gate.open.set()
    assert b.app.queue is not None
    await b.app.queue.sweep()
    await until(lambda: len(b.outbox.shown) == 2, 30)
    await b.app.dispatcher.wait_idle()
    assert b.outbox.shown == ["answer to first", "answer to second"]
    assert a.outbox.shown == []
    assert await owners(b) == {}
    statuses = await b.app.db.fetch_all("SELECT event_id, status FROM runs ORDER BY id")
    assert [(r["event_id"], r["status"]) for r in statuses] == [
        ("EvA1", "interrupted"),
        ("EvA2", "interrupted"),
        ("EvA1", "completed"),
        ("EvA2", "completed"),
    ]


async def test_a_graceful_stop_hands_queued_work_back_at_once(
    fake: FakeOpenAI, pair: tuple[Harness, Harness]
) -> None:
    a, b = pair
    gate = Gate(fake)
    gate.open.clear()
    for n in range(3):
        assert await a.app.dispatcher.submit(a.message(f"m{n}", event_id=f"EvS{n}"))
    await until(lambda: gate.asked == ["m0"])
    assert a.app.queue is not None
    stopping = asyncio.create_task(a.app.drain())
    # m1 and m2 have not started: handed back while m0 is still being answered
    await until(lambda: stopping.done() or a.app.queue.stopping)  # type: ignore[union-attr]

    async def handed_back() -> bool:
        return (await owners(b)).get("EvS1", "") is None and (await owners(b)).get(
            "EvS2", ""
        ) is None

    for _ in range(200):
        if await handed_back():
            break
        await asyncio.sleep(0.02)
    assert await handed_back() and not stopping.done()
    gate.open.set()
    await stopping
    await a.app.close()
    assert b.app.queue is not None
    await b.app.queue.sweep()
    await until(lambda: len(finals(a, b)) == 3, 30)
    await b.app.dispatcher.wait_idle()
    assert a.outbox.shown == ["answer to m0"]
    assert b.outbox.shown == ["answer to m1", "answer to m2"]


async def test_settings_changed_through_one_process_apply_in_the_other_at_once(
    settings: Settings,
) -> None:
    one = await open_database(settings.database_url)
    two = await open_database(settings.database_url)
    try:
        assert await configs.load_overrides(two, KEY) == ({}, {})
        await configs.set_channel_field(one, KEY, "model", "gpt-other", updated_by="U1")
        assert await configs.load_overrides(two, KEY) == ({}, {"model": "gpt-other"})
        first = await conversations.ensure_active(two, KEY, "chat")
        assert (await conversations.get_active(one, KEY, "chat")) == first
        await conversations.archive(one, KEY)  # /reset through the first process
        assert await conversations.get_active(two, KEY, "chat") is None
    finally:
        await one.close()
        await two.close()


async def test_a_user_rate_limit_is_counted_across_processes(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limit_per_minute": 2})
    one = await open_database(settings.database_url)
    two = await open_database(settings.database_url)
    try:
        quotas = [Quota(one, limited), Quota(two, limited)]
        outcomes = await asyncio.gather(
            *(quotas[n % 2].check(KEY, "U1", None) for n in range(6)), return_exceptions=True
        )
        assert sum(1 for o in outcomes if o is None) == 2
        refused = [o for o in outcomes if o is not None]
        assert all("faster than 2 a minute" in str(o) for o in refused)
        await quotas[0].check(KEY, "U2", None)  # another user is not limited by U1
    finally:
        await one.close()
        await two.close()


async def test_a_postgres_restart_while_running_is_survived(
    settings: Settings, postgres: PostgresServer
) -> None:
    bot = await Harness.start(settings)
    try:
        assert await bot.say("before the restart") == "echo: before the restart"
        postgres.restart()
        assert await bot.say("after the restart") == "echo: after the restart"
        async with bot.app.db.transaction() as tx:
            await tx.execute("UPDATE replicas SET seen_at = seen_at")
            postgres.restart()  # the connection under the transaction is gone: replayed
            row = await tx.fetch_one("SELECT count(*) FROM runs WHERE status = 'completed'")
        assert row is not None and row[0] == 2
    finally:
        await bot.close()


async def test_a_message_accepted_while_starting_is_not_taken_for_a_previous_processes(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    """Issue #20 point 1, on SQLite: a message accepted before start-up recovery runs belongs to
    this process; recovery takes up only what a previous process left (here: one event)."""
    from bot.app import App
    from storage.events import claim_event
    from storage.inbox import encode_event
    from tests.recording import RecordingOutbox

    settings = make_settings(fake.base_url, tmp_path)
    db = await open_database(settings.database_url)
    left = Harness(None, None).message("left by the previous process", event_id="EvOld")  # type: ignore[arg-type]
    assert await claim_event(db, PLATFORM, "EvOld", encode_event(left), owner="gone:1:abc")
    await db.close()

    gate = Gate(fake)
    gate.open.clear()
    app = await App.create(settings)
    outbox = RecordingOutbox()
    app.dispatcher.register_outbox(PLATFORM, outbox)
    bot = Harness(app, outbox)
    try:
        assert await app.dispatcher.submit(bot.message("sent while connecting", event_id="EvNew"))
        assert await app.recover() == 1  # EvOld only
        gate.open.set()
        await until(lambda: len(outbox.shown) == 2)
        await app.dispatcher.wait_idle()
        assert sorted(outbox.shown) == [
            "answer to left by the previous process",
            "answer to sent while connecting",
        ]
        rows = await app.db.fetch_all("SELECT event_id, status FROM runs ORDER BY id")
        assert sorted((r["event_id"], r["status"]) for r in rows) == [
            ("EvNew", "completed"),
            ("EvOld", "completed"),
        ]
    finally:
        await app.shutdown()


@pytest.mark.parametrize("backend", ["responses", "chat"])
async def test_every_feature_path_of_a_turn_runs_on_postgres(
    fake: FakeOpenAI, postgres: PostgresServer, tmp_path: Path, backend: str
) -> None:
    """Answers, /reset, /steps, /usage and the usage export on PostgreSQL, both backends."""
    from storage.usage import UsageScope, export_rows, totals

    settings = make_settings(
        fake.base_url,
        tmp_path,
        DATABASE_URL=postgres.create_database(),
        SWITCHBOARD_BACKEND=backend,
        SWITCHBOARD_RATE_LIMIT_PER_MINUTE=100,
        SWITCHBOARD_BUDGET_USER_DAILY_USD=5,
    )
    bot = await Harness.start(settings)
    try:
        assert await bot.say("first") == "echo: first"
        assert await bot.say("second") == "echo: second"
        assert "new conversation" in (await bot.command("reset")).lower()
        assert await bot.say("third") == "echo: third"
        usage = await bot.command("usage", "me")
        assert "3" in usage
        found = await totals(bot.app.db, UsageScope(PLATFORM, "W1"), 0)
        assert found.runs == 3 and isinstance(found.input_tokens, int) and found.input_tokens > 0
        assert len(await export_rows(bot.app.db, 0)) == 3
    finally:
        await bot.close()
