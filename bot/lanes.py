"""Lanes: one FIFO queue and worker per conversation key, and one global concurrency limit.

Jobs of one key run strictly in submission order; different keys run in parallel, at most
`max_concurrency` at a time. A lane's worker exits as soon as its queue is empty, so idle
conversations cost nothing; the next job for that key starts a new worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class LanesClosed(Exception):
    """Raised by `submit` after `close()`: the bot is shutting down."""


class Lanes:
    def __init__(self, max_concurrency: int) -> None:
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._queues: dict[Hashable, deque[Job]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active_lanes(self) -> int:
        return len(self._queues)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def busy(self) -> bool:
        return bool(self._workers)

    def submit(self, key: Hashable, job: Job) -> None:
        """Queue `job` behind the earlier jobs of `key`."""
        if self._closed:
            raise LanesClosed
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(job)
            return
        self._queues[key] = deque([job])
        self._spawn(self._drain_lane(key))

    def submit_unordered(self, job: Job) -> None:
        """Run `job` outside any lane (stateless commands); it still takes the global limit."""
        if self._closed:
            raise LanesClosed
        self._spawn(self._run_one(job))

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
        finally:
            # No await between the emptiness check and the removal: a concurrent submit either
            # appended before the check (and ran above) or finds no lane and starts a new one.
            del self._queues[key]

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
