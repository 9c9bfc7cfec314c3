"""The code interpreter container of each conversation (responses backend): one explicit
container per conversation, reused across turns until it expires and is replaced."""

from __future__ import annotations

import time

from storage.db import Database


async def get_container(db: Database, conversation_id: int) -> str | None:
    row = await db.fetch_one(
        "SELECT container_id FROM conversation_containers WHERE conversation_id = ?",
        (conversation_id,),
    )
    return row["container_id"] if row is not None else None


async def set_container(db: Database, conversation_id: int, container_id: str) -> None:
    await db.execute(
        "INSERT INTO conversation_containers (conversation_id, container_id, created_at) "
        "VALUES (?, ?, ?) ON CONFLICT (conversation_id) DO UPDATE SET "
        "container_id = excluded.container_id, created_at = excluded.created_at",
        (conversation_id, container_id, time.time()),
    )
