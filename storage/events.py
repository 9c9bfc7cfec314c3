"""Processed platform events: the dedupe that absorbs Slack retries and gateway replays, and the
durable inbox (`storage.inbox`) that keeps an accepted event until it is handled."""

from __future__ import annotations

import time

from storage.db import Database


async def claim_event(
    db: Database,
    platform: str,
    event_id: str,
    payload: str | None = None,
    *,
    owner: str | None = None,
    conversation: str | None = None,
) -> bool:
    """Record an event id; False when it was already recorded (a redelivery, also one that
    landed on another process sharing the database). With `payload`
    (`storage.inbox.encode_event`), the same statement puts the event in the durable inbox, so
    an event is never accepted without being on record; `owner` (the accepting process) and
    `conversation` (its lane) make it an item of the shared work queue (`storage.work`)."""
    result = await db.execute(
        "INSERT INTO processed_events (platform, event_id, received_at, payload, owner, "
        "conversation) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (platform, event_id, time.time(), payload, owner, conversation),
    )
    return result.rowcount == 1


async def prune_events(db: Database, older_than_seconds: float) -> int:
    """Forget old event ids. Events still waiting to be handled stay (the inbox needs them)."""
    result = await db.execute(
        "DELETE FROM processed_events WHERE received_at < ? "
        "AND (payload IS NULL OR done_at IS NOT NULL)",
        (time.time() - older_than_seconds,),
    )
    return result.rowcount
