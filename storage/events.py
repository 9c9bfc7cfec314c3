"""Processed platform events: the dedupe that absorbs Slack retries and gateway replays."""

from __future__ import annotations

import time

from storage.db import Database


async def claim_event(db: Database, platform: str, event_id: str) -> bool:
    """Record an event id; False when it was already recorded (a redelivery)."""
    cursor = await db.write(
        "INSERT OR IGNORE INTO processed_events (platform, event_id, received_at) VALUES (?, ?, ?)",
        (platform, event_id, time.time()),
    )
    return cursor.rowcount == 1


async def prune_events(db: Database, older_than_seconds: float) -> int:
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM processed_events WHERE received_at < ?",
            (time.time() - older_than_seconds,),
        )
        return cursor.rowcount
