"""The run ledger: the one writer of a run's lifecycle and of an event's inbox mark.

A run is one answer (or one metered media call). Its states:

    queued → in_progress (⇄ requires_action while function tools run)
           → completed | failed | cancelled | expired | interrupted

Features and backends never write a run themselves: they report what happened as `RunEvent`
values (`ResponseStarted`, `TextShown`, `ToolRound`, `ToolRoundDone`) through `Run.emit`, and end
a run with `Run.complete` or `Run.close`. The ledger turns each into its storage write and then
tells its listeners (metrics subscribe here), so what is recorded and what is counted are the
same facts.

The inbox mark: an accepted event leaves the durable inbox once it has been handled. A completed
chat answer takes its event out in the same transaction as its final writes (`complete(...,
settles=event)`); `settle(event)` does it for every other ending, and is a no-op for an event the
ledger already settled with its run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from bot.core import log_context
from bot.core.types import ConversationKey, Event, Usage
from storage import inbox, runs
from storage.db import Database
from storage.messages import HistoryMessage, append_messages
from storage.steps import save_steps

log = logging.getLogger(__name__)

RunStatus = runs.RunStatus
CostOf = Callable[[Usage], Decimal | None]


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    """A response exists server-side (recorded, so it can be cancelled or recovered)."""

    response_id: str


@dataclass(frozen=True, slots=True)
class TextShown:
    """The first words of the answer are visible to the user."""


@dataclass(frozen=True, slots=True)
class ToolRound:
    """The model asked for function tools: the run is `requires_action` until they return."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ToolRoundDone:
    """Tool outputs went back to the model: the run is `in_progress` again."""


RunEvent = ResponseStarted | TextShown | ToolRound | ToolRoundDone
Emit = Callable[[RunEvent], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a completed run leaves on record."""

    usage: Usage
    response_id: str | None = None
    steps: Sequence[tuple[str, str, str]] = ()
    history: Sequence[HistoryMessage] = ()
    conversation_id: int | None = None


@dataclass(frozen=True, slots=True)
class Started:
    """The run is `in_progress` with `model`."""

    model: str


@dataclass(frozen=True, slots=True)
class Ended:
    """The run reached a final state; a completed one with its usage and cost."""

    status: RunStatus
    usage: Usage | None = None
    cost: Decimal | None = None
    reason: str = ""


LedgerNote = Started | Ended | RunEvent
Listener = Callable[["Run", LedgerNote], None]


@dataclass(eq=False, slots=True)
class Run:
    """One run's handle: what features and backends hold while the run lasts."""

    ledger: RunLedger
    id: int
    key: ConversationKey
    kind: str
    response_id: str | None = None
    # When the user's message (or command) arrived: answer times are measured from it.
    received_at: float = field(default_factory=time.time)
    shown: bool = False
    ended: bool = False
    model: str = ""

    async def start(self, *, backend: str, model: str, conversation_id: int | None) -> None:
        self.model = model
        log_context.about_run(self.id)
        await self.ledger._start(self, backend, model, conversation_id)

    async def emit(self, event: RunEvent) -> None:
        await self.ledger._record(self, event)

    async def complete(self, outcome: Outcome, *, settles: Event | None = None) -> None:
        await self.ledger._complete(self, outcome, settles)

    async def close(self, status: RunStatus, reason: str) -> None:
        await self.ledger._close(self, status, reason)


class RunLedger:
    def __init__(self, db: Database, cost_of: CostOf) -> None:
        self._db = db
        self._cost_of = cost_of
        self._listeners: list[Listener] = []
        # Events whose inbox mark was written with their completed run.
        self._settled: set[tuple[str, str]] = set()

    def subscribe(self, listener: Listener) -> None:
        """`listener(run, note)` is called (synchronously, after the write) for every note."""
        self._listeners.append(listener)

    # -- opening ------------------------------------------------------------------------------

    async def open(
        self,
        key: ConversationKey,
        *,
        user_id: str,
        event_id: str,
        kind: str,
        received_at: float | None = None,
    ) -> Run:
        """A new run, `queued`."""
        run_id = await runs.create_run(self._db, key, user_id=user_id, event_id=event_id, kind=kind)
        return Run(self, run_id, key, kind, received_at=received_at or time.time())

    def resume(self, record: runs.RunRecord) -> Run:
        """A handle on a run recorded by an earlier process (recovery after a restart)."""
        return Run(self, record.id, record.key, record.kind, response_id=record.response_id)

    async def latest_for(self, event: Event) -> runs.RunRecord | None:
        return await runs.latest_for_event(self._db, event.key.platform, event.event_id)

    # -- the lifecycle ------------------------------------------------------------------------

    async def _start(self, run: Run, backend: str, model: str, conversation_id: int | None) -> None:
        await runs.start_run(
            self._db, run.id, backend=backend, model=model, conversation_id=conversation_id
        )
        self._notify(run, Started(model))

    async def _record(self, run: Run, event: RunEvent) -> None:
        if isinstance(event, ResponseStarted):
            run.response_id = event.response_id
            await runs.set_response_id(self._db, run.id, event.response_id)
        elif isinstance(event, TextShown):
            if run.shown:
                return
            run.shown = True
            await runs.mark_shown(self._db, run.id)
        elif isinstance(event, ToolRound):
            log.info("run %d: running tools %s", run.id, ", ".join(event.names))
            await runs.set_status(self._db, run.id, "requires_action")
        else:
            await runs.set_status(self._db, run.id, "in_progress")
        self._notify(run, event)

    async def _complete(self, run: Run, outcome: Outcome, settles: Event | None) -> None:
        """The run's final writes in one transaction; with `settles`, its event leaves the inbox
        in the same trip."""
        cost = self._cost_of(outcome.usage)
        async with self._db.transaction() as tx:
            if settles is not None:
                await inbox.mark_done_with(tx, settles.key.platform, settles.event_id)
            await runs.finish_run(tx, run.id, "completed", response_id=outcome.response_id)
            await runs.record_usage(tx, run.id, outcome.usage, cost)
            if outcome.steps:
                await save_steps(tx, run.id, outcome.steps)
            if outcome.history and outcome.conversation_id is not None:
                await append_messages(tx, outcome.conversation_id, run.id, outcome.history)
        if settles is not None:
            self._settled.add((settles.key.platform, settles.event_id))
        run.ended = True
        self._notify(run, Ended("completed", outcome.usage, cost))

    async def _close(self, run: Run, status: RunStatus, reason: str) -> None:
        await runs.close_run(self._db, run.id, status, reason)
        run.ended = True
        self._notify(run, Ended(status, reason=reason))

    # -- events -------------------------------------------------------------------------------

    async def settle(self, event: Event) -> None:
        """The event was handled (answered, refused or told): out of the inbox. Never raises:
        a failure is logged, and the event is taken up again at the next start."""
        mark = (event.key.platform, event.event_id)
        if mark in self._settled:
            self._settled.discard(mark)
            return
        try:
            await inbox.mark_done(self._db, *mark)
        except Exception as exc:
            log.error("could not mark event %s at %s done: %s", event.event_id, event.key, exc)

    async def settle_id(self, platform: str, event_id: str) -> None:
        """`settle` for an event known only by its id (a refused event waiting for a notice)."""
        try:
            await inbox.mark_done(self._db, platform, event_id)
        except Exception as exc:
            log.error("could not mark event %s done: %s", event_id, type(exc).__name__)

    async def interrupt_unfinished(self, reason: str, *, owner: str | None = None) -> int:
        """Every run not in a final state becomes `interrupted` (start-up, shutdown); with
        `owner`, only those of the events that process owns (others share the database)."""
        return await runs.mark_unfinished(self._db, "interrupted", reason, owner=owner)

    async def interrupt_for(self, event: Event, reason: str) -> int:
        """The event's runs not in a final state become `interrupted` (its process died)."""
        return await runs.close_unfinished_for_event(
            self._db, event.key.platform, event.event_id, "interrupted", reason
        )

    def _notify(self, run: Run, note: LedgerNote) -> None:
        for listener in self._listeners:
            try:
                listener(run, note)
            except Exception as exc:
                log.error("a ledger listener failed: %s", type(exc).__name__)
