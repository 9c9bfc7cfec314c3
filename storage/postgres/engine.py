"""PostgreSQL through asyncpg: a connection pool shared by every coroutine of the process.

asyncpg rather than psycopg 3: it is asyncio-native (no thread hop per statement), its pool
re-opens connections a server restart closed, and it reads `sslmode` and the other libpq URL
parameters itself.

The repositories' SQL is written once, for both engines (`storage.db`): this engine rewrites
qmark placeholders (`?`) to PostgreSQL's `$1, $2, …`, and an INSERT into a table with an `id`
identity gets `RETURNING id` added, which is how `Result.last_id` is known (SQLite has
`lastrowid`).

A restart of the server while the bot runs: every statement and transaction is retried on a
fresh connection until `RECONNECT_SECONDS` have passed. A transaction is retried whole: its
statements are replayed in order, and the replay stands only if every read returns what the
caller already saw (otherwise `StorageError`). A deadlock or serialisation failure is retried
the same way. The one window nothing can close: a connection lost while COMMIT was on its way
leaves unknown whether it committed; the repositories' writes that matter (the inbox insert,
the done mark, run status changes) are idempotent, so a replay of those is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from functools import lru_cache
from typing import Any, TypeVar

import asyncpg
import asyncpg.exceptions as pgerr

from storage.db import Database, Params, Result, Row, StorageError, Transaction

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 60.0
T = TypeVar("T")

# The connection is gone (server restart, network) or the server is not taking connections yet.
_LOST: tuple[type[BaseException], ...] = (
    pgerr.ConnectionDoesNotExistError,
    pgerr.PostgresConnectionError,  # class 08
    pgerr.AdminShutdownError,
    pgerr.CrashShutdownError,
    pgerr.CannotConnectNowError,
    ConnectionError,
    OSError,
    TimeoutError,
)
# The server chose this transaction as the one to undo: running it again is the cure.
_CONFLICT: tuple[type[BaseException], ...] = (
    pgerr.DeadlockDetectedError,
    pgerr.SerializationError,
)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, _LOST + _CONFLICT):
        return True
    # asyncpg reports a statement on a connection closed under it as an InterfaceError.
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)


@lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """`?` placeholders → `$1, $2, …`, leaving quoted strings, identifiers and comments alone."""
    out: list[str] = []
    n = 0
    i = 0
    quote: str | None = None
    while i < len(sql):
        c = sql[i]
        if quote is not None:
            out.append(c)
            if c == quote:
                quote = None
        elif c in ("'", '"'):
            quote = c
            out.append(c)
        elif c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = len(sql) if end < 0 else end
            out.append(sql[i:end])
            i = end
            continue
        elif c == "?":
            n += 1
            out.append(f"${n}")
        else:
            out.append(c)
        i += 1
    return "".join(out)


_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)


def _rowcount(status: str) -> int:
    """asyncpg's command status ("INSERT 0 1", "UPDATE 3") → the number of rows."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresDatabase(Database):
    shared = True
    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool, where: str) -> None:
        super().__init__()
        self._pool = pool
        self.where = where  # host:port/database, for messages (never the password)
        self._id_tables: dict[str, bool] = {}
        self._closed = False

    # -- reads and single writes ----------------------------------------------------------------

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        query = translate(sql)
        args = tuple(params)
        return await self._retrying(lambda conn: conn.fetch(query, *args))

    async def execute(self, sql: str, params: Params = ()) -> Result:
        args = tuple(params)
        returning = await self._returning_id(sql)
        query = translate(sql + " RETURNING id" if returning else sql)

        async def run(conn: asyncpg.Connection) -> Result:
            if returning:
                rows = await conn.fetch(query, *args)
                return Result(len(rows), rows[0][0] if rows else None)
            return Result(_rowcount(await conn.execute(query, *args)))

        return await self._retrying(run)

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        query = translate(sql)
        batch = [tuple(row) for row in rows]

        async def run(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.executemany(query, batch)

        await self._retrying(run)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        tx = _PgTransaction(self)
        try:
            yield tx
            await tx.commit()
        except BaseException:
            await tx.abandon()
            raise

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.wait_for(self._pool.close(), 10)
        except (TimeoutError, *_LOST):
            self._pool.terminate()

    # -- engine helpers -------------------------------------------------------------------------

    async def lock(self, tx: Transaction, name: str) -> None:
        """An advisory lock, held until `tx` ends (other processes wait for it)."""
        await tx.fetch_one("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))

    async def _returning_id(self, sql: str) -> bool:
        """Whether an INSERT goes into a table whose `id` the database assigns."""
        match = _INSERT.match(sql)
        if match is None or _RETURNING.search(sql):
            return False
        table = match.group(1).lower()
        known = self._id_tables.get(table)
        if known is None:
            row = await self.fetch_one(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = "
                "current_schema() AND table_name = ? AND column_name = 'id' AND "
                "(is_identity = 'YES' OR column_default LIKE 'nextval%')",
                (table,),
            )
            known = bool(row and row[0])
            self._id_tables[table] = known
        return known

    async def _retrying(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """`work` on a pooled connection; again on a fresh one while the server is away."""
        deadline = time.monotonic() + RECONNECT_SECONDS
        attempt = 0
        while True:
            try:
                async with self._pool.acquire() as conn:
                    return await work(conn)
            except Exception as exc:
                if not _retryable(exc) or self._closed:
                    raise
                attempt += 1
                await self._pause(exc, attempt, deadline)

    async def _pause(self, exc: BaseException, attempt: int, deadline: float) -> None:
        if time.monotonic() > deadline:
            raise StorageError(
                f"PostgreSQL at {self.where} did not answer for {RECONNECT_SECONDS:.0f} s "
                f"({type(exc).__name__})"
            ) from exc
        if attempt == 1:
            log.warning(
                "PostgreSQL at %s: %s; retrying on a new connection", self.where, type(exc).__name__
            )
        await asyncio.sleep(min(2.0, 0.05 * 2**attempt))


Step = tuple[str, str, tuple[Any, ...] | list[tuple[Any, ...]]]  # kind, sql, params


class _PgTransaction(Transaction):
    """One transaction on one pooled connection, taken at its first statement. Every step and
    what each read returned are kept, so the whole can be replayed on a new connection."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None
        self._tx: Any = None
        self._steps: list[tuple[Step, list[tuple[Any, ...]] | None]] = []
        self._failed = False

    async def execute(self, sql: str, params: Params = ()) -> None:
        await self._step(("execute", sql, tuple(params)))

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        await self._step(("many", sql, [tuple(row) for row in rows]))

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._step(("fetch", sql, tuple(params)))

    async def _step(self, step: Step) -> list[Row]:
        if self._failed:
            raise StorageError("a statement of this transaction failed; it was rolled back")
        deadline = time.monotonic() + RECONNECT_SECONDS
        attempt = 0
        while True:
            try:
                if self._conn is None:
                    await self._begin()
                    for done, seen in self._steps:  # a replay after a lost connection
                        again = await self._send(done)
                        if seen is not None and [tuple(r) for r in again] != seen:
                            raise StorageError(
                                "the database changed while a transaction was retried"
                            )
                rows = await self._send(step)
                break
            except Exception as exc:
                await self._drop()
                if not _retryable(exc) or self._db._closed:
                    self._failed = True
                    raise
                attempt += 1
                await self._db._pause(exc, attempt, deadline)
        self._steps.append((step, [tuple(r) for r in rows] if step[0] == "fetch" else None))
        return rows

    async def _begin(self) -> None:
        conn = await self._db._pool.acquire()
        try:
            tx = conn.transaction()
            await tx.start()
        except BaseException:
            await self._db._pool.release(conn)
            raise
        self._conn, self._tx = conn, tx

    async def _send(self, step: Step) -> list[Row]:
        kind, sql, params = step
        assert self._conn is not None
        if kind == "fetch":
            return list(await self._conn.fetch(translate(sql), *params))
        if kind == "many":
            await self._conn.executemany(translate(sql), params)
        else:
            await self._conn.execute(translate(sql), *params)
        return []

    async def commit(self) -> None:
        """Not retried: a connection lost during COMMIT leaves unknown whether it committed."""
        if self._conn is None:
            return
        assert self._tx is not None
        try:
            await self._tx.commit()
        finally:
            await self._release()

    async def abandon(self) -> None:
        await self._drop()

    async def _drop(self) -> None:
        """Roll back (when the connection still lives) and give the connection back. A
        connection that died meanwhile was rolled back by the server (and asyncpg may have
        detached it from the pool already)."""
        conn, tx = self._conn, self._tx
        self._conn, self._tx = None, None
        if conn is None:
            return
        with suppress(Exception):
            if tx is not None and not conn.is_closed():
                await tx.rollback()
        with suppress(Exception):
            await self._db._pool.release(conn)

    async def _release(self) -> None:
        conn, self._conn, self._tx = self._conn, None, None
        if conn is not None:
            with suppress(Exception):
                await self._db._pool.release(conn)


async def open_postgres(url: str, where: str, *, max_size: int = 10) -> PostgresDatabase:
    """A pool on the database at `url` (not yet migrated). One connection is opened now, so a
    wrong URL, an unreachable server or rejected credentials raise here."""
    pool = await asyncpg.create_pool(
        url,
        min_size=1,
        max_size=max_size,
        timeout=10,
        command_timeout=60,
        max_inactive_connection_lifetime=300,
    )
    return PostgresDatabase(pool, where)
