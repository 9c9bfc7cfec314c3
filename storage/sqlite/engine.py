"""SQLite through aiosqlite: one writer connection (WAL, `BEGIN IMMEDIATE`), one reader.

Writes are serialised by an asyncio lock around the writer, so a transaction never sees another
coroutine's half-done work; reads go through the second connection, which in WAL mode sees only
committed data and never waits for the writer.

Every call is ONE trip to aiosqlite's database thread. A transaction records its writes and sends
them with its next read, or with BEGIN and COMMIT when the block ends: a completed answer's five
writes cost one trip, not seven. Single writes (`execute`) that coroutines make while another
write is on its way share the next trip (group commit): each still commits on its own and
returns once it has, but under a burst fifty answers' writes no longer queue for fifty trips,
each waiting for the thread and the GIL. A write that finds nobody writing goes at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from storage.db import Database, Params, Result, Row, StorageError, Transaction
from storage.sqlite import lock

# (sql, parameters, many): one `execute`, or one `executemany` over a list of parameter tuples.
Write = tuple[str, tuple[Any, ...] | list[tuple[Any, ...]], bool]
Read = tuple[str, tuple[Any, ...]]


class SqliteDatabase(Database):
    def __init__(
        self,
        path: Path,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        *,
        read_only: bool = False,
        lock_file: Path | None = None,
    ) -> None:
        super().__init__()
        self.path = path
        self._lock_file = lock_file
        self._writer = writer
        self._reader = reader
        self._read_only = read_only
        self._write_lock = asyncio.Lock()
        self._closed = False
        # Single writes waiting for the next trip, and the task that sends them (group commit).
        self._queued: list[tuple[str, tuple[Any, ...], asyncio.Future[tuple[int, int | None]]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self._reader.execute_fetchall(sql, tuple(params))
        return next(iter(rows), None)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return list(await self._reader.execute_fetchall(sql, tuple(params)))

    async def execute(self, sql: str, params: Params = ()) -> Result:
        if not self._write_lock.locked() and (self._sender is None or self._sender.done()):
            # Nobody is writing: a trip of its own, with no hand-off to the sender task (which
            # would cost the caller two more turns of a busy event loop).
            async with self._write_lock:
                rowcount, last_id = await self._send(_write_one, sql, tuple(params))
            return Result(rowcount, last_id)
        future: asyncio.Future[tuple[int, int | None]] = asyncio.get_running_loop().create_future()
        self._queued.append((sql, tuple(params), future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._send_queued())
        rowcount, last_id = await future
        return Result(rowcount, last_id)

    async def _send_queued(self) -> None:
        """Send every queued single write in one trip, in order, each committed on its own;
        writes queued during the trip go in the next. A task of its own, so a caller that is
        cancelled never strands the others' writes."""
        while self._queued:
            async with self._write_lock:
                batch, self._queued = self._queued, []
                try:
                    outcomes = await self._send(_write_each, [(sql, p) for sql, p, _ in batch])
                except BaseException as exc:  # the trip itself failed (closed connection, …)
                    outcomes = [exc] * len(batch)
            for (_sql, _params, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        statements: list[Write] = [(sql, [tuple(row) for row in rows], True)]
        async with self._write_lock:
            await self._send(_trip, True, statements, None, True)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        tx = _SqliteTransaction(self)
        try:
            yield tx
            await tx.commit()
        except BaseException:
            await tx.abandon()
            raise
        finally:
            tx.release()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._sender is not None:
            await asyncio.wait({self._sender})
        async with self._write_lock:
            if self._read_only:
                await self._reader.close()
                return
            await self._reader.close()
            try:
                await self._writer.execute("PRAGMA optimize")
            finally:
                await self._writer.close()
                if self._lock_file is not None:
                    lock.release(self._lock_file)

    async def _send(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(connection, *args)` in the writer's thread, after everything queued before.
        aiosqlite has no public way to run several statements in one trip to its thread;
        `_execute` (pinned version range, covered by tests) is that trip."""
        return await self._writer._execute(fn, self._writer._conn, *args)


class _SqliteTransaction(Transaction):
    """Writes wait in `_writes` until a read or the end of the block sends them. The writer lock
    is taken at the first trip and held until the block ends, so a block that only writes holds
    it for one trip."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        self._writes: list[Write] = []
        self._locked = False  # the lock is ours and BEGIN was (or is being) sent
        self._failed = False

    async def execute(self, sql: str, params: Params = ()) -> None:
        self._writes.append((sql, tuple(params), False))

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        self._writes.append((sql, [tuple(row) for row in rows], True))

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._trip((sql, tuple(params)), commit=False)

    async def commit(self) -> None:
        if self._locked or self._writes:
            await self._trip(None, commit=True)

    async def abandon(self) -> None:
        """Roll back whatever reached the database (nothing, when no trip was made). Queued
        after any trip still running, so it also ends a trip an exception interrupted."""
        self._writes = []
        if self._locked:
            await self._db._send(_rollback)

    def release(self) -> None:
        if self._locked:
            self._locked = False
            self._db._write_lock.release()

    async def _trip(self, read: Read | None, *, commit: bool) -> list[Row]:
        if self._failed:  # rolled back already: later writes must not commit on their own
            raise StorageError("a statement of this transaction failed; it was rolled back")
        begin = not self._locked
        if begin:
            await self._db._write_lock.acquire()
            self._locked = True
        writes, self._writes = self._writes, []
        try:
            return await self._db._send(_trip, begin, writes, read, commit)
        except BaseException:
            self._failed = True
            raise


# -- run in aiosqlite's thread ------------------------------------------------------------------


def _trip(
    conn: sqlite3.Connection,
    begin: bool,
    writes: list[Write],
    read: Read | None,
    commit: bool,
) -> list[sqlite3.Row]:
    """BEGIN IMMEDIATE (when `begin`), the writes, the read, COMMIT (when `commit`); on any
    failure, ROLLBACK, so a transaction is all or nothing."""
    try:
        if begin:
            conn.execute("BEGIN IMMEDIATE")
        for sql, params, many in writes:
            if many:
                conn.executemany(sql, params)
            else:
                conn.execute(sql, params)
        rows = conn.execute(*read).fetchall() if read is not None else []
        if commit:
            conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return rows


def _write_one(
    conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]
) -> tuple[int, int | None]:
    cursor = conn.execute(sql, params)
    try:
        # sqlite3 reports the connection's last insert even for a statement that inserted nothing
        return cursor.rowcount, cursor.lastrowid if cursor.rowcount > 0 else None
    finally:
        cursor.close()


def _write_each(
    conn: sqlite3.Connection, statements: list[tuple[str, tuple[Any, ...]]]
) -> list[tuple[int, int | None] | Exception]:
    """Each statement on its own (autocommit): its (rowcount, last id), or the error it raised."""
    outcomes: list[tuple[int, int | None] | Exception] = []
    for sql, params in statements:
        try:
            cursor = conn.execute(sql, params)
        except Exception as exc:
            outcomes.append(exc)
            continue
        try:
            # sqlite3 reports the connection's last insert even for a statement that inserted
            # nothing
            outcomes.append((cursor.rowcount, cursor.lastrowid if cursor.rowcount > 0 else None))
        finally:
            cursor.close()
    return outcomes


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.rollback()


# -- opening ------------------------------------------------------------------------------------


async def open_sqlite(path: Path) -> SqliteDatabase:
    """The database file at `path` (created with its folder when missing), not yet migrated,
    locked to this process (`storage.sqlite.lock.FileInUse` when another one has it)."""
    lock_file = None
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_file = lock.acquire(path)
    try:
        writer = await _connect(str(path))
    except BaseException:
        if lock_file is not None:
            lock.release(lock_file)
        raise
    try:
        await writer.execute_fetchall("PRAGMA journal_mode=WAL")
        reader = await _connect(str(path))
        await reader.execute("PRAGMA query_only=ON")
    except BaseException:
        await writer.close()
        if lock_file is not None:
            lock.release(lock_file)
        raise
    return SqliteDatabase(path, writer, reader, lock_file=lock_file)


@asynccontextmanager
async def open_read_only(path: Path) -> AsyncIterator[Database | None]:
    """The database at `path` opened read-only (never created, never migrated), or None when
    there is none yet. SQLite's errors inside the block come out as `StorageError`."""
    if not _has_data(path):
        yield None
        return
    try:
        conn = await _connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StorageError(str(exc)) from exc
    db = SqliteDatabase(path, conn, conn, read_only=True)
    try:
        yield db
    except sqlite3.Error as exc:
        raise StorageError(str(exc)) from exc
    finally:
        await db.close()


def _has_data(path: Path) -> bool:
    """False for a missing or empty file (SQLite treats an empty file as a new database)."""
    return path.is_file() and path.stat().st_size > 0


# How long a statement waits for a lock another connection holds before "database is locked"
# (the caller's bounded retries come on top: `bot.core.intake`). Tests shorten it.
BUSY_TIMEOUT_MS = 5000


async def _connect(database: str, **options: Any) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(database, isolation_level=None, **options)
    try:
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_MS)}")
        await conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        await conn.close()
        raise
    return conn
