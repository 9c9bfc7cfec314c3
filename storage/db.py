"""The SQLite database: one writer connection (WAL, `BEGIN IMMEDIATE`), one reader connection.

Writes are serialised by an asyncio lock around `transaction()`, so a transaction never sees
another coroutine's half-done work; reads go through a second connection, which in WAL mode
sees only committed data and never waits for the writer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from storage.migrations import apply_migrations

log = logging.getLogger(__name__)

Row = aiosqlite.Row


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
