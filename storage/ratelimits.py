"""Per-user request rate limits counted in the database, so every process sharing it counts the
same requests (PostgreSQL). One row per scope holds the request times of the last minute.

The first statement of the transaction (an upsert) locks the scope's row, so concurrent checks
of one user, in any process, are counted one after the other.
"""

from __future__ import annotations

import json

from storage.db import Database

WINDOW = 60.0


async def hit(db: Database, scope: str, per_minute: int, now: float) -> float:
    """Record a request in `scope` at `now`; 0 when allowed, else the seconds to wait (nothing
    recorded)."""
    async with db.transaction() as tx:
        await tx.execute(
            "INSERT INTO rate_limits (scope, hits) VALUES (?, '[]') "
            "ON CONFLICT (scope) DO UPDATE SET hits = rate_limits.hits",
            (scope,),
        )
        row = await tx.fetch_one("SELECT hits FROM rate_limits WHERE scope = ?", (scope,))
        hits = [t for t in json.loads(row["hits"] if row else "[]") if now - t < WINDOW]
        if len(hits) >= per_minute:
            return WINDOW - (now - min(hits))
        hits.append(now)
        await tx.execute(
            "UPDATE rate_limits SET hits = ? WHERE scope = ?", (json.dumps(hits), scope)
        )
    return 0.0


async def forget_idle(db: Database, now: float) -> int:
    """Drop the rows of scopes with no request in the last minute."""
    rows = await db.fetch_all("SELECT scope, hits FROM rate_limits")
    idle = [r["scope"] for r in rows if all(now - t >= WINDOW for t in json.loads(r["hits"]))]
    if idle:
        await db.execute_many("DELETE FROM rate_limits WHERE scope = ?", [(s,) for s in idle])
    return len(idle)
