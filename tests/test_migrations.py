import aiosqlite

from storage.db import Database
from storage.migrations import MIGRATIONS, apply_migrations


async def _tables(conn: aiosqlite.Connection) -> set[str]:
    async with conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'") as cursor:
        return {row[0] for row in await cursor.fetchall()}


async def test_blank_to_latest_then_a_second_run_is_a_no_op(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "db.sqlite"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        applied = await apply_migrations(conn)
        assert applied == [name for name, _ in MIGRATIONS]
        tables = await _tables(conn)
        assert {
            "channel_configs",
            "conversations",
            "messages",
            "runs",
            "usage",
            "processed_events",
            "schema_migrations",
        } <= tables
        assert await apply_migrations(conn) == []
        async with conn.execute("SELECT count(*) FROM schema_migrations") as cursor:
            assert (await cursor.fetchone())[0] == len(MIGRATIONS)


async def test_database_uses_wal_and_rolls_back_failed_transactions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = await Database.open(tmp_path / "sub" / "db.sqlite")
    try:
        row = await db.fetchone("PRAGMA journal_mode")
        assert row is not None and row[0] == "wal"
        try:
            async with db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO processed_events (platform, event_id, received_at) VALUES ('p', 'e', 0)"
                )
                raise RuntimeError("half way")
        except RuntimeError:
            pass
        assert await db.fetchall("SELECT * FROM processed_events") == []
    finally:
        await db.close()


async def test_migration_names_are_unique_and_ordered() -> None:
    names = [name for name, _ in MIGRATIONS]
    assert len(names) == len(set(names))
    assert names == sorted(names)


async def test_a_batch_is_all_or_nothing_in_one_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = await Database.open(tmp_path / "db.sqlite")
    try:
        async with db.batch() as batch:
            await batch.execute(
                "INSERT INTO processed_events (platform, event_id, received_at) VALUES ('p', 'a', 0)"
            )
            await batch.executemany(
                "INSERT INTO processed_events (platform, event_id, received_at) VALUES ('p', ?, 0)",
                [("b",), ("c",)],
            )
        assert len(await db.fetchall("SELECT * FROM processed_events")) == 3
        try:
            async with db.batch() as batch:
                await batch.execute(
                    "INSERT INTO processed_events (platform, event_id, received_at) VALUES ('p', 'd', 0)"
                )
                await batch.execute(  # a duplicate key: the whole batch must roll back
                    "INSERT INTO processed_events (platform, event_id, received_at) VALUES ('p', 'a', 0)"
                )
        except Exception as exc:
            assert "UNIQUE" in str(exc)
        else:
            raise AssertionError("the duplicate did not fail")
        assert len(await db.fetchall("SELECT * FROM processed_events")) == 3
        async with db.transaction() as conn:  # the writer is usable after a failed batch
            await conn.execute("DELETE FROM processed_events WHERE event_id = 'a'")
        assert len(await db.fetchall("SELECT * FROM processed_events")) == 2
    finally:
        await db.close()
