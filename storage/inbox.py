"""The durable inbox: every accepted event is stored (serialised) in `processed_events` by the
same statement that dedupes it (`storage.events.claim_event`), and marked done once handled
(answered, refused or told). Events a stopped process left unfinished are read back at start-up.

Attachments are stored as metadata only: their `fetch` holds platform credentials and cannot be
serialised, so a replayed event's attachments cannot be fetched (`REFETCH_IMPOSSIBLE`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal

from bot.core.types import Actor, Attachment, CommandCall, ConversationKey, Event, Inbound
from bot.text.redact import redact
from storage.db import Database, Transaction

log = logging.getLogger(__name__)


class AttachmentGone(Exception):
    """Raised by a replayed event's attachment: its bytes were not kept across the restart."""


@dataclass(frozen=True, slots=True)
class PendingEvent:
    event: Event
    received_at: float


def encode_event(event: Event) -> str:
    """`event` as JSON, without attachment bytes or fetchers; secrets and token-shaped strings
    in its text and options are redacted (`bot.text.redact`)."""
    data: dict[str, Any] = {
        "type": "message" if isinstance(event, Inbound) else "command",
        "key": [event.key.platform, event.key.workspace, event.key.channel, event.key.thread],
        "actor": [
            event.actor.id,
            event.actor.name,
            event.actor.is_bot,
            event.actor.is_admin,
            event.actor.channel_admin,
            list(event.actor.roles),
        ],
        "event_id": event.event_id,
        "text": redact(event.text),  # a pasted token is not kept on disk
        "received_at": event.received_at,
        "attachments": [[a.kind, a.mime, a.name, a.size] for a in event.attachments],
    }
    if isinstance(event, Inbound):
        data["message_id"] = event.message_id
    else:
        data["name"] = event.name
        data["options"] = {k: redact(v) for k, v in event.options.items()}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def decode_event(payload: str) -> Event:
    data = json.loads(payload)
    key = ConversationKey(*data["key"])
    actor_id, name, is_bot, is_admin, *more = data["actor"]  # older rows have four fields
    channel_admin = bool(more[0]) if more else False
    roles = tuple(str(r) for r in more[1]) if len(more) > 1 else ()
    actor = Actor(actor_id, name, bool(is_bot), bool(is_admin), channel_admin, roles)
    attachments = tuple(
        Attachment(kind, mime, name, size, fetch=_gone(name))
        for kind, mime, name, size in data["attachments"]
    )
    if data["type"] == "message":
        return Inbound(
            key,
            actor,
            data["text"],
            data["event_id"],
            message_id=data["message_id"],
            attachments=attachments,
            received_at=data["received_at"],
        )
    return CommandCall(
        key,
        actor,
        data["name"],
        data["event_id"],
        text=data["text"],
        options=data["options"],
        attachments=attachments,
        received_at=data["received_at"],
    )


def _gone(name: str):  # type: ignore[no-untyped-def]
    async def fetch() -> bytes:
        raise AttachmentGone(name)

    return fetch


# How an accepted event ended; exactly one, written once (the first done mark wins).
Outcome = Literal["answered", "told", "dropped"]

_DONE = (
    "UPDATE processed_events SET done_at = ?, outcome = ? "
    "WHERE platform = ? AND event_id = ? AND done_at IS NULL"
)


async def mark_done(db: Database, platform: str, event_id: str, outcome: Outcome = "told") -> None:
    await db.execute(_DONE, (time.time(), outcome, platform, event_id))


async def mark_done_with(
    tx: Transaction, platform: str, event_id: str, outcome: Outcome = "answered"
) -> None:
    """`mark_done` inside the caller's transaction (a completed answer's final writes)."""
    await tx.execute(_DONE, (time.time(), outcome, platform, event_id))


@dataclass(frozen=True, slots=True)
class Endings:
    """The ledger's check: how the events accepted since a time ended, and those without an
    ending coming: no live process owns them (a process died and nobody took them up), or
    they have waited past the check's limit (none should)."""

    outcomes: dict[str, int]
    without: int
    oldest_without: float | None  # when the oldest of them arrived
    examples: tuple[str, ...]  # a few of their ids, for the log


async def endings(db: Database, since: float, stale_before: float) -> Endings:
    rows = await db.fetch_all(
        "SELECT coalesce(outcome, 'unrecorded') AS ending, count(*) AS n FROM processed_events "
        "WHERE payload IS NOT NULL AND done_at IS NOT NULL AND received_at >= ? "
        "GROUP BY coalesce(outcome, 'unrecorded')",
        (since,),
    )
    stuck = await db.fetch_all(
        "SELECT platform, event_id, received_at FROM processed_events "
        "WHERE payload IS NOT NULL AND done_at IS NULL AND (received_at < ? "
        "OR owner IS NULL OR owner NOT IN (SELECT id FROM replicas)) ORDER BY received_at",
        (stale_before,),
    )
    return Endings(
        outcomes={str(r["ending"]): int(r["n"]) for r in rows},
        without=len(stuck),
        oldest_without=float(stuck[0]["received_at"]) if stuck else None,
        examples=tuple(f"{r['platform']}:{r['event_id']}" for r in stuck[:5]),
    )


async def pending(db: Database) -> list[PendingEvent]:
    """Events accepted but not handled, oldest first (so each conversation keeps its order).
    An entry that cannot be read back is left out and marked done (nothing could replay it)."""
    rows = await db.fetch_all(
        "SELECT platform, event_id, received_at, payload FROM processed_events "
        "WHERE payload IS NOT NULL AND done_at IS NULL ORDER BY rowid"
    )
    events: list[PendingEvent] = []
    for row in rows:
        try:
            events.append(PendingEvent(decode_event(row["payload"]), row["received_at"]))
        except (ValueError, KeyError, TypeError) as exc:
            log.error(
                "inbox: event %s of %s cannot be read back (%s); it is not replayed",
                row["event_id"],
                row["platform"],
                type(exc).__name__,
            )
            await mark_done(db, row["platform"], row["event_id"], "dropped")
    return events
