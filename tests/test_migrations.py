import asyncio
import contextlib
import sqlite3
from pathlib import Path

from storage.connect import check, open_database
from storage.db import Database
from storage.migrations import MIGRATIONS, applied_migrations, apply_migrations
from storage.postgres.schema import MIGRATIONS as POSTGRES_MIGRATIONS
from testing.postgres import PostgresServer


def _tables(path: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }


async def test_blank_to_latest_then_a_second_run_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    db = await open_database(f"sqlite:///{path}")
    try:
        assert await applied_migrations(db) == {name for name, _ in MIGRATIONS}
        assert {
            "channel_configs",
            "conversations",
            "messages",
            "runs",
            "usage",
            "processed_events",
            "schema_migrations",
        } <= _tables(path)
        assert await apply_migrations(db) == []
        row = await db.fetch_one("SELECT count(*) FROM schema_migrations")
        assert row is not None and row[0] == len(MIGRATIONS)
    finally:
        await db.close()
    db = await open_database(path)  # opening again applies nothing
    try:
        row = await db.fetch_one("SELECT count(*) FROM schema_migrations")
        assert row is not None and row[0] == len(MIGRATIONS)
    finally:
        await db.close()
    assert await check(path) is None


async def test_a_database_of_an_earlier_version_gets_the_newer_migrations(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    *earlier, (last, _) = MIGRATIONS
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:  # as an earlier version left it
        conn.execute(
            "CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        for name, sql in earlier:
            conn.executescript(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (name,))
    assert "replicas" not in _tables(path)
    db = await open_database(path)
    try:
        assert last in await applied_migrations(db)
        assert "replicas" in _tables(path)
    finally:
        await db.close()


async def test_database_uses_wal_and_rolls_back_failed_transactions(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "sub" / "db.sqlite")
    try:
        row = await db.fetch_one("PRAGMA journal_mode")
        assert row is not None and row[0] == "wal"
        try:
            async with db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO processed_events (platform, event_id, received_at) VALUES ('p', 'e', 0)"
                )
                raise RuntimeError("half way")
        except RuntimeError:
            pass
        assert await db.fetch_all("SELECT * FROM processed_events") == []
    finally:
        await db.close()


async def test_migration_names_are_unique_and_ordered() -> None:
    names = [name for name, _ in MIGRATIONS]
    assert len(names) == len(set(names))
    assert names == sorted(names)


async def test_a_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    db = await open_database(tmp_path / "db.sqlite")
    try:
        async with db.transaction() as tx:
            await tx.execute(
                "INSERT INTO processed_events (platform, event_id, received_at) VALUES ('p', 'a', 0)"
            )
            await tx.execute_many(
                "INSERT INTO processed_events (platform, event_id, received_at) VALUES ('p', ?, 0)",
                [("b",), ("c",)],
            )
        assert len(await db.fetch_all("SELECT * FROM processed_events")) == 3
        try:
            async with db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO processed_events (platform, event_id, received_at) VALUES ('p', 'd', 0)"
                )
                await tx.execute(  # a duplicate key: the whole transaction must roll back
                    "INSERT INTO processed_events (platform, event_id, received_at) VALUES ('p', 'a', 0)"
                )
        except Exception as exc:
            assert "UNIQUE" in str(exc)
        else:
            raise AssertionError("the duplicate did not fail")
        assert len(await db.fetch_all("SELECT * FROM processed_events")) == 3
        async with db.transaction() as tx:  # the writer is usable after a failed transaction
            await tx.execute("DELETE FROM processed_events WHERE event_id = 'a'")
        assert len(await db.fetch_all("SELECT * FROM processed_events")) == 2
    finally:
        await db.close()


async def _columns(db: Database) -> dict[str, set[str]]:
    """Every table's columns, read through the engine's own catalogue."""
    if db.dialect == "postgresql":
        rows = await db.fetch_all(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema()"
        )
        found: dict[str, set[str]] = {}
        for table, column in rows:
            found.setdefault(table, set()).add(column)
        return found
    tables = await db.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {
        t["name"]: {c["name"] for c in await db.fetch_all(f"PRAGMA table_info({t['name']})")}
        for t in tables
    }


async def test_both_engines_have_the_same_migrations_tables_and_columns(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    assert [n for n, _ in POSTGRES_MIGRATIONS] == [n for n, _ in MIGRATIONS]
    lite = await open_database(tmp_path / "db.sqlite")
    pg = await open_database(postgres.create_database())
    try:
        lite_columns, pg_columns = await _columns(lite), await _columns(pg)
        # PostgreSQL declares the rowid SQLite has implicitly (the inbox's insertion order)
        pg_columns["processed_events"].discard("rowid")
        assert pg_columns == lite_columns
        assert await applied_migrations(pg) == {n for n, _ in MIGRATIONS}
        assert await apply_migrations(pg) == []
    finally:
        await lite.close()
        await pg.close()


async def test_processes_starting_at_once_on_a_fresh_postgres_database_migrate_it_once(
    postgres: PostgresServer,
) -> None:
    """Five processes' worth of pools open one fresh database at the same moment: the migration
    lock lets one apply each migration; the others wait, see it applied and go on."""
    url = postgres.create_database()
    dbs = await asyncio.gather(*(open_database(url) for _ in range(5)))
    try:
        row = await dbs[0].fetch_one("SELECT count(*) FROM schema_migrations")
        assert row is not None and row[0] == len(MIGRATIONS)
    finally:
        for db in dbs:
            await db.close()
