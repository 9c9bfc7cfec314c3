"""The inbox as a work queue shared by several processes ("replicas") on one database.

- Every process registers itself in `replicas` and renews `seen_at` (a heartbeat). One whose
  heartbeat is older than the liveness window is dead.
- An accepted event is owned (`processed_events.owner`) by the process that accepted it, and
  names its conversation (`processed_events.conversation`, its lane).
- A conversation's events are worked on oldest first, one at a time, each by its owner: an
  event may start only when it is the oldest unfinished event of its conversation
  (`first_pending`). That is the per-conversation lease: whoever owns the oldest unfinished
  event holds the conversation, whichever process it is, until that event is done.
- The events of a dead (or stopped) process are taken over by a live one (`take_orphans`): one
  UPDATE moves each to exactly one new owner, since the row's new owner is alive and the next
  taker's condition no longer holds for it.

The SQL is the same on both engines (SQLite has RETURNING since 3.35).
"""

from __future__ import annotations

import time
from collections.abc import Collection

from bot.core.types import ConversationKey
from storage.db import Database
from storage.inbox import PendingEvent, decode_event, mark_done

_UNFINISHED = "payload IS NOT NULL AND done_at IS NULL"


def conversation_of(key: ConversationKey) -> str:
    """A conversation key as stored in `processed_events.conversation`."""
    return "\x1f".join((key.platform, key.workspace, key.channel, key.thread))


async def register(db: Database, replica: str, *, alone: bool = False) -> None:
    """Record `replica` as alive. `alone`: no other process can be using this database (SQLite
    and its lock file), so every other registered process is gone: forget them."""
    now = time.time()
    async with db.transaction() as tx:
        if alone:
            await tx.execute("DELETE FROM replicas WHERE id != ?", (replica,))
        await tx.execute(
            "INSERT INTO replicas (id, started_at, seen_at) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            (replica, now, now),
        )


async def heartbeat(db: Database, replica: str) -> bool:
    """Renew `replica`'s heartbeat; False when its row was gone (it was taken for dead)."""
    result = await db.execute(
        "UPDATE replicas SET seen_at = ? WHERE id = ?", (time.time(), replica)
    )
    if result.rowcount == 0:
        await register(db, replica)
        return False
    return True


async def unregister(db: Database, replica: str) -> int:
    """`replica` stops: its unfinished events are handed back (no owner) so the others take them
    over at once instead of after the liveness window. Returns how many."""
    async with db.transaction() as tx:
        await tx.execute("DELETE FROM replicas WHERE id = ?", (replica,))
        rows = await tx.fetch_all(
            f"UPDATE processed_events SET owner = NULL WHERE owner = ? AND {_UNFINISHED} "
            "RETURNING event_id",
            (replica,),
        )
    return len(rows)


async def hand_back(db: Database, replica: str, platform: str, event_id: str) -> None:
    """Give one unfinished event of `replica` back (graceful stop: not started here)."""
    await db.execute(
        f"UPDATE processed_events SET owner = NULL WHERE platform = ? AND event_id = ? "
        f"AND owner = ? AND {_UNFINISHED}",
        (platform, event_id, replica),
    )


async def owner_of(db: Database, platform: str, event_id: str) -> str | None:
    """The process working on an unfinished event; None when it is done (or has no owner)."""
    row = await db.fetch_one(
        f"SELECT owner FROM processed_events WHERE platform = ? AND event_id = ? AND {_UNFINISHED}",
        (platform, event_id),
    )
    return None if row is None else row["owner"]


async def firsts(db: Database, conversations: list[str]) -> dict[str, tuple[str, str, str | None]]:
    """The oldest unfinished event of each of `conversations` that has one:
    conversation → (platform, event_id, owner)."""
    found: dict[str, tuple[str, str, str | None]] = {}
    for start in range(0, len(conversations), 500):
        chunk = conversations[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = await db.fetch_all(
            f"SELECT conversation, platform, event_id, owner FROM processed_events "
            f"WHERE conversation IN ({marks}) AND {_UNFINISHED} ORDER BY rowid",
            chunk,
        )
        for row in rows:
            found.setdefault(row["conversation"], (row["platform"], row["event_id"], row["owner"]))
    return found


async def take_orphans(
    db: Database,
    replica: str,
    live_since: float,
    *,
    also_mine: frozenset[tuple[str, str]] = frozenset(),
    platforms: Collection[str] = (),
) -> list[PendingEvent]:
    """Take every unfinished event whose owner is dead (not seen since `live_since`), gone, or
    none; and those of `replica` itself listed in `also_mine` (events it accepted but lost
    track of). Only events of `platforms` when given (a process takes only what it can answer).
    Returned oldest first; entries that cannot be read back are marked done."""
    only = ""
    params: list[object] = [replica, replica, live_since]
    if platforms:
        only = f" AND platform IN ({', '.join('?' for _ in platforms)})"
        params += list(platforms)
    async with db.transaction() as tx:
        rows = await tx.fetch_all(
            f"UPDATE processed_events SET owner = ? WHERE {_UNFINISHED} AND (owner IS NULL OR "
            "(owner != ? AND owner NOT IN (SELECT id FROM replicas WHERE seen_at >= ?)))"
            f"{only} RETURNING rowid, platform, event_id, received_at, payload",
            params,
        )
    found = sorted(rows, key=lambda r: r["rowid"])
    if also_mine:
        mine = await db.fetch_all(
            f"SELECT rowid, platform, event_id, received_at, payload FROM processed_events "
            f"WHERE owner = ? AND {_UNFINISHED} ORDER BY rowid",
            (replica,),
        )
        found += [r for r in mine if (r["platform"], r["event_id"]) in also_mine]
        found.sort(key=lambda r: r["rowid"])
    events: list[PendingEvent] = []
    for row in found:
        try:
            events.append(PendingEvent(decode_event(row["payload"]), row["received_at"]))
        except (ValueError, KeyError, TypeError):
            await mark_done(db, row["platform"], row["event_id"])
    return events


async def unfinished_of(db: Database, replica: str) -> list[tuple[str, str, float]]:
    """(platform, event_id, received_at) of every unfinished event `replica` owns."""
    rows = await db.fetch_all(
        f"SELECT platform, event_id, received_at FROM processed_events WHERE owner = ? "
        f"AND {_UNFINISHED}",
        (replica,),
    )
    return [(r["platform"], r["event_id"], r["received_at"]) for r in rows]
