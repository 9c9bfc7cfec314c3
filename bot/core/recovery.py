"""After a restart: the events a previous process accepted but did not finish, taken up in order
per conversation."""

from __future__ import annotations

import logging

from bot.core.dispatcher import Dispatcher, Job
from bot.core.errors import UserError
from bot.core.lanes import LanesClosed
from bot.core.ledger import RunLedger
from bot.core.ports import MessageHandler
from bot.core.replicas import WorkQueue
from bot.core.types import CommandCall, Event, Inbound
from storage.db import Database
from storage.inbox import PendingEvent
from storage.runs import RunRecord

log = logging.getLogger(__name__)

INTERRUPTED = (
    "I was restarted while answering this message, so my answer to it is incomplete. "
    "Please send it again if you still need it."
)


class Recovery:
    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        ledger: RunLedger,
        chat: MessageHandler,
        queue: WorkQueue | None = None,
    ) -> None:
        self._db = db
        self._dispatcher = dispatcher
        self._ledger = ledger
        self._chat = chat
        self._queue = queue or WorkQueue(db)

    async def recover(self) -> int:
        """Handle the events a previous process accepted but did not finish (only those: not
        the ones this process accepted meanwhile, nor those of another live process sharing
        the database). Call once at start-up, after the adapters registered their outboxes.
        Returns how many were taken up."""
        taken = await self.take_up(await self._queue.take_orphans())
        if taken:
            log.warning("took up %d events left unfinished by the previous process", taken)
        return taken

    async def take_up(self, entries: list[PendingEvent]) -> int:
        """Handle events taken over from a process that stopped or died (at start-up, and by
        the sweep of a process sharing the database); events of a platform without an outbox
        here stay in the inbox. Per event, by what its latest run shows:

        - completed: it was answered; only its done mark was lost;
        - a /cancel: nothing to cancel any more after a restart, dropped;
        - with attachments: their bytes were not kept, so the user is asked to send it again;
        - a response id (responses backend): `recover` it; delivered when the server finished it;
        - text already shown: the user is told the answer was interrupted and may resend;
        - otherwise (never started, or started without showing anything): handled again.
        """
        taken = 0
        for entry in entries:
            event = entry.event
            if not self._dispatcher.has_outbox(event.key.platform):
                continue
            taken += 1
            try:
                await self._ledger.interrupt_for(event, "the process answering it stopped")
                await self._recover_one(event)
            except LanesClosed:
                return taken
            except Exception as exc:
                log.error(
                    "recovery of event %s at %s failed: %s: %s",
                    event.event_id,
                    event.key,
                    type(exc).__name__,
                    exc,
                )
        return taken

    async def take_up_quietly(self, entries: list[PendingEvent]) -> None:
        await self.take_up(entries)

    async def _recover_one(self, event: Event) -> None:
        stale = await self._ledger.latest_for(event)
        if (stale is not None and stale.status == "completed") or (
            isinstance(event, CommandCall) and event.name == "cancel"
        ):
            await self._ledger.settle(event)
            return
        if event.attachments:
            names = ", ".join(a.name or a.kind for a in event.attachments)
            self._dispatcher.run_in_lane(event, _tell_resend(names))
            return
        if (
            stale is None
            or not isinstance(event, Inbound)
            or not (stale.response_id or stale.shown_at)
        ):
            await self._dispatcher.accept(event)
            return
        self._dispatcher.run_in_lane(event, self._resume(event, stale))

    def _resume(self, message: Inbound, record: RunRecord) -> Job:
        async def resume() -> None:
            run = self._ledger.resume(record)
            if await self._chat.deliver_recovered(
                message, record, run, self._dispatcher.outbox(message)
            ):
                return
            if record.shown_at is not None:
                raise UserError(INTERRUPTED, log_detail=f"run {record.id} interrupted by restart")
            await (await self._dispatcher.message_job(message))()

        return resume


def _tell_resend(names: str) -> Job:
    async def tell() -> None:
        raise UserError(
            f"I was restarted before I could finish with your message and its files ({names}); "
            "files are not kept across a restart, so please send it again.",
            log_detail="replay with attachments",
        )

    return tell
