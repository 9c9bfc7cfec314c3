"""The engine-neutral storage interface: everything repositories and callers may use.

An engine (`storage.sqlite` today) implements `Database` and `Transaction`; nothing outside its
package touches a driver or a connection. Repository SQL keeps to one dialect subset:

- parameters are positional qmark placeholders (`?`); an engine whose driver wants another
  style translates them;
- reads name their columns, and a row is read by column name or by position (`Row`);
- an engine-specific statement (pragmas, vacuum, …) belongs in the engine, not in a repository.

`storage.connect.open_database` picks the engine from `DATABASE_URL`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

MEMO_LIMIT = 20_000

Params = Sequence[Any]


class Row(Protocol):
    """One result row, read by column name (`row["id"]`) or position (`row[0]`); `dict(row)`
    gives the columns by name. `sqlite3.Row` and asyncpg's `Record` both are one."""

    def keys(self) -> Iterable[str]: ...

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Result:
    """What a write outside a transaction reports: the rows it changed, and for an INSERT into
    a table with an integer `id` key, the new row's id."""

    rowcount: int
    last_id: int | None = None


class StorageError(Exception):
    """A database that cannot be opened or read (the engine's own error is its `__cause__`)."""


class Transaction(ABC):
    """The statements of one `Database.transaction()` block: all committed when the block ends,
    or none when it raises.

    Writes may be deferred until the next read in the block or its end (the SQLite engine sends
    them in one trip), so `execute` returns nothing, and a failing write may raise at that later
    point, always inside the `async with`. Reads see the block's own writes. After a failed
    statement the transaction is over: catching the error inside the block does not revive it.

    Inside a block, write through the transaction: the database's own writes wait for the
    writer, which a block that has read holds until it ends.
    """

    @abstractmethod
    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...

    @abstractmethod
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> None: ...

    @abstractmethod
    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None: ...


class Database(ABC):
    """One open database: reads of committed data, single writes, transactions.

    A transaction never sees another coroutine's half-done work (SQLite: one writer in the
    process; PostgreSQL: each transaction on its own connection).

    `shared`: other processes may use the same database at the same time (PostgreSQL). Then
    nothing read may be kept in the process (`memo` stays empty: another process may change
    it), and work is coordinated through the database (`storage.work`).
    """

    shared: bool = False
    dialect: str = "sqlite"  # which DDL the migrations use: "sqlite" or "postgresql"

    def __init__(self) -> None:
        # Process-local copies of rarely written rows (channel settings, active conversations),
        # read on every turn. Their writers go through this process and refresh the copy.
        self.memo: dict[object, object] = {}
        self._memo_writes = 0  # how many writes have made copies stale so far

    def memo_mark(self) -> int:
        """Take before a read whose result may be remembered (`remember(..., read_at=mark)`)."""
        return self._memo_writes

    def remember(self, key: object, value: object, *, read_at: int | None = None) -> None:
        """Keep `value` in `memo`; the memo is emptied when it grows past `MEMO_LIMIT` entries,
        so memory stays bounded however many conversations the bot has seen. A shared database
        keeps nothing: every read sees what any process wrote last. With `read_at` (a
        `memo_mark` taken before the read), nothing is kept when a write made copies stale
        while the read was on its way: it may have read the rows before that write."""
        if self.shared or (read_at is not None and read_at != self._memo_writes):
            return
        if len(self.memo) >= MEMO_LIMIT:
            self.memo.clear()
        self.memo[key] = value

    def memo_written(self) -> None:
        """A write changed rows that copies may hold: reads on their way will not keep theirs.
        Call it after the write, before any other await (`forget` calls it)."""
        self._memo_writes += 1

    def forget(self, stale: Callable[[object], bool]) -> None:
        """Drop the copies a write made stale (`stale(key)`); reads on their way meanwhile will
        not keep theirs. Call it after the write, before any other await."""
        self.memo_written()
        for key in [k for k in self.memo if stale(k)]:
            del self.memo[key]

    @abstractmethod
    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of a read of committed data, or None."""

    @abstractmethod
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row of a read of committed data."""

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> Result:
        """One write, committed on its own (cheaper than a transaction of one statement)."""

    @abstractmethod
    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        """One statement for each of `rows`, committed together (all or none)."""

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """`async with db.transaction() as tx:` groups writes (and the reads they depend on)
        into one all-or-nothing transaction."""

    async def lock(self, tx: Transaction, name: str) -> None:
        """Hold the lock `name` until `tx` ends, against other processes too (migrations at
        start). SQLite needs nothing: a transaction there holds the one write lock."""
        return None

    @abstractmethod
    async def close(self) -> None:
        """Finish pending work and close; a second call does nothing."""
