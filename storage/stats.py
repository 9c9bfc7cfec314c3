"""Figures about the whole deployment, for `/status` and the metrics: runs by status, spend,
the oldest event still waiting in the inbox, and whether storage answers at all."""

from __future__ import annotations

import time

from storage.db import Database


async def ping(db: Database) -> None:
    """Raise when storage does not answer a trivial query."""
    await db.fetch_one("SELECT 1")


async def runs_by_status(db: Database, since: float) -> dict[str, int]:
    rows = await db.fetch_all(
        "SELECT status, count(*) FROM runs WHERE created_at >= ? GROUP BY status ORDER BY status",
        (since,),
    )
    return {str(row[0]): int(row[1]) for row in rows}


async def spend_since(db: Database, since: float) -> float:
    """Dollars spent by every run since `since`, across workspaces (unknown costs count 0)."""
    row = await db.fetch_one(
        "SELECT coalesce(sum(u.cost_usd), 0) FROM runs JOIN usage u ON u.run_id = runs.id "
        "WHERE runs.created_at >= ?",
        (since,),
    )
    return float(row[0]) if row else 0.0


async def oldest_pending_age(db: Database) -> float:
    """Seconds since the oldest accepted event not yet handled arrived (0 when there is none)."""
    row = await db.fetch_one(
        "SELECT min(received_at) FROM processed_events WHERE done_at IS NULL AND payload IS NOT NULL"
    )
    if row is None or row[0] is None:
        return 0.0
    return max(0.0, time.time() - float(row[0]))
