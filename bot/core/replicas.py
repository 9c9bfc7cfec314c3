"""This process as one replica of the bot: its place in the shared work queue (`storage.work`).

On SQLite the process is alone (its lock file sees to that): it registers, and its start-up
recovery takes up only events no live process owns, so a message accepted while the adapters
were connecting is never taken for one the previous process left unfinished.

On PostgreSQL several processes share the inbox:
- each event is worked on by the process that accepted it, when it is the oldest unfinished
  event of its conversation (`wait_turn`): one process at a time per conversation, in order,
  while different conversations run everywhere in parallel;
- a heartbeat every `HEARTBEAT_SECONDS`; a process not seen for `LIVE_SECONDS` is dead, and a
  sweep every `SWEEP_SECONDS` in each live process takes over the dead one's events and hands
  them to recovery (answered, or the user told it was interrupted): taken over within
  LIVE_SECONDS + SWEEP_SECONDS (25 s) of the death;
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
from collections.abc import Awaitable, Callable

from bot.core.types import Event
from storage import work
from storage.db import Database
from storage.inbox import PendingEvent

log = logging.getLogger(__name__)

LIVE_SECONDS = 20.0
HEARTBEAT_SECONDS = 5.0
SWEEP_SECONDS = 5.0
LOST_TRACK_SECONDS = 30.0  # an own event neither running nor done for this long is taken up again
MAX_POLL = 0.25

Orphans = Callable[[list[PendingEvent]], Awaitable[None]]


def replica_id() -> str:
    """host:pid:random, unique across restarts and hosts."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class WorkQueue:
    def __init__(self, db: Database, replica: str | None = None) -> None:
        self.db = db
        self.id = replica or replica_id()
        self.shared = db.shared
        self.stopping = False
        self._held: dict[tuple[str, str], bool] = {}  # accepted here, not done: started?
        self._tasks: list[asyncio.Task[None]] = []
        self._on_orphans: Orphans | None = None

    async def start(self) -> None:
        await work.register(self.db, self.id, alone=not self.shared)

    def run_sweeps(self, on_orphans: Orphans) -> None:
        """Start the heartbeat and the sweep (shared databases only): `on_orphans` gets the
        events taken over from dead processes, oldest first."""
        self._on_orphans = on_orphans
        if self.shared:
            self._tasks = [
                asyncio.ensure_future(self._every(HEARTBEAT_SECONDS, self._beat)),
                asyncio.ensure_future(self._every(SWEEP_SECONDS, self.sweep)),
            ]

    def live_since(self) -> float:
        """Processes seen after this moment are alive (alone: only this one is)."""
        return time.time() - LIVE_SECONDS if self.shared else time.time() + 1

    # -- events ---------------------------------------------------------------------------------

    def accepting(self, event: Event) -> None:
        """Called just before the event is recorded: it is held here from then on (sharing the
        database; alone, nothing needs to know)."""
        if self.shared:
            self._held[(event.key.platform, event.event_id)] = False

    def not_accepted(self, event: Event) -> None:
        self._held.pop((event.key.platform, event.event_id), None)

    async def wait_turn(self, event: Event, ordered: bool) -> bool:
        """Wait until this process may work on `event`; False when it must not (done or taken
        over elsewhere, or handed back because this process is stopping)."""
        mark = (event.key.platform, event.event_id)
        if not self.shared:
            return True
        delay = 0.01
        conversation = work.conversation_of(event.key)
        while True:
            if self.stopping:
                return False
            turn = await work.turn(self.db, self.id, conversation, *mark)
            if not turn.mine:
                log.info("event %s at %s is not ours any more; skipped", event.event_id, event.key)
                return False
            if turn.first or not ordered:
                self._held[mark] = True
                return True
            await asyncio.sleep(delay)
            delay = min(MAX_POLL, delay * 2)

    def finished(self, event: Event) -> None:
        self._held.pop((event.key.platform, event.event_id), None)

    async def hand_back_unstarted(self) -> int:
        """Graceful stop: give back at once every held event not started yet."""
        self.stopping = True
        if not self.shared:
            return 0
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
        return await work.take_orphans(self.db, self.id, self.live_since(), also_mine=lost)

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
            log.warning("this process was taken for dead (no heartbeat for %.0f s)", LIVE_SECONDS)

    async def _every(self, seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("%s failed: %s: %s", job.__name__, type(exc).__name__, exc)
