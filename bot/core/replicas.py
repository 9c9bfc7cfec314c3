"""This process as one replica of the bot: its place in the shared work queue (`storage.work`).

On SQLite the process is alone (its lock file sees to that): it registers, and its start-up
recovery takes up only events no live process owns, so a message accepted while the adapters
were connecting is never taken for one the previous process left unfinished.

On PostgreSQL several processes share the inbox:
- each event is worked on by the process that accepted it, when it is the oldest unfinished
  event of its conversation: one process at a time per conversation, in order, while different
  conversations run everywhere in parallel. Until then it is parked here (`park`), outside the
  lanes, so a waiting event holds neither its lane nor a slot of the concurrency limit (an
  older event taken over from a dead process can always pass it);
- a heartbeat every quarter of `live_seconds` (SWITCHBOARD_REPLICA_TIMEOUT, 20 s); a process
  not seen for `live_seconds` is dead, and a sweep every quarter of it in each live process
  takes over the dead one's events and hands them to recovery (answered, or the user told it
  was interrupted): taken over within 1.25 × live_seconds (25 s) of the death;
- a graceful stop hands back the events not started yet at once (`stopping`), and every event
  still owned at the end (`stop`), so the others take them up at their next sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Collection

from bot.core.types import Event
from storage import work
from storage.db import Database
from storage.inbox import PendingEvent

log = logging.getLogger(__name__)

LIVE_SECONDS = 20.0
LOST_TRACK_SECONDS = 30.0  # an own event neither running nor done for this long is taken up again
MAX_POLL = 0.25

Orphans = Callable[[list[PendingEvent]], Awaitable[None]]
Release = Callable[[], None]  # puts a parked event's job in its lane (may raise LanesClosed)


def replica_id() -> str:
    """host:pid:random, unique across restarts and hosts."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class WorkQueue:
    def __init__(
        self, db: Database, replica: str | None = None, *, live_seconds: float = LIVE_SECONDS
    ) -> None:
        self.db = db
        self.id = replica or replica_id()
        self.live_seconds = live_seconds
        self.shared = db.shared
        self.stopping = False
        self._held: dict[tuple[str, str], bool] = {}  # accepted here, not done: started?
        self._tasks: list[asyncio.Task[None]] = []
        self._on_orphans: Orphans | None = None
        self._parked: dict[str, list[tuple[Event, Release]]] = {}  # conversation → waiting
        self._wake = asyncio.Event()
        self._releaser: asyncio.Task[None] | None = None
        # The platforms this process can answer (its connected adapters): it takes over only
        # their events. Set at wiring; None = all.
        self.platforms: Callable[[], Collection[str]] | None = None

    async def start(self) -> None:
        await work.register(self.db, self.id, alone=not self.shared)

    def run_sweeps(self, on_orphans: Orphans) -> None:
        """Start the heartbeat and the sweep (shared databases only): `on_orphans` gets the
        events taken over from dead processes, oldest first."""
        self._on_orphans = on_orphans
        if self.shared:
            self._tasks = [
                asyncio.ensure_future(self._every(self.live_seconds / 4, self._beat)),
                asyncio.ensure_future(self._every(self.live_seconds / 4, self.sweep)),
            ]

    def live_since(self) -> float:
        """Processes seen after this moment are alive (alone: only this one is)."""
        return time.time() - self.live_seconds if self.shared else time.time() + 1

    # -- events ---------------------------------------------------------------------------------

    def accepting(self, event: Event) -> None:
        """Called just before the event is recorded: it is held here from then on (sharing the
        database; alone, nothing needs to know)."""
        if self.shared:
            self._held[(event.key.platform, event.event_id)] = False

    def not_accepted(self, event: Event) -> None:
        self._held.pop((event.key.platform, event.event_id), None)

    def park(self, event: Event, release: Release) -> None:
        """Queue `event` for its lane once it is the oldest unfinished event of its
        conversation (alone on the database: at once)."""
        if not self.shared:
            release()
            return
        self._parked.setdefault(work.conversation_of(event.key), []).append((event, release))
        self._wake.set()
        if self._releaser is None or self._releaser.done():
            self._releaser = asyncio.ensure_future(self._release_loop())

    @property
    def parked(self) -> int:
        return sum(len(items) for items in self._parked.values())

    async def _release_loop(self) -> None:
        """Release each conversation's oldest unfinished event when it is parked here; drop
        parked events that are done or owned elsewhere now. Woken by `park` and `finished`,
        and every `MAX_POLL` seconds for the events other processes finish."""
        while self._parked and not self.stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), MAX_POLL)
            self._wake.clear()
            asked = list(self._parked)
            try:
                firsts = await work.firsts(self.db, asked)
            except Exception as exc:
                log.error("could not read the work queue: %s", type(exc).__name__)
                await asyncio.sleep(MAX_POLL)
                continue
            for conversation in asked:  # (not those parked meanwhile: not asked about)
                self._release_first(conversation, firsts.get(conversation))

    def _release_first(self, conversation: str, first: tuple[str, str, str | None] | None) -> None:
        items = self._parked.get(conversation, [])
        if first is None:  # nothing unfinished there: every parked event was done elsewhere
            items.clear()
        else:
            platform, event_id, owner = first
            for item in items:
                event, release = item
                if (event.key.platform, event.event_id) != (platform, event_id):
                    continue
                items.remove(item)
                if owner != self.id:
                    self.finished(event)  # taken over elsewhere meanwhile
                    break
                try:
                    release()
                except Exception as exc:  # lanes closed: stopping, it is handed back
                    log.info("event %s not queued: %s", event_id, type(exc).__name__)
                break
        if not items:
            self._parked.pop(conversation, None)

    async def wait_turn(self, event: Event, ordered: bool) -> bool:
        """Whether this process may work on `event` now (the lane is about to run it): False
        when it must not (done or taken over elsewhere, or handed back on stopping)."""
        mark = (event.key.platform, event.event_id)
        if not self.shared:
            return True
        if self.stopping:
            return False
        if await work.owner_of(self.db, *mark) != self.id:
            log.info("event %s at %s is not ours any more; skipped", event.event_id, event.key)
            return False
        self._held[mark] = True
        return True

    def finished(self, event: Event) -> None:
        self._held.pop((event.key.platform, event.event_id), None)
        self._wake.set()  # the next event of its conversation may be parked here

    async def hand_back_unstarted(self) -> int:
        """Graceful stop: give back at once every held event not started yet."""
        self.stopping = True
        if not self.shared:
            return 0
        self._parked.clear()
        waiting = [mark for mark, started in self._held.items() if not started]
        for platform, event_id in waiting:
            try:
                await work.hand_back(self.db, self.id, platform, event_id)
            except Exception as exc:
                log.error("could not hand back event %s: %s", event_id, type(exc).__name__)
        if waiting:
            log.info("handed %d queued events back to the other processes", len(waiting))
        return len(waiting)

    async def stop_beating(self) -> None:
        """Stop the heartbeat and the sweep (this process will soon be taken for dead)."""
        if self._releaser is not None:
            self._tasks.append(self._releaser)
            self._releaser = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def stop(self) -> None:
        """Stop the heartbeat and the sweep; hand every unfinished event back."""
        self.stopping = True
        await self.stop_beating()
        try:
            handed = await work.unregister(self.db, self.id)
        except Exception as exc:
            log.error("could not hand back this process's events: %s", type(exc).__name__)
            return
        if handed and self.shared:
            log.info("handed %d unfinished events back to the other processes", handed)

    # -- taking over ----------------------------------------------------------------------------

    async def take_orphans(self) -> list[PendingEvent]:
        """The unfinished events of dead processes (and own ones this process lost track of),
        now owned by this one."""
        lost: frozenset[tuple[str, str]] = frozenset()
        if self.shared:
            old = time.time() - LOST_TRACK_SECONDS
            mine = await work.unfinished_of(self.db, self.id)
            open_marks = {(p, e) for p, e, _ in mine}
            for mark in [m for m in self._held if m not in open_marks]:
                del self._held[mark]  # done meanwhile (told by a notice, or elsewhere)
            lost = frozenset((p, e) for p, e, at in mine if at < old and (p, e) not in self._held)
        platforms = self.platforms() if self.platforms is not None else ()
        return await work.take_orphans(
            self.db, self.id, self.live_since(), also_mine=lost, platforms=platforms
        )

    async def sweep(self) -> None:
        if self.stopping or self._on_orphans is None:
            return
        taken = await self.take_orphans()
        for entry in taken:
            self._held[(entry.event.key.platform, entry.event.event_id)] = False
        if taken:
            log.warning("took over %d events of a process that stopped or died", len(taken))
            await self._on_orphans(taken)

    async def _beat(self) -> None:
        if not await work.heartbeat(self.db, self.id):
            log.warning(
                "this process was taken for dead (no heartbeat for %.0f s)", self.live_seconds
            )

    async def _every(self, seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("%s failed: %s: %s", job.__name__, type(exc).__name__, exc)
