"""Taking an event in: it is accepted only once it is durably on record in the inbox.

Recording it can fail for a while (the database file locked by another program past SQLite's
own busy wait, the disk full, a PostgreSQL server restarting): it is tried again a bounded
number of times (`WAITS`). If it still cannot be recorded, the event is NOT accepted: the user is
told at once to send it again (`RESEND`) and an ERROR line is logged, so nothing the platform
delivered disappears without a word.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.core.types import Event

log = logging.getLogger(__name__)

# Pauses between attempts to record an event (each attempt also waits on a locked SQLite file
# for its busy timeout): three attempts in all.
WAITS: tuple[float, ...] = (0.2, 1.0)

RESEND = (
    "I could not take this message: my storage is failing right now, so it was not recorded. "
    "Please send it again in a moment."
)


class NotRecorded(Exception):
    """The event could not be put on record; `reason` is the storage's last error (no data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def record(event: Event, claim: Callable[[], Awaitable[bool]]) -> bool:
    """`claim()` (the inbox insert: True when new, False for a redelivery), retried on failure
    with the bounded `WAITS`; `NotRecorded` when every attempt failed."""
    last: Exception | None = None
    for attempt in range(len(WAITS) + 1):
        if attempt:
            await asyncio.sleep(WAITS[attempt - 1])
        try:
            claimed = await claim()
        except Exception as exc:
            last = exc
            log.warning(
                "event %s at %s: recording it failed (%s: %s), attempt %d of %d",
                event.event_id,
                event.key,
                type(exc).__name__,
                exc,
                attempt + 1,
                len(WAITS) + 1,
            )
        else:
            # After a failed attempt, "already there" may be that attempt's own insert, whose
            # commit went through before the error was raised: take it as ours, not a duplicate.
            return claimed or attempt > 0
    assert last is not None
    raise NotRecorded(f"{type(last).__name__}: {last}")
