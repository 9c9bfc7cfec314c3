"""Runs: one row per answer, with its lifecycle, and the usage it recorded.

queued → in_progress (⇄ requires_action while function tools run) → completed | failed |
cancelled (/cancel, /reset) | expired (SWITCHBOARD_RUN_TIMEOUT_SECONDS), plus `interrupted` for
answers cut short by a shutdown or a crash.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from bot.core.types import ConversationKey, Usage
from bot.text.redact import redact
from storage.db import Database, Row, Transaction

RunStatus = Literal[
    "queued",
    "in_progress",
    "requires_action",
    "completed",
    "failed",
    "cancelled",
    "expired",
    "interrupted",
]
FINAL_STATUSES: frozenset[str] = frozenset(
    {"completed", "failed", "cancelled", "expired", "interrupted"}
)


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    key: ConversationKey
    user_id: str
    event_id: str
    kind: str
    backend: str
    model: str
    status: str
    response_id: str | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    conversation_id: int | None
    shown_at: float | None = None


async def create_run(
    db: Database, key: ConversationKey, *, user_id: str, event_id: str, kind: str
) -> int:
    result = await db.execute(
        "INSERT INTO runs (platform, workspace, channel, thread, user_id, event_id, kind, "
        "status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
        (
            key.platform,
            key.workspace,
            key.channel,
            key.thread,
            user_id,
            event_id,
            kind,
            time.time(),
        ),
    )
    assert result.last_id is not None
    return result.last_id


async def start_run(
    db: Database, run_id: int, *, backend: str, model: str, conversation_id: int | None
) -> None:
    await db.execute(
        "UPDATE runs SET status = 'in_progress', started_at = ?, backend = ?, model = ?, "
        "conversation_id = ? WHERE id = ?",
        (time.time(), backend, model, conversation_id, run_id),
    )


async def finish_run(
    tx: Transaction,
    run_id: int,
    status: RunStatus,
    *,
    error: str | None = None,
    response_id: str | None = None,
) -> None:
    """Set a final status inside the caller's transaction."""
    await tx.execute(
        "UPDATE runs SET status = ?, error = ?, response_id = COALESCE(?, response_id), "
        "finished_at = ? WHERE id = ?",
        (status, _clean(error), response_id, time.time(), run_id),
    )


async def close_run(db: Database, run_id: int, status: RunStatus, error: str | None = None) -> None:
    """Set a final status on its own (no usage to record with it)."""
    await db.execute(
        "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?",
        (status, _clean(error), time.time(), run_id),
    )


async def record_usage(tx: Transaction, run_id: int, usage: Usage, cost: Decimal | None) -> None:
    await tx.execute(
        "INSERT INTO usage (run_id, model, input_tokens, cached_tokens, output_tokens, "
        "reasoning_tokens, image_input_tokens, image_output_tokens, images, audio_seconds, "
        "characters, file_search_calls, web_search_calls, container_sessions, cost_usd, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            usage.model,
            usage.input_tokens,
            usage.cached_tokens,
            usage.output_tokens,
            usage.reasoning_tokens,
            usage.image_input_tokens,
            usage.image_output_tokens,
            usage.images,
            usage.audio_seconds,
            usage.characters,
            usage.file_search_calls,
            usage.web_search_calls,
            usage.container_sessions,
            None if cost is None else float(cost),
            time.time(),
        ),
    )


async def mark_unfinished(
    db: Database, status: RunStatus, error: str, *, owner: str | None = None
) -> int:
    """Close every run still queued or in progress (start-up after a crash; shutdown). With
    `owner` (several processes on one database): only the runs of the events that process owns."""
    sql = (
        "UPDATE runs SET status = ?, error = ?, finished_at = ? "
        "WHERE status IN ('queued', 'in_progress', 'requires_action')"
    )
    params: tuple[object, ...] = (status, _clean(error), time.time())
    if owner is not None:
        sql += (
            " AND EXISTS (SELECT 1 FROM processed_events p WHERE p.platform = runs.platform "
            "AND p.event_id = runs.event_id AND p.owner = ?)"
        )
        params += (owner,)
    result = await db.execute(sql, params)
    return result.rowcount


async def close_unfinished_for_event(
    db: Database, platform: str, event_id: str, status: RunStatus, error: str
) -> int:
    """Close the runs of one event still queued or in progress (its process died)."""
    result = await db.execute(
        "UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE platform = ? "
        "AND event_id = ? AND status IN ('queued', 'in_progress', 'requires_action')",
        (status, _clean(error), time.time(), platform, event_id),
    )
    return result.rowcount


async def set_status(db: Database, run_id: int, status: RunStatus) -> None:
    """Move a running answer between `in_progress` and `requires_action` (never reopens a
    finished run)."""
    await db.execute(
        "UPDATE runs SET status = ? WHERE id = ? AND status IN ('in_progress', 'requires_action')",
        (status, run_id),
    )


async def set_response_id(db: Database, run_id: int, response_id: str) -> None:
    await db.execute("UPDATE runs SET response_id = ? WHERE id = ?", (response_id, run_id))


async def mark_shown(db: Database, run_id: int) -> None:
    """The first text of the answer reached the chat (a replay would now show it twice)."""
    await db.execute(
        "UPDATE runs SET shown_at = ? WHERE id = ? AND shown_at IS NULL", (time.time(), run_id)
    )


async def latest_for_event(db: Database, platform: str, event_id: str) -> RunRecord | None:
    row = await db.fetch_one(
        "SELECT * FROM runs WHERE platform = ? AND event_id = ? ORDER BY id DESC LIMIT 1",
        (platform, event_id),
    )
    return None if row is None else _record(row)


async def last_answer(db: Database, key: ConversationKey, user_id: str) -> RunRecord | None:
    """The latest answer (chat run) at `key`. A command sent at channel level (Slack slash
    commands carry no thread) falls back to `user_id`'s latest answer in any thread there."""
    row = await db.fetch_one(
        "SELECT * FROM runs WHERE platform = ? AND workspace = ? AND channel = ? AND thread = ? "
        "AND kind = 'chat' ORDER BY id DESC LIMIT 1",
        (key.platform, key.workspace, key.channel, key.thread),
    )
    if row is None and not key.thread:
        row = await db.fetch_one(
            "SELECT * FROM runs WHERE platform = ? AND workspace = ? AND channel = ? "
            "AND user_id = ? AND kind = 'chat' ORDER BY id DESC LIMIT 1",
            (key.platform, key.workspace, key.channel, user_id),
        )
    return None if row is None else _record(row)


async def get_run(db: Database, run_id: int) -> RunRecord | None:
    row = await db.fetch_one("SELECT * FROM runs WHERE id = ?", (run_id,))
    return None if row is None else _record(row)


def _record(row: Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        key=ConversationKey(row["platform"], row["workspace"], row["channel"], row["thread"]),
        user_id=row["user_id"],
        event_id=row["event_id"],
        kind=row["kind"],
        backend=row["backend"],
        model=row["model"],
        status=row["status"],
        response_id=row["response_id"],
        error=row["error"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        conversation_id=row["conversation_id"],
        shown_at=row["shown_at"],
    )


def _clean(error: str | None) -> str | None:
    """A run's error text as stored: secrets and token-shaped strings redacted."""
    return redact(error) if error else error
