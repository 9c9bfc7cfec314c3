"""The answers running now: the registry `/cancel` and `/reset` look in, and the two ways an
answer is stopped on purpose. (What a running answer reports is recorded by `bot.core.ledger`.)

An answer ends early for one of three reasons, kept apart on purpose:

- `cancelled`: a user asked (`/cancel`, or `/reset` in the same conversation);
- `expired`: it ran longer than `SWITCHBOARD_RUN_TIMEOUT_SECONDS`;
- shutdown: the process is stopping; the lane's task itself is cancelled, no `cause` is set,
  the run is marked `interrupted` and its event stays in the inbox for the next start.

The first two stop only the inner task that generates the answer (`RunningAnswer.run`), never
the lane's worker, so the conversation's queued messages still run afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from bot.core.ledger import Run
from bot.core.types import Actor, ConversationKey

log = logging.getLogger(__name__)

StopCause = Literal["cancelled", "expired"]
T = TypeVar("T")


class AnswerStopped(Exception):
    """The answer was stopped on purpose (see the module docstring); not an error."""

    def __init__(self, cause: StopCause) -> None:
        super().__init__(cause)
        self.cause = cause


@dataclass(eq=False)
class RunningAnswer:
    key: ConversationKey
    ledger_run: Run
    actor: Actor
    cause: StopCause | None = None
    stopped_by: str = ""
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    # The answer is written and being delivered: too late to stop it.
    settled: bool = False
    _task: asyncio.Future[object] | None = None

    @property
    def run_id(self) -> int:
        return self.ledger_run.id

    @property
    def response_id(self) -> str | None:
        return self.ledger_run.response_id

    def stop(self, cause: StopCause, by: str = "") -> bool:
        """Ask the answer to stop; False when it already ended or was already stopped."""
        if self.cause is not None or self.settled or self.finished.is_set():
            return False
        self.cause, self.stopped_by = cause, by
        if self._task is not None:
            self._task.cancel()
        return True

    async def run(self, work: Awaitable[T]) -> T:
        """Await `work` in its own task, so `stop` can cancel it alone. Raises `AnswerStopped`
        when it was stopped on purpose; a shutdown's cancellation propagates unchanged."""
        if self.cause is not None:
            if asyncio.iscoroutine(work):
                work.close()
            raise AnswerStopped(self.cause)
        task: asyncio.Future[T] = asyncio.ensure_future(work)
        self._task = task  # type: ignore[assignment]
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self.cause is not None and (current is None or not current.cancelling()):
                raise AnswerStopped(self.cause) from None
            raise
        finally:
            self._task = None


class RunningAnswers:
    """The answers in progress, one per conversation key (a lane runs one job at a time)."""

    def __init__(self) -> None:
        self._by_key: dict[ConversationKey, RunningAnswer] = {}

    def add(self, running: RunningAnswer) -> None:
        self._by_key[running.key] = running

    def remove(self, running: RunningAnswer) -> None:
        if self._by_key.get(running.key) is running:
            del self._by_key[running.key]

    def find(self, key: ConversationKey, actor_id: str) -> RunningAnswer | None:
        """The answer in progress at `key`. A command sent at channel level (Slack slash commands
        carry no thread) also finds the answers in that channel's threads: the caller's own
        latest one first, else the only one there."""
        exact = self._by_key.get(key)
        if exact is not None or key.thread:
            return exact
        here = [r for r in self._by_key.values() if r.key.channel_key == key.channel_key]
        mine = [r for r in here if r.actor.id == actor_id]
        if mine:
            return mine[-1]
        return here[0] if len(here) == 1 else None

    def of_actor(self, key: ConversationKey, actor_id: str) -> list[RunningAnswer]:
        """The answers in progress for `actor_id` in the channel of `key` (its top level and
        its threads), oldest first."""
        return [
            r
            for r in self._by_key.values()
            if r.key.channel_key == key.channel_key and r.actor.id == actor_id
        ]

    def __len__(self) -> int:
        return len(self._by_key)
