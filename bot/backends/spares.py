"""Server-side conversations made ahead of need, so that in a burst of new threads a first
request does not wait for `POST /v1/conversations` (the responses backend's one extra round trip
before a new thread's answer, which piles up when many new threads arrive at once).

Sized by what was seen: takes less than `BURST_GAP` apart form a burst, and while the current
or the previous burst had two takes or more, the pool keeps as many spares as the larger of
the two had (at most `MAX_SPARES`). A bot whose new threads come one at a time keeps none, so it
makes no conversation it may never use, at the cost of that one round trip per new thread.

A spare is made with the label `SPARE` in its metadata; taken, it is relabelled with the
conversation key it now serves. Both happen in one background worker, one call at a time, off
the requests' path and in a context of its own (no answer's log context or retry window).
`close` deletes the spares left; after a crash they remain on the server as empty
conversations labelled `SPARE`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import deque
from collections.abc import Callable

import openai

from bot.backends.breaker import CircuitOpen
from bot.backends.conversations import ServerConversations
from bot.backends.errors import describe

log = logging.getLogger(__name__)

SPARE = "spare"
BURST_GAP = 1.0  # seconds between two new conversations of one burst, at most
MAX_SPARES = 50
_FAILURES = (openai.OpenAIError, CircuitOpen)


class SpareConversations:
    def __init__(
        self,
        conversations: ServerConversations,
        *,
        limit: int = MAX_SPARES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conversations = conversations
        self._limit = limit
        self._clock = clock
        self._spares: list[str] = []
        self._labels: deque[tuple[str, str]] = deque()  # (conversation id, label) to write
        self._burst: list[float] = []  # when this burst's conversations were asked for
        self._previous = 0  # how many the burst before it had
        self._wanted = 0  # spares to keep
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def spare(self) -> int:
        return len(self._spares)

    async def take(self, label: str) -> str:
        """A conversation for `label`: a spare when there is one, else one made now."""
        self._note_demand()
        if self._spares:
            taken = self._spares.pop()
            self._labels.append((taken, label))
            self._wake()
            return taken
        self._wake()
        return await self._conversations.create(label)

    async def idle(self) -> None:
        """Return once the worker has nothing left to do (labels written, spares made)."""
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    async def close(self) -> None:
        """Write the labels still pending and delete the spares (one attempt each)."""
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        while self._labels:
            conversation_id, label = self._labels.popleft()
            try:
                await self._conversations.label(conversation_id, label, retry=False)
            except _FAILURES as exc:
                log.warning("could not label conversation %s: %s", conversation_id, describe(exc))
        spares, self._spares = self._spares, []
        for conversation_id in spares:
            try:
                await self._conversations.delete(conversation_id)
            except _FAILURES as exc:
                log.warning(
                    "could not delete spare conversation %s: %s", conversation_id, describe(exc)
                )
        if spares:
            log.info("deleted %d spare conversations", len(spares))

    def _note_demand(self) -> None:
        """Count this take into its burst, and how many spares to keep from now on."""
        now = self._clock()
        if self._burst and now - self._burst[-1] > BURST_GAP:
            self._previous = len(self._burst)
            self._burst = []
        self._burst.append(now)
        wanted = max(len(self._burst), self._previous)
        self._wanted = min(wanted, self._limit) if wanted >= 2 else 0

    def _wake(self) -> None:
        if self._closed or (self._worker is not None and not self._worker.done()):
            return
        if not self._labels and len(self._spares) >= self._wanted:
            return
        self._worker = asyncio.create_task(self._work(), context=contextvars.Context())

    async def _work(self) -> None:
        while not self._closed:
            if self._labels:
                conversation_id, label = self._labels.popleft()
                try:
                    await self._conversations.label(conversation_id, label)
                except asyncio.CancelledError:
                    self._labels.appendleft((conversation_id, label))  # `close` writes it
                    raise
                except _FAILURES as exc:
                    log.warning(
                        "could not label conversation %s: %s", conversation_id, describe(exc)
                    )
                continue
            if len(self._spares) >= self._wanted:
                return
            try:
                made = await self._conversations.create(SPARE)
            except _FAILURES as exc:
                log.warning("could not make a spare conversation: %s", describe(exc))
                return  # the next take tries again
            self._spares.append(made)
