"""Lanes: one FIFO queue and worker per conversation key, and one global concurrency limit.

Jobs of one key run strictly in submission order; different keys run in parallel, at most
`max_concurrency` at a time. A lane's worker exits as soon as its queue is empty, so idle
conversations cost nothing; the next job for that key starts a new worker.

Back-pressure: `admit` sizes up a new event against the bounds before it is queued. Past a soft
bound (`busy_per_key` jobs waiting in its lane, or `busy_total` in all) it is still queued but the
caller should say "busy"; past a hard bound (`max_per_key`, `max_total`) it must not be queued.
An admitted event holds its place (a reservation) until the caller submits its job, so events
admitted concurrently cannot overshoot the bounds while they are being recorded. `notify` runs
short jobs (the notices themselves) at once, outside lanes and the concurrency limit.

Fairness: an event may name its `owner` (the user who sent it). One owner holds at most
`max_per_owner` jobs (reserved, queued or running) in all lanes together; past that their new
event is refused (`share`) while everyone else's still gets in, so one user cannot fill the
queues and have every other user told "too busy".
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from contextvars import ContextVar
from typing import Literal

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
Level = Literal["accept", "busy", "refuse", "share"]


class LanesClosed(Exception):
    """Raised by `submit` after `close()`: the bot is shutting down."""


class Admission:
    """The verdict on one event, and (unless refused) its reserved place. Use as a context
    manager around the code that submits the event's job: the first `submit` for the same key
    inside it takes the reservation; leaving without submitting gives the place back."""

    def __init__(
        self, lanes: Lanes, key: Hashable | None, level: Level, owner: Hashable | None = None
    ) -> None:
        self._lanes = lanes
        self.key = key
        self.level: Level = level
        self.owner = owner
        self.held = level not in ("refuse", "share")

    @property
    def refused(self) -> bool:
        """Not queued: the queues are full (`refuse`) or its owner's share is (`share`)."""
        return self.level in ("refuse", "share")

    @property
    def busy(self) -> bool:
        return self.level == "busy"

    def __enter__(self) -> Admission:
        self._token = _current.set(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)
        if self.held:
            self.held = False
            self._lanes._release(self.key)
            self._lanes._disown(self.owner)


_current: ContextVar[Admission | None] = ContextVar("lanes_admission", default=None)


class Lanes:
    def __init__(
        self,
        max_concurrency: int,
        *,
        busy_per_key: int | None = None,
        max_per_key: int | None = None,
        busy_total: int | None = None,
        max_total: int | None = None,
        max_notices: int = 200,
        max_per_owner: int | None = None,
    ) -> None:
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._queues: dict[Hashable, deque[Job]] = {}
        self._reserved: dict[Hashable | None, int] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.busy_per_key = busy_per_key
        self.max_per_key = max_per_key
        self.busy_total = busy_total
        self.max_total = max_total
        self.max_notices = max_notices
        self.max_per_owner = max_per_owner
        self._owned: dict[Hashable, int] = {}  # jobs per owner: reserved, queued or running
        self._total = 0  # jobs reserved, queued or running (lanes and unordered)
        self._notices = 0
        self.high_water = 0  # the most jobs ever held at once

    @property
    def active_lanes(self) -> int:
        return len(self._queues)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def busy(self) -> bool:
        return bool(self._workers)

    @property
    def total(self) -> int:
        """Jobs reserved, queued or running, in every lane and outside them."""
        return self._total

    def queued(self, key: Hashable) -> int:
        """Jobs of `key` reserved, queued or running."""
        return self._reserved.get(key, 0) + len(self._queues.get(key, ()))

    def owned(self, owner: Hashable) -> int:
        """Jobs of `owner` reserved, queued or running."""
        return self._owned.get(owner, 0)

    def admit(
        self, key: Hashable | None, *, bounded: bool = True, owner: Hashable | None = None
    ) -> Admission:
        """Size up one more job for `key` (None: a job outside lanes, bounded by the totals
        only) and reserve its place unless refused. `bounded=False`: always accepted (a few
        control commands must get through a full queue). `owner`: who it is for (fairness)."""
        ahead = self.queued(key) if key is not None else 0
        level: Level = "accept"
        if not bounded:
            pass
        elif owner is not None and _over(self.owned(owner), self.max_per_owner):
            return Admission(self, key, "share", owner)
        elif _over(ahead, self.max_per_key) or _over(self._total, self.max_total):
            return Admission(self, key, "refuse", owner)
        elif _over(ahead, self.busy_per_key) or _over(self._total, self.busy_total):
            level = "busy"
        self._reserved[key] = self._reserved.get(key, 0) + 1
        self._grow()
        if owner is not None:
            self._owned[owner] = self._owned.get(owner, 0) + 1
        return Admission(self, key, level, owner)

    def submit(self, key: Hashable, job: Job) -> None:
        """Queue `job` behind the earlier jobs of `key`."""
        if self._closed:
            raise LanesClosed
        job = self._owned_job(self._take(key), job)
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(job)
            return
        self._queues[key] = deque([job])
        self._spawn(self._drain_lane(key))

    def submit_unordered(self, job: Job, *, key: Hashable | None = None) -> None:
        """Run `job` outside any lane (stateless commands); it still takes the global limit.
        `key`: the admission it was reserved under, if any."""
        if self._closed:
            raise LanesClosed
        job = self._owned_job(self._take(key), job)
        self._spawn(self._run_unordered(job))

    def notify(self, job: Job) -> bool:
        """Run a short job (a notice to a user) now, outside lanes and the concurrency limit.
        False, and nothing runs, when `max_notices` notices are already in flight."""
        if self._notices >= self.max_notices:
            return False
        self._notices += 1
        self._spawn(self._run_notice(job))
        return True

    def _take(self, key: Hashable | None) -> Hashable | None:
        """Count a job about to be queued: it uses the caller's reservation when there is one.
        Returns the reservation's owner (whose count the job now holds), if any."""
        admission = _current.get()
        if admission is not None and admission.held and admission.key == key:
            admission.held = False
            self._unreserve(key)
            return admission.owner
        self._grow()
        return None

    def _owned_job(self, owner: Hashable | None, job: Job) -> Job:
        """`job`, giving its owner's place back when it ends."""
        if owner is None:
            return job

        async def owned() -> None:
            try:
                await job()
            finally:
                self._disown(owner)

        return owned

    def _disown(self, owner: Hashable | None) -> None:
        if owner is None:
            return
        left = self._owned.get(owner, 0) - 1
        if left > 0:
            self._owned[owner] = left
        else:
            self._owned.pop(owner, None)

    def _grow(self) -> None:
        self._total += 1
        self.high_water = max(self.high_water, self._total)

    def _unreserve(self, key: Hashable | None) -> None:
        left = self._reserved.get(key, 0) - 1
        if left > 0:
            self._reserved[key] = left
        else:
            self._reserved.pop(key, None)

    def _release(self, key: Hashable | None) -> None:
        self._unreserve(key)
        self._total -= 1

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._workers.add(task)
        self._idle.clear()
        task.add_done_callback(self._worker_done)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        self._workers.discard(task)
        if not self._workers:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no job is queued or running."""
        await self._idle.wait()

    async def _drain_lane(self, key: Hashable) -> None:
        queue = self._queues[key]
        try:
            while queue:
                await self._run_one(queue[0])
                queue.popleft()
                self._total -= 1
        finally:
            # No await between the emptiness check and the removal: a concurrent submit either
            # appended before the check (and ran above) or finds no lane and starts a new one.
            self._total -= len(queue)  # jobs left behind by a cancellation at shutdown
            del self._queues[key]

    async def _run_unordered(self, job: Job) -> None:
        try:
            await self._run_one(job)
        finally:
            self._total -= 1

    async def _run_notice(self, job: Job) -> None:
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("a notice job raised")
        finally:
            self._notices -= 1

    async def _run_one(self, job: Job) -> None:
        async with self._semaphore:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Jobs carry their own error boundary; this is the last line of defence.
                log.exception("a lane job raised")

    def close(self) -> None:
        """Refuse new jobs; queued and running ones continue."""
        self._closed = True

    async def drain(self, grace: float) -> bool:
        """Wait up to `grace` seconds for every job to finish; cancel what is left.
        True when everything finished in time."""
        if self._workers:
            _, pending = await asyncio.wait(set(self._workers), timeout=grace)
        else:
            pending = set()
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return not pending


def _over(count: int, bound: int | None) -> bool:
    return bound is not None and count >= bound
