"""The hot path's guarantees (issue 21): what the speed-ups must not change.

- the SQLite engine's group commit: concurrent single writes share a trip, yet each commits on
  its own, in order, with its own result or its own error;
- a new server-side conversation's id is kept although the request no longer waits for the
  write: a failed first answer leaves the next turn the same conversation;
- a new conversation is recorded by its insert alone, and the chat backend reads no history
  for it;
- the start-up freeze (`gc.freeze`) of `python -m bot`;
- each benchmark's `--quick` smoke path runs and prints its figures (correctness only: no
  timing is asserted).
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.core.types import ConversationKey
from bot.ops.heap import freeze_startup_objects
from storage import conversations
from storage.connect import open_database
from storage.db import Database
from storage.sqlite.engine import SqliteDatabase
from testing.fakes.openai_fake import FakeOpenAI
from tests.harness import Harness, make_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def db(tmp_path: Path) -> Any:
    database = await open_database(tmp_path / "hot.db")
    yield database
    await database.close()


def count_trips(database: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the engine's trips to its writer thread (the real trip still runs)."""
    assert isinstance(database, SqliteDatabase)
    trips = [0]
    real = database._send

    async def counted(fn: Any, *args: Any) -> Any:
        trips[0] += 1
        return await real(fn, *args)

    monkeypatch.setattr(database, "_send", counted)
    return trips


async def test_concurrent_writes_share_a_trip_each_with_its_own_result(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
    trips = count_trips(db, monkeypatch)
    results = await asyncio.gather(
        *(db.execute("INSERT INTO t (v) VALUES (?)", (f"v{i}",)) for i in range(20))
    )
    assert trips[0] < 20  # shared trips
    assert [r.last_id for r in results] == list(range(1, 21))  # in order, each its own id
    assert all(r.rowcount == 1 for r in results)
    rows = await db.fetch_all("SELECT v FROM t ORDER BY id")
    assert [r["v"] for r in rows] == [f"v{i}" for i in range(20)]


async def test_a_failing_write_fails_alone_and_the_others_commit(db: Database) -> None:
    await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
    await db.execute("INSERT INTO t (v) VALUES ('taken')")
    outcomes = await asyncio.gather(
        db.execute("INSERT INTO t (v) VALUES ('a')"),
        db.execute("INSERT INTO t (v) VALUES ('taken')"),  # violates UNIQUE
        db.execute("INSERT INTO t (v) VALUES ('b')"),
        db.execute("UPDATE t SET v = 'c' WHERE v = 'nothing'"),
        return_exceptions=True,
    )
    assert outcomes[0].rowcount == 1 and outcomes[2].rowcount == 1  # type: ignore[union-attr]
    assert "UNIQUE" in str(outcomes[1])
    assert outcomes[3].rowcount == 0 and outcomes[3].last_id is None  # type: ignore[union-attr]
    rows = await db.fetch_all("SELECT v FROM t ORDER BY id")
    assert [r["v"] for r in rows] == ["taken", "a", "b"]


async def test_a_cancelled_writer_does_not_strand_the_others(db: Database) -> None:
    await db.execute("CREATE TABLE t (v TEXT)")
    async with db.transaction() as tx:  # holds the writer: the writes below queue
        await tx.fetch_one("SELECT 1")
        first = asyncio.ensure_future(db.execute("INSERT INTO t VALUES ('first')"))
        second = asyncio.ensure_future(db.execute("INSERT INTO t VALUES ('second')"))
        await asyncio.sleep(0)
        first.cancel()
    assert (await second).rowcount == 1
    rows = await db.fetch_all("SELECT v FROM t")
    # the cancelled caller's statement was already queued: it still ran, like a write whose
    # caller is cancelled during the trip
    assert sorted(r["v"] for r in rows) == ["first", "second"]


async def test_writes_after_close_fail_clearly(tmp_path: Path) -> None:
    database = await open_database(tmp_path / "closed.db")
    await database.close()
    with pytest.raises(Exception):  # noqa: B017 (aiosqlite's own "closed" error)
        await database.execute("CREATE TABLE t (v TEXT)")


async def test_a_new_conversation_is_recorded_by_its_insert(db: Database) -> None:
    key = ConversationKey("test", "W", "C", "T")
    made = await conversations.ensure_active(db, key, "responses")
    db.memo.clear()
    assert await conversations.get_active(db, key, "responses") == made
    assert await conversations.ensure_active(db, key, "responses") == made  # not a second one
    other = await conversations.ensure_active(db, key, "chat")
    assert other.id != made.id


async def test_a_failed_first_answer_leaves_the_next_turn_the_same_server_conversation(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    settings = make_settings(
        fake.base_url,
        tmp_path,
        SWITCHBOARD_BACKEND="responses",
        SWITCHBOARD_OPENAI_MAX_RETRIES=0,
    )
    bot = await Harness.start(settings)
    try:
        fake.fail_next("server_error", endpoint="responses")
        assert await bot.say("first") != "echo: first"  # told it failed
        assert await bot.say("second") == "echo: second"
        created = [r for r in fake.requests if r.path == "/v1/conversations"]
        assert len(created) == 1  # the second turn used the conversation the first made
        record = await conversations.get_active(bot.app.db, bot.message("x").key, "responses")
        assert record is not None and record.backend_conversation_id == fake_conversation(fake)
    finally:
        await bot.close()


async def test_the_chat_backend_reads_no_history_for_a_conversation_its_turn_made(
    fake: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(fake.base_url, tmp_path, SWITCHBOARD_BACKEND="chat")
    bot = await Harness.start(settings)
    reads: list[str] = []
    real = bot.app.db.fetch_all

    async def recorded(sql: str, *args: Any) -> Any:
        reads.append(sql)
        return await real(sql, *args)

    monkeypatch.setattr(bot.app.db, "fetch_all", recorded)
    try:
        assert await bot.say("first") == "echo: first"
        assert not [sql for sql in reads if "FROM messages" in sql]  # nothing to read yet
        assert await bot.say("second") == "echo: second"
        assert [sql for sql in reads if "FROM messages" in sql]  # now there is
        assert fake.turns[-1].messages[-3:] == [
            ("user", "first"),
            ("assistant", "echo: first"),
            ("user", "second"),
        ]
    finally:
        await bot.close()


def fake_conversation(fake: FakeOpenAI) -> str:
    (conversation,) = fake.conversations
    return conversation


def test_the_start_up_freeze_moves_live_objects_out_of_the_collector() -> None:
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # the test process builds and drops apps: never keep them frozen


@pytest.mark.parametrize(
    "module, args",
    [
        ("benchmarks.burst", ["--quick", "--loads", "1,3", "--backend", "responses"]),
        (
            "benchmarks.streaming",
            [
                "--quick",
                "--loads",
                "1,2",
                "--backend",
                "chat",
                "--words",
                "20",
                "--cooldown",
                "0.2",
            ],
        ),
    ],
)
def test_a_benchmark_quick_path_runs_and_prints_its_figures(module: str, args: list[str]) -> None:
    """Correctness only: the benchmark runs end to end and prints every figure (none of them is
    checked against a target here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLACK_"))}
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for figure in (
        "final÷direct p50",
        "first text − direct first token",
        "CPU/turn (best round)",
        "question → model request",
        "database round trips/turn",
        "platform API calls/turn",
        "OpenAI requests/turn",
        "garbage collection",
        "profiled CPU",
        "by package",
    ):
        assert figure in out, (figure, out[-3000:])
    assert "no complete answer" not in out and "missing" not in out, out[-3000:]
