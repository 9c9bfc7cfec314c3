"""The one dispatcher: guards, lanes, routing to capabilities, and the one error boundary."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext

from bot.core import log_context
from bot.core.addressing import MessageGate
from bot.core.assistant_config import AssistantConfig, resolve_assistant
from bot.core.commands import SPECS, CommandTable, message_command
from bot.core.config import Settings
from bot.core.delivery import DeliveryFailed, Outbox, delivery_reason
from bot.core.errors import UserError
from bot.core.guards import check_message
from bot.core.lanes import Lanes, LanesClosed
from bot.core.ledger import RunLedger
from bot.core.notices import Notices, Text
from bot.core.ports import MessageHandler, Screen
from bot.core.presence import Presence
from bot.core.replicas import WorkQueue
from bot.core.running import RunningAnswers
from bot.core.types import CommandCall, ConversationKey, Event, Inbound, Reply
from bot.spend.quota import Quota
from storage.db import Database
from storage.events import claim_event
from storage.inbox import encode_event
from storage.work import conversation_of

log = logging.getLogger(__name__)
# Marks a log line whose news the user was just given as a reply: a console, where both show on
# one screen, leaves it out (adapters.console.logs).
TOLD_USER = {"told_user": True}

APOLOGY = (
    "Sorry, something went wrong on my side while answering. It has been logged; please try again."
)
BUSY = "I'm busy with earlier messages right now; yours is queued and I'll get to it."
TOO_BUSY = "I'm too busy right now to take this message. Please retry in a minute."


def busy_text(count: int) -> str:
    if count == 1:
        return BUSY
    return (
        f"I'm busy with earlier messages right now; the last {count} messages here are queued "
        "and I'll get to them."
    )


def too_busy_text(count: int) -> str:
    if count == 1:
        return TOO_BUSY
    return (
        f"I'm too busy right now to take the last {count} messages here. Please retry in a minute."
    )


Job = Callable[[], Awaitable[None]]


class Dispatcher:
    """Accepts events from the adapters (`submit`), decides, queues them in their lanes and runs
    them through the one error boundary. It imports no feature: the chat feature, moderation and
    the command handlers are handed to it at wiring (`bot.app`)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        lanes: Lanes,
        ledger: RunLedger,
        commands: CommandTable,
        chat: MessageHandler,
        running: RunningAnswers,
        quota: Quota,
        moderation: Screen | None = None,
        *,
        presence: Presence | None = None,
        backend_name: str = "",
        openai_down: Callable[[], str | None] = lambda: None,
        job_scope: Callable[[], AbstractContextManager[object]] = nullcontext,
        queue: WorkQueue | None = None,
    ) -> None:
        """`openai_down`: the answer for a new message while OpenAI is known to be down (the
        circuit breaker), else None. `job_scope`: entered around every job (the per-answer
        retry budget). `queue`: this process's place in the shared work queue (whose turn it
        is when several processes share the database)."""
        self._db = db
        self._settings = settings
        self._lanes = lanes
        self._ledger = ledger
        self._commands = commands
        self._chat = chat
        self._running = running
        self._quota = quota
        self._moderation = moderation
        self._backend_name = backend_name
        # Adapters report their connection here (a fact, like an event); /readyz reads it.
        self.presence = presence or Presence()
        self._openai_down = openai_down
        self._job_scope = job_scope
        self._addressing = MessageGate(db, settings, backend_name)
        self._queue = queue or WorkQueue(db)
        self._notices = Notices(lanes, self._tell, ledger.settle_id)
        self._outboxes: dict[str, Outbox] = {}

    @property
    def commands(self) -> CommandTable:
        return self._commands

    @property
    def platforms(self) -> frozenset[str]:
        """The platforms with a registered outbox (connected adapters)."""
        return frozenset(self._outboxes)

    async def wait_idle(self) -> None:
        """Return once every accepted event has been handled (also those waiting for their
        turn in the shared work queue)."""
        await self._lanes.wait_idle()
        while self._queue.parked and not self._lanes.closed:
            await asyncio.sleep(0.01)
            await self._lanes.wait_idle()

    def register_outbox(self, platform: str, outbox: Outbox) -> None:
        self._outboxes[platform] = outbox

    def is_admin(self, actor_id: str, platform_admin: bool) -> bool:
        return platform_admin or actor_id in self._settings.admin_ids

    async def submit(self, event: Event) -> bool:
        """Accept an event: guards, dedupe, then queue it. Returns at once; False when the event
        was dropped (not for the bot: `bot.core.addressing`; a redelivery; or shutting down)."""
        if not await self._addressing.should_answer(event):
            return False
        if isinstance(event, Inbound):
            event = message_command(event) or event
        if self._lanes.closed:
            log.info("shutting down; not accepting event %s at %s", event.event_id, event.key)
            return False
        # One statement dedupes the event (also against the other processes sharing the
        # database) and puts it in the durable inbox, owned by this process (storage.work).
        lane = self._lane_key(event)
        self._queue.accepting(event)
        try:
            claimed = await claim_event(
                self._db,
                event.key.platform,
                event.event_id,
                encode_event(event),
                owner=self._queue.id,
                conversation=None if lane is None else conversation_of(lane),
            )
        except BaseException:
            self._queue.not_accepted(event)
            raise
        if not claimed:
            self._queue.not_accepted(event)
            log.info("duplicate event %s at %s ignored", event.event_id, event.key)
            return False
        if isinstance(event, Inbound) and (down := self._openai_down()) is not None:
            await self._notify(event, "OpenAI circuit open", lambda n: down, handled=True)
            return True
        admission = self._lanes.admit(self._lane_key(event), bounded=not self._preempts(event))
        if admission.refused:
            await self._notify(event, "queues full, not queued", too_busy_text, handled=True)
            return True
        with admission:
            if admission.busy:
                await self._notify(event, "queued past the soft bound", busy_text, handled=False)
            try:
                await self.accept(event)
            except LanesClosed:
                return False
        return True

    async def accept(self, event: Event) -> None:
        """Queue an event that is on record in the inbox (new, or replayed at start-up)."""
        if isinstance(event, Inbound):
            await self._submit_message(event)
        else:
            self._submit_command(event)

    def _preempts(self, event: Event) -> bool:
        """Control commands are never refused for load: they are how a user gets out of it."""
        if not isinstance(event, CommandCall):
            return False
        command = self._commands.get(event.name)
        return command is not None and command.spec.control

    def _lane_key(self, event: Event) -> ConversationKey | None:
        """The lane the event will wait in; None for stateless commands (no lane)."""
        if isinstance(event, CommandCall):
            command = self._commands.get(event.name)
            if command is not None and not command.spec.ordered:
                return None
        return event.key

    async def _notify(self, event: Event, kind: str, text: Text, *, handled: bool) -> None:
        """Tell the user at once (back-pressure and circuit notices), outside the lanes."""
        log.warning(
            "event %s at %s: %s; told the user at once",
            event.event_id,
            event.key,
            kind,
            extra=TOLD_USER,
        )
        await self._notices.tell(event, kind, text, handled=handled)

    async def _submit_message(self, event: Inbound) -> None:
        job = await self.message_job(event)
        self.run_in_lane(event, job)

    def run_in_lane(self, event: Event, job: Job) -> None:
        """Queue `job` for `event` in its conversation's lane, behind the error boundary (with
        several processes on one database: once its turn has come, see `WorkQueue.park`)."""
        self._queue.park(
            event, lambda: self._lanes.submit(event.key, lambda: self._guarded(event, job))
        )

    async def message_job(self, event: Inbound) -> Job:
        """A valid message gets its run row (queued) now, so it is on record while it waits for
        its lane; an invalid one only gets its explanation, in order with the others."""
        try:
            check_message(event, self._settings)
            config = await self._check_quota(event)
        except UserError as refusal:
            error = refusal

            async def explain() -> None:
                raise error

            return explain
        run = await self._ledger.open(
            event.key,
            user_id=event.actor.id,
            event_id=event.event_id,
            kind="chat",
            received_at=event.received_at,
        )

        async def job() -> None:
            if config.moderation and self._moderation is not None:
                try:
                    await self._moderation.screen(event)
                except UserError as refusal:
                    await run.close("failed", refusal.log_detail or "moderation")
                    raise
            await self._chat.answer(event, run, self.outbox(event))

        return job

    def _submit_command(self, call: CommandCall) -> None:
        command = self._commands.get(call.name)

        async def job() -> None:
            if command is None:
                if call.name in SPECS:
                    raise UserError(
                        f"/{call.name} is not available in this version of the bot yet."
                    )
                known = ", ".join(f"/{name}" for name in sorted(self._commands.names))
                raise UserError(f"I don't know /{call.name}. Commands here: {known}.")
            if command.spec.access == "admins" and not self.is_admin(
                call.actor.id, call.actor.is_admin
            ):
                raise UserError(f"/{call.name} is for admins of this workspace or server only.")
            if command.spec.metered:
                await self._check_quota(call)
            reply = await command.handler(call)
            if reply is not None:
                await self.outbox(call).send(reply)

        if command is not None and command.spec.preempt:
            running = self._running.find(call.key, call.actor.id)
            if running is not None and running.key == call.key:
                running.stop("cancelled", by=call.actor.name or call.actor.id)
        if command is not None and not command.spec.ordered:
            self._lanes.submit_unordered(lambda: self._guarded(call, job))
        else:
            self.run_in_lane(call, job)

    async def _check_quota(self, event: Event) -> AssistantConfig:
        config = await resolve_assistant(self._db, self._settings, event.key)
        await self._quota.check(event.key, event.actor.id, config.budget_monthly_usd)
        return config

    def has_outbox(self, platform: str) -> bool:
        return platform in self._outboxes

    def outbox(self, event: Event) -> Outbox:
        return self._outboxes[event.key.platform]

    async def _guarded(self, event: Event, job: Job) -> None:
        """The error boundary: a user error becomes a friendly reply; anything else one log line
        and an apology. Either way the lane moves on to the next event, and the event is settled
        in the inbox. A cancellation (shutdown) leaves it there, for the next start.

        With several processes on one database, it first checks the event is still this
        process's to handle (it may have been taken over, or handed back on stopping)."""
        if not await self._queue.wait_turn(event, ordered=self._lane_key(event) is not None):
            self._queue.finished(event)
            return
        try:
            await self._boundary(event, job)
            await self._ledger.settle(event)
        finally:
            self._queue.finished(event)

    async def settle(self, event: Event) -> None:
        await self._ledger.settle(event)

    async def _boundary(self, event: Event, job: Job) -> None:
        try:
            with log_context.about(event.key, event.event_id), self._job_scope():
                await job()
        except asyncio.CancelledError:
            raise
        except UserError as exc:
            log.warning(
                "user error key=%s event=%s: %s%s",
                event.key,
                event.event_id,
                exc.message,
                f" ({exc.log_detail})" if exc.log_detail else "",
                extra=TOLD_USER,
            )
            await self._tell(event, exc.message)
        except DeliveryFailed as exc:
            log.error(
                "reply not delivered key=%s event=%s: %s", event.key, event.event_id, exc.reason
            )
            await self._tell(event, APOLOGY)
        except Exception as exc:
            log.error(
                "unhandled error key=%s event=%s: %s: %s",
                event.key,
                event.event_id,
                type(exc).__name__,
                exc,
            )
            log.debug("traceback for event %s", event.event_id, exc_info=exc)
            await self._tell(event, APOLOGY)

    async def _tell(self, event: Event, text: str) -> None:
        in_reply_to = event.message_id if isinstance(event, Inbound) else ""
        reply = Reply(
            key=event.key,
            text=text,
            in_reply_to=in_reply_to,
            ephemeral=isinstance(event, CommandCall),
            actor_id=event.actor.id,
        )
        try:
            await self.outbox(event).send(reply)
        except Exception as exc:
            log.error(
                "could not deliver an error reply key=%s event=%s: %s",
                event.key,
                event.event_id,
                delivery_reason(exc),
            )
