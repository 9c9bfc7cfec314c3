"""The storage interface on both engines (SQLite and a real PostgreSQL server): transactions,
single writes, opening by URL, and the read-only check the doctor runs."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.config import ConfigError
from bot.core.types import ConversationKey
from bot.doctor import run_doctor
from storage import configs, conversations
from storage.connect import check, open_database, open_existing
from storage.db import Database, StorageError
from testing.fakes.openai_fake import FakeOpenAI
from tests.harness import make_settings

EVENT = "INSERT INTO processed_events (platform, event_id, received_at) VALUES ('p', ?, 0)"
KEY = ConversationKey("slack", "T1", "C1", "")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await open_database(database_url)
    yield database
    await database.close()


async def _events(db: Database) -> list[str]:
    return [r["event_id"] for r in await db.fetch_all("SELECT event_id FROM processed_events")]


async def test_a_single_write_reports_rows_and_the_new_id(db: Database) -> None:
    first = await db.execute(EVENT, ("a",))
    assert first.rowcount == 1
    run = await db.execute(
        "INSERT INTO runs (platform, workspace, channel, thread, user_id, event_id, kind, status, "
        "created_at) VALUES ('p', 'w', 'c', '', 'u', 'e', 'chat', 'queued', 0)"
    )
    row = await db.fetch_one("SELECT id FROM runs")
    assert row is not None and run.last_id == row["id"] == row[0]
    ignored = await db.execute(f"{EVENT} ON CONFLICT DO NOTHING", ("a",))
    assert ignored.rowcount == 0
    assert await db.fetch_one("SELECT * FROM processed_events WHERE event_id = 'zz'") is None


async def test_execute_many_is_all_or_nothing(db: Database) -> None:
    await db.execute_many(EVENT, [("a",), ("b",)])
    with pytest.raises(Exception, match=r"(?i)unique"):
        await db.execute_many(EVENT, [("c",), ("a",)])
    assert sorted(await _events(db)) == ["a", "b"]


async def test_reads_in_a_transaction_see_its_writes_and_others_do_not(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.execute(EVENT, ("a",))
        row = await tx.fetch_one("SELECT count(*) AS n FROM processed_events")
        assert row is not None and row["n"] == 1
        assert await _events(db) == []  # not committed yet
        await tx.execute(EVENT, ("b",))
    assert sorted(await _events(db)) == ["a", "b"]


async def test_a_transaction_that_raises_after_a_read_leaves_nothing(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.execute(EVENT, ("a",))
            assert len(await tx.fetch_all("SELECT * FROM processed_events")) == 1
            raise RuntimeError("half way")
    assert await _events(db) == []
    await db.execute(EVENT, ("b",))  # the writer is free again
    assert await _events(db) == ["b"]


async def test_a_cancelled_transaction_rolls_back_and_frees_the_writer(db: Database) -> None:
    inside = asyncio.Event()

    async def stuck() -> None:
        async with db.transaction() as tx:
            await tx.execute(EVENT, ("a",))
            await tx.fetch_all("SELECT * FROM processed_events")
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(stuck())
    await inside.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    async with db.transaction() as tx:
        await tx.execute(EVENT, ("b",))
    assert await _events(db) == ["b"]


async def test_concurrent_transactions_do_not_see_each_others_half_done_work(
    db: Database,
) -> None:
    records = await asyncio.gather(
        *(conversations.ensure_active(db, KEY, "chat") for _ in range(20))
    )
    assert len({r.id for r in records}) == 1
    rows = await db.fetch_all("SELECT id FROM conversations")
    assert len(rows) == 1
    assert await conversations.archive(db, KEY) == 1
    again = await conversations.ensure_active(db, KEY, "chat")
    assert again.id != records[0].id


async def test_a_row_reads_by_name_and_position_and_as_a_dict(db: Database) -> None:
    await db.execute(EVENT, ("a",))
    (row,) = await db.fetch_all("SELECT platform, event_id FROM processed_events")
    assert (row["platform"], row[1]) == ("p", "a")
    assert dict(row) == {"platform": "p", "event_id": "a"}
    assert tuple(row) == ("p", "a") and len(row) == 2


async def test_the_engine_is_picked_from_the_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must start with sqlite:/// or postgresql://"):
        await open_database("mysql://db.example/switchboard")
    with pytest.raises(ConfigError, match="names no file"):
        await open_database("sqlite:///")
    db = await open_database(f"sqlite:///{tmp_path / 'a' / 'b.db'}")  # folders are created
    await db.close()
    assert (tmp_path / "a" / "b.db").exists()


async def test_check_reads_without_creating_anything(tmp_path: Path) -> None:
    missing = tmp_path / "none" / "db.sqlite"
    assert await check(f"sqlite:///{missing}") is None
    async with open_existing(missing) as nothing:
        assert nothing is None
    assert not missing.parent.exists()

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database, just some bytes " * 200)
    problem = await check(garbage)
    assert problem is not None and "is not a SQLite database" in problem and str(garbage) in problem

    assert "PostgreSQL" in (await check("postgresql://x@y/z") or "")

    newer = tmp_path / "newer.db"
    db = await open_database(newer)
    await db.execute("INSERT INTO schema_migrations VALUES ('999_from_the_future', 0)")
    await db.close()
    problem = await check(newer)
    assert problem is not None and "999_from_the_future" in problem


async def test_the_read_only_database_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    db = await open_database(path)
    await configs.save_overrides(db, KEY, {"model": "gpt-x"}, updated_by="U1")
    await db.close()
    async with open_existing(path) as existing:
        assert existing is not None
        (stored,) = await configs.all_overrides(existing)
        assert (stored.channel, stored.settings) == ("C1", {"model": "gpt-x"})
    with pytest.raises(StorageError):
        async with open_existing(path) as existing:
            assert existing is not None
            await existing.execute("DELETE FROM channel_configs")


async def test_the_doctor_reports_a_database_it_cannot_read(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    settings = make_settings(fake.base_url, tmp_path)
    out = io.StringIO()
    assert await run_doctor(settings, out) < 2  # no database yet: not a problem
    assert f"ok    database {settings.database_path}" in out.getvalue()
    assert not settings.database_path.exists()
    settings.database_path.write_bytes(b"not a database " * 300)
    out = io.StringIO()
    assert await run_doctor(settings, out) == 2
    assert (
        f"ERROR DATABASE_URL: {settings.database_path} is not a SQLite database" in out.getvalue()
    )


async def test_a_failed_statement_ends_the_transaction_even_when_caught(db: Database) -> None:
    await db.execute(EVENT, ("a",))
    with pytest.raises(StorageError):
        async with db.transaction() as tx:
            await tx.execute(EVENT, ("b",))
            with contextlib.suppress(Exception):
                await tx.fetch_all("SELECT * FROM no_such_table")
            await tx.execute(EVENT, ("c",))
    assert await _events(db) == ["a"]


async def test_a_read_on_its_way_while_settings_change_is_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings cache: a read that left before a write and returns after it holds the old
    rows; it must not be kept, or every later answer (and the next edit) would use them."""
    db = await open_database(f"sqlite:///{tmp_path / 'memo.db'}")
    try:
        await configs.save_overrides(db, KEY, {"model": "gpt-old"}, updated_by="U1")
        read, release = asyncio.Event(), asyncio.Event()
        real = db.fetch_all

        async def held(sql: str, *args: object) -> object:
            rows = await real(sql, *args)  # type: ignore[arg-type]
            read.set()
            await release.wait()  # returns only after the write below
            return rows

        monkeypatch.setattr(db, "fetch_all", held)
        reader = asyncio.create_task(configs.load_overrides(db, KEY))
        await read.wait()
        await configs.save_overrides(db, KEY, {"model": "gpt-new"}, updated_by="U2")
        release.set()
        assert (await reader)[1] == {"model": "gpt-old"}  # what it read, before the write
        monkeypatch.setattr(db, "fetch_all", real)
        assert (await configs.load_overrides(db, KEY))[1] == {"model": "gpt-new"}
    finally:
        await db.close()
