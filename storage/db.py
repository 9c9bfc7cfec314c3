"""The SQLite database: one writer connection (WAL, `BEGIN IMMEDIATE`), one reader connection.

Writes are serialised by an asyncio lock around `transaction()`, so a transaction never sees
another coroutine's half-done work; reads go through a second connection, which in WAL mode
sees only committed data and never waits for the writer.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from storage.migrations import apply_migrations

log = logging.getLogger(__name__)

Row = aiosqlite.Row
MEMO_LIMIT = 20_000


class Database:
    def __init__(self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection):
        self.path = path
        self._writer = writer
        self._reader = reader
        self._write_lock = _lock()
        self._closed = False
        # Process-local copies of rarely written rows (channel settings), read on every turn.
        # Their writers go through this process and refresh the copy in the same step.
        self.memo: dict[object, object] = {}

    def remember(self, key: object, value: object) -> None:
        """Keep `value` in `memo`; the memo is emptied when it grows past `MEMO_LIMIT` entries,
        so memory stays bounded however many conversations the bot has seen."""
        if len(self.memo) >= MEMO_LIMIT:
            self.memo.clear()
        self.memo[key] = value

    @classmethod
    async def open(cls, path: Path | str) -> Database:
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        writer = await _connect(path)
        await writer.execute("PRAGMA journal_mode=WAL")
        await apply_migrations(writer)
        reader = await _connect(path)
        await reader.execute("PRAGMA query_only=ON")
        return cls(path, writer, reader)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._write_lock:
            await self._reader.close()
            await self._writer.execute("PRAGMA optimize")
            await self._writer.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """`BEGIN IMMEDIATE` … `COMMIT`, or `ROLLBACK` on any exception (so no half-written rows)."""
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.rollback()
                raise
            else:
                await self._writer.commit()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[Batch]:
        """A write transaction sent to the database thread in ONE trip when the block ends
        (`transaction()` costs a trip per statement plus BEGIN and COMMIT). Statements are
        recorded, not run, inside the block, so their results cannot be read there. All or
        nothing: any failure rolls the whole batch back."""
        batch = Batch()
        yield batch
        if not batch.statements:
            return
        async with self._write_lock:
            # aiosqlite has no public way to run several statements in one trip to its thread;
            # `_execute` (pinned version range, covered by tests) is that trip.
            await self._writer._execute(_run_batch, self._writer._conn, batch.statements)

    async def write(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Cursor:
        """One statement, atomic on its own (autocommit): a single trip to the database thread,
        where `transaction()` takes three or more. The cursor gives `rowcount` and `lastrowid`."""
        async with self._write_lock:
            return await self._writer.execute(sql, tuple(params))

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        rows = await self._reader.execute_fetchall(sql, tuple(params))
        return next(iter(rows), None)  # type: ignore[return-value]

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        return list(await self._reader.execute_fetchall(sql, tuple(params)))  # type: ignore[arg-type]


class Batch:
    """Statements recorded for `Database.batch()`; `execute`/`executemany` mirror aiosqlite's, so
    the storage functions that take a connection accept a batch too."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[Any, ...] | list[tuple[Any, ...]], bool]] = []

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> None:
        self.statements.append((sql, tuple(params), False))

    async def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        self.statements.append((sql, [tuple(row) for row in rows], True))


# What the storage functions that write inside a caller's transaction accept.
Executor = aiosqlite.Connection | Batch


def _run_batch(conn: sqlite3.Connection, statements: list[Any]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, params, many in statements:
            if many:
                conn.executemany(sql, params)
            else:
                conn.execute(sql, params)
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


async def _connect(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA foreign_keys=ON")
    await conn.execute("PRAGMA busy_timeout=5000")
    await conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _lock():  # a function so the lock binds to the running loop lazily (aiosqlite opens in one)
    import asyncio

    return asyncio.Lock()
