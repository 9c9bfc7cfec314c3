"""Conversations: a conversation key mapped to its history (chat backend) or its server-side
Conversations API id (responses backend). `/reset` archives; the next message starts afresh."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from bot.core.types import ConversationKey
from storage.db import Database, Row


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    id: int
    key: ConversationKey
    backend: str
    backend_conversation_id: str | None
    created_at: float


def _record(row: Row) -> ConversationRecord:
    key = ConversationKey(row["platform"], row["workspace"], row["channel"], row["thread"])
    return ConversationRecord(
        row["id"], key, row["backend"], row["backend_conversation_id"], row["created_at"]
    )


_SELECT_ACTIVE = (
    "SELECT * FROM conversations WHERE platform = ? AND workspace = ? AND channel = ? "
    "AND thread = ? AND backend = ? AND archived_at IS NULL"
)


def _params(key: ConversationKey, backend: str) -> tuple[str, ...]:
    return (key.platform, key.workspace, key.channel, key.thread, backend)


def _memo_key(key: ConversationKey, backend: str) -> tuple[str, ConversationKey, str]:
    return ("conversations", key, backend)


async def get_active(db: Database, key: ConversationKey, backend: str) -> ConversationRecord | None:
    """The active conversation at `key`. Records are cached in the process (read on every turn);
    every function here that changes one refreshes the copy."""
    cached = db.memo.get(_memo_key(key, backend))
    if isinstance(cached, ConversationRecord):
        return cached
    mark = db.memo_mark()
    row = await db.fetch_one(_SELECT_ACTIVE, _params(key, backend))
    if row is None:
        return None
    record = _record(row)
    db.remember(_memo_key(key, backend), record, read_at=mark)
    return record


async def ensure_active(db: Database, key: ConversationKey, backend: str) -> ConversationRecord:
    """The active conversation for `key`, created when there is none. A new one costs one
    write (its record is known from the insert), not a transaction with a read."""
    existing = await get_active(db, key, backend)
    if existing is not None:
        return existing
    return await create_active(db, key, backend)


async def create_active(db: Database, key: ConversationKey, backend: str) -> ConversationRecord:
    """`ensure_active` for a caller that has just read that there is none (`get_active`)."""
    now = time.time()
    result = await db.execute(
        "INSERT INTO conversations (platform, workspace, channel, thread, backend, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (*_params(key, backend), now),
    )
    if result.last_id is not None:
        record = ConversationRecord(result.last_id, key, backend, None, now)
    else:  # created meanwhile by another writer
        row = await db.fetch_one(_SELECT_ACTIVE, _params(key, backend))
        assert row is not None
        record = _record(row)
    db.remember(_memo_key(key, backend), record)
    return record


async def set_backend_id(db: Database, conversation_id: int, backend_id: str) -> None:
    await db.execute(
        "UPDATE conversations SET backend_conversation_id = ? WHERE id = ?",
        (backend_id, conversation_id),
    )
    db.memo_written()  # a read on its way may lack the id: it keeps nothing
    for memo_key, record in list(db.memo.items()):
        if isinstance(record, ConversationRecord) and record.id == conversation_id:
            db.memo[memo_key] = dataclasses.replace(record, backend_conversation_id=backend_id)


async def archive(db: Database, key: ConversationKey) -> int:
    """Archive every active conversation at `key` (all backends); return how many."""
    result = await db.execute(
        "UPDATE conversations SET archived_at = ? WHERE platform = ? AND workspace = ? "
        "AND channel = ? AND thread = ? AND archived_at IS NULL",
        (time.time(), key.platform, key.workspace, key.channel, key.thread),
    )
    db.forget(lambda k: isinstance(k, tuple) and k[:2] == ("conversations", key))
    return result.rowcount


async def active_at(db: Database, key: ConversationKey) -> list[ConversationRecord]:
    """Every active conversation at `key` (one per backend), read before `archive`."""
    rows = await db.fetch_all(
        "SELECT * FROM conversations WHERE platform = ? AND workspace = ? AND channel = ? "
        "AND thread = ? AND archived_at IS NULL",
        (key.platform, key.workspace, key.channel, key.thread),
    )
    return [_record(row) for row in rows]
