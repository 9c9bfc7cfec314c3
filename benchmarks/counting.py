"""Database round trips, counted at the storage interface (`storage.db.Database`).

`CountingDatabase` wraps the app's database in the benchmark's bot process only (`install`
swaps the opener `bot.app` uses); product code is unchanged. One round trip is what an engine
may make one trip of: a read, a single write, an `execute_many`, and a transaction block (its
writes go with BEGIN/COMMIT) plus one for each read inside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

from storage.db import Database, Params, Result, Row, Transaction


def _statement(sql: str) -> str:
    """A short label for a statement: its verb and table ("UPDATE runs", "SELECT configs")."""
    words = sql.replace("\n", " ").split()
    verb = words[0].upper() if words else "?"
    upper = [w.upper() for w in words]
    for marker in ("INTO", "UPDATE", "FROM"):
        if marker in upper:
            index = upper.index(marker) + 1
            if index < len(words):
                return f"{verb} {words[index]}"
    return verb


class CountingDatabase(Database):
    """Forwards everything to `inner`, counting trips (`trips`) and statements (`statements`)."""

    def __init__(self, inner: Database) -> None:
        super().__init__()
        self._inner = inner
        self.memo = inner.memo  # one cache: the repositories read and refresh it through us
        self.trips: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:  # engine extras (`path`, …)
        return getattr(self._inner, name)

    def memo_mark(self) -> int:
        return self._inner.memo_mark()

    def remember(self, key: object, value: object, *, read_at: int | None = None) -> None:
        self._inner.remember(key, value, read_at=read_at)

    def memo_written(self) -> None:
        self._inner.memo_written()

    def forget(self, stale: Callable[[object], bool]) -> None:
        self._inner.forget(stale)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        self._count("read", sql)
        return await self._inner.fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        self._count("read", sql)
        return await self._inner.fetch_all(sql, params)

    async def execute(self, sql: str, params: Params = ()) -> Result:
        self._count("write", sql)
        return await self._inner.execute(sql, params)

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        self._count("write", sql)
        await self._inner.execute_many(sql, rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        tx = _CountingTransaction(self)
        async with self._inner.transaction() as inner:
            tx.inner = inner
            yield tx
        if tx.reads or tx.writes:  # COMMIT, with the writes queued since the last read
            self.trips["transaction"] += 1

    async def close(self) -> None:
        await self._inner.close()

    def _count(self, kind: str, sql: str) -> None:
        self.trips[kind] += 1
        self.statements[_statement(sql)] += 1


class _CountingTransaction(Transaction):
    def __init__(self, db: CountingDatabase) -> None:
        self._db = db
        self.inner: Transaction | None = None
        self.reads = 0
        self.writes = 0

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        self._read(sql)
        assert self.inner is not None
        return await self.inner.fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        self._read(sql)
        assert self.inner is not None
        return await self.inner.fetch_all(sql, params)

    async def execute(self, sql: str, params: Params = ()) -> None:
        self._write(sql)
        assert self.inner is not None
        await self.inner.execute(sql, params)

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        self._write(sql)
        assert self.inner is not None
        await self.inner.execute_many(sql, rows)

    def _read(self, sql: str) -> None:
        # a read inside a block is one trip (it carries the writes queued before it)
        self.reads += 1
        self.writes = 0
        self._db.trips["transaction"] += 1
        self._db.statements[_statement(sql)] += 1

    def _write(self, sql: str) -> None:
        self.writes += 1
        self._db.statements[_statement(sql)] += 1


class EngineTrips:
    """Trips the SQLite engine actually makes to aiosqlite's threads (writer and reader): fewer
    than the interface's count when concurrent writes share a trip."""

    count = 0

    @classmethod
    def install(cls) -> None:
        import aiosqlite.core

        real = aiosqlite.core.Connection._execute
        if getattr(real, "counted", False):
            return

        async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
            cls.count += 1
            return await real(self, fn, *args, **kwargs)

        counted.counted = True  # type: ignore[attr-defined]
        aiosqlite.core.Connection._execute = counted  # type: ignore[method-assign]


def install() -> list[CountingDatabase]:
    """Make `bot.app.App.create` open a counting database; returns the list each opened one is
    appended to. Also counts the engine's trips (`EngineTrips`)."""
    import bot.app

    EngineTrips.install()
    opened: list[CountingDatabase] = []
    real = bot.app.open_database

    async def counting_open(url: Any) -> Database:
        db = CountingDatabase(await real(url))
        opened.append(db)
        return db

    bot.app.open_database = counting_open  # type: ignore[assignment]
    return opened
