"""A channel's knowledge files (file search): which OpenAI file backs each name, its vector
store, its processing status, who added it and when."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from bot.core.types import ConversationKey
from storage.db import Database, Transaction

KnowledgeStatus = Literal["in_progress", "completed"]


@dataclass(frozen=True, slots=True)
class KnowledgeFile:
    name: str
    file_id: str
    vector_store_id: str
    status: KnowledgeStatus
    bytes: int
    added_by: str
    added_at: float


async def list_files(db: Database, key: ConversationKey) -> list[KnowledgeFile]:
    rows = await db.fetch_all(
        "SELECT name, file_id, vector_store_id, status, bytes, added_by, added_at "
        "FROM knowledge_files WHERE platform = ? AND workspace = ? AND channel = ? "
        "ORDER BY lower(name), name",
        (key.platform, key.workspace, key.channel),
    )
    return [
        KnowledgeFile(
            row["name"],
            row["file_id"],
            row["vector_store_id"],
            row["status"],
            row["bytes"],
            row["added_by"],
            row["added_at"],
        )
        for row in rows
    ]


async def put_file(tx: Transaction, key: ConversationKey, file: KnowledgeFile) -> None:
    """Add (or replace, by name) a file, inside the caller's transaction."""
    await tx.execute(
        "INSERT INTO knowledge_files (platform, workspace, channel, name, file_id, "
        "vector_store_id, status, bytes, added_by, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (platform, workspace, channel, name) DO UPDATE SET file_id = excluded.file_id, "
        "vector_store_id = excluded.vector_store_id, status = excluded.status, "
        "bytes = excluded.bytes, added_by = excluded.added_by, added_at = excluded.added_at",
        (
            key.platform,
            key.workspace,
            key.channel,
            file.name,
            file.file_id,
            file.vector_store_id,
            file.status,
            file.bytes,
            file.added_by,
            file.added_at or time.time(),
        ),
    )


async def delete_file(tx: Transaction, key: ConversationKey, name: str) -> None:
    await tx.execute(
        "DELETE FROM knowledge_files WHERE platform = ? AND workspace = ? AND channel = ? "
        "AND name = ?",
        (key.platform, key.workspace, key.channel, name),
    )


async def set_status(db: Database, key: ConversationKey, name: str, status: str) -> None:
    await db.execute(
        "UPDATE knowledge_files SET status = ? WHERE platform = ? AND workspace = ? "
        "AND channel = ? AND name = ?",
        (status, key.platform, key.workspace, key.channel, name),
    )
