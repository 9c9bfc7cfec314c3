"""Message history for the chat-completions backend (the responses backend keeps it server-side)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from bot.text.redact import redact
from storage.db import Database, Transaction


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    role: str
    content: str


async def recent_history(
    db: Database, conversation_id: int, limit: int = 500
) -> list[HistoryMessage]:
    """The newest `limit` messages, oldest first."""
    rows = await db.fetch_all(
        "SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT ?",
        (conversation_id, limit),
    )
    return [HistoryMessage(row["role"], row["content"]) for row in reversed(rows)]


async def append_messages(
    tx: Transaction,
    conversation_id: int,
    run_id: int | None,
    messages: Iterable[HistoryMessage],
) -> None:
    """Append inside the caller's transaction, so a turn's messages land with its run status.
    Secrets and token-shaped strings a user pasted are redacted: the model got them in the turn
    itself, the history on disk does not keep them."""
    now = time.time()
    await tx.execute_many(
        "INSERT INTO messages (conversation_id, role, content, run_id, created_at) VALUES (?, ?, ?, ?, ?)",
        [(conversation_id, m.role, redact(m.content), run_id, now) for m in messages],
    )
