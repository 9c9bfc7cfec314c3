"""The one dispatcher: guards, lanes, routing to capabilities, and the one error boundary."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from bot.backends.breaker import CircuitBreaker, CircuitOpen
from bot.backends.retry import answer_budget
from bot.core.addressing import MessageGate
from bot.core.assistant_config import AssistantConfig, resolve_assistant
from bot.core.commands import COMMAND_NAMES, METERED_COMMANDS
from bot.core.config import Settings
from bot.core.delivery import DeliveryFailed, Outbox, delivery_reason
from bot.core.errors import UserError, explain_error
from bot.core.lanes import Lanes, LanesClosed
from bot.core.notices import Notices, Text
from bot.core.types import CommandCall, ConversationKey, Event, Inbound, Reply
from bot.features.chat.answer import ChatCapability, check_message
from bot.features.media import message_command
from bot.features.moderation import Moderation
from bot.spend.quota import Quota
from storage import inbox, runs
from storage.db import Database
from storage.events import claim_event
from storage.inbox import encode_event

log = logging.getLogger(__name__)

APOLOGY = (
    "Sorry, something went wrong on my side while answering. It has been logged; please try again."
)
BUSY = "I'm busy with earlier messages right now; yours is queued and I'll get to it."
TOO_BUSY = "I'm too busy right now to take this message. Please retry in a minute."
CONTROL_COMMANDS = frozenset({"cancel", "reset"})


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


CommandHandler = Callable[[CommandCall], Awaitable[Reply | None]]


@dataclass(frozen=True, slots=True)
class Command:
    handler: CommandHandler
    description: str
    admin: bool = False
    # Ordered commands wait their turn in the conversation's lane (they touch its state);
    # stateless ones (image generation, speech) run beside it, under the global limit only.
    ordered: bool = True
    # Cancel the answer in progress in the conversation when the command arrives (/reset), so
    # the command does not wait behind an answer it makes pointless.
    preempt: bool = False


class Dispatcher:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        lanes: Lanes,
        chat: ChatCapability,
        commands: Mapping[str, Command],
        quota: Quota,
        moderation: Moderation | None = None,
        *,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._lanes = lanes
        self._chat = chat
        self._commands = dict(commands)
        self._quota = quota
        self._moderation = moderation
        self._breaker = breaker
        self._addressing = MessageGate(db, settings, chat.backend_name)
        self._notices = Notices(lanes, self._tell, self._refused_done)
        self._outboxes: dict[str, Outbox] = {}
        # Events marked done in the inbox together with their completed run (no second write).
        self._done_with_run: set[tuple[str, str]] = set()

    @property
    def commands(self) -> Mapping[str, Command]:
        return self._commands

    async def wait_idle(self) -> None:
        """Return once every accepted event has been handled."""
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
        # One statement dedupes the event and puts it in the durable inbox (storage.inbox).
        if not await claim_event(self._db, event.key.platform, event.event_id, encode_event(event)):
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
                await self._accept(event)
            except LanesClosed:
                return False
        return True

    async def _accept(self, event: Event) -> None:
        """Queue an event that is on record in the inbox (new, or replayed at start-up)."""
        if isinstance(event, Inbound):
            await self._submit_message(event)
        else:
            self._submit_command(event)

    def _openai_down(self) -> str | None:
        """The answer for a new message while the OpenAI circuit is open (None: it is not)."""
        wait = self._breaker.retry_in() if self._breaker is not None else None
        if wait is None:
            return None
        friendly = explain_error(CircuitOpen(wait))
        return friendly.message if friendly else None

    def _preempts(self, event: Event) -> bool:
        """/cancel and /reset are never refused for load: they are how a user gets out of it."""
        return isinstance(event, CommandCall) and event.name in CONTROL_COMMANDS

    def _lane_key(self, event: Event) -> ConversationKey | None:
        """The lane the event will wait in; None for stateless commands (no lane)."""
        if isinstance(event, CommandCall):
            command = self._commands.get(event.name)
            if command is not None and not command.ordered:
                return None
        return event.key

    async def _notify(self, event: Event, kind: str, text: Text, *, handled: bool) -> None:
        """Tell the user at once (back-pressure and circuit notices), outside the lanes."""
        log.warning("event %s at %s: %s; told the user at once", event.event_id, event.key, kind)
        await self._notices.tell(event, kind, text, handled=handled)

    async def _submit_message(self, event: Inbound) -> None:
        job = await self._message_job(event)
        self._lanes.submit(event.key, lambda: self._guarded(event, job))

    async def _message_job(self, event: Inbound) -> Callable[[], Awaitable[None]]:
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
        run_id = await runs.create_run(
            self._db, event.key, user_id=event.actor.id, event_id=event.event_id, kind="chat"
        )

        async def job() -> None:
            if config.moderation and self._moderation is not None:
                try:
                    await self._moderation.screen(event)
                except UserError as refusal:
                    await runs.close_run(
                        self._db, run_id, "failed", refusal.log_detail or "moderation"
                    )
                    raise
            if await self._chat.answer(event, run_id, self._outbox(event)):
                self._done_with_run.add((event.key.platform, event.event_id))

        return job

    def _submit_command(self, call: CommandCall) -> None:
        command = self._commands.get(call.name)

        async def job() -> None:
            if command is None:
                if call.name in COMMAND_NAMES:
                    raise UserError(
                        f"/{call.name} is not available in this version of the bot yet."
                    )
                known = ", ".join(f"/{name}" for name in sorted(self._commands))
                raise UserError(f"I don't know /{call.name}. Commands here: {known}.")
            if command.admin and not self.is_admin(call.actor.id, call.actor.is_admin):
                raise UserError(f"/{call.name} is for admins of this workspace or server only.")
            if call.name in METERED_COMMANDS:
                await self._check_quota(call)
            reply = await command.handler(call)
            if reply is not None:
                await self._outbox(call).send(reply)

        if command is not None and command.preempt:
            running = self._chat.running.find(call.key, call.actor.id)
            if running is not None and running.key == call.key:
                running.stop("cancelled", by=call.actor.name or call.actor.id)
        if command is not None and not command.ordered:
            self._lanes.submit_unordered(lambda: self._guarded(call, job))
        else:
            self._lanes.submit(call.key, lambda: self._guarded(call, job))

    async def _check_quota(self, event: Event) -> AssistantConfig:
        config = await resolve_assistant(self._db, self._settings, event.key)
        await self._quota.check(event.key, event.actor.id, config.budget_monthly_usd)
        return config

    def _outbox(self, event: Event) -> Outbox:
        return self._outboxes[event.key.platform]

    async def _guarded(self, event: Event, job: Callable[[], Awaitable[None]]) -> None:
        """The error boundary: a user error becomes a friendly reply; anything else one log line
        and an apology. Either way the lane moves on to the next event, and the event is done in
        the inbox. A cancellation (shutdown) leaves it there, for the next start."""
        await self._boundary(event, job)
        await self._finish_event(event)

    async def _refused_done(self, platform: str, event_id: str) -> None:
        """A refused event was told why: out of the inbox (it has no run)."""
        try:
            await inbox.mark_done(self._db, platform, event_id)
        except Exception as exc:
            log.error("could not mark event %s done: %s", event_id, type(exc).__name__)

    async def _finish_event(self, event: Event) -> None:
        """The event was handled (answered, refused or told): out of the inbox (already done
        when its answer completed: marked in the same trip as the run)."""
        try:
            if (event.key.platform, event.event_id) in self._done_with_run:
                self._done_with_run.discard((event.key.platform, event.event_id))
                return
            await inbox.mark_done(self._db, event.key.platform, event.event_id)
        except Exception as exc:
            log.error("could not mark event %s at %s done: %s", event.event_id, event.key, exc)

    async def _boundary(self, event: Event, job: Callable[[], Awaitable[None]]) -> None:
        try:
            with answer_budget(self._settings.openai_retry_budget):
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
            await self._outbox(event).send(reply)
        except Exception as exc:
            log.error(
                "could not deliver an error reply key=%s event=%s: %s",
                event.key,
                event.event_id,
                delivery_reason(exc),
            )

    # -- recovery after a restart ----------------------------------------------------------

    async def recover(self) -> int:
        """Handle the events a previous process accepted but did not finish, in order per
        conversation. Call once at start-up, after the adapters registered their outboxes;
        events of a platform without an outbox stay in the inbox. Returns how many were taken
        up. Per event, by what its latest run shows:

        - completed: it was answered; only its done mark was lost;
        - a /cancel: nothing to cancel any more after a restart, dropped;
        - with attachments: their bytes were not kept, so the user is asked to send it again;
        - a response id (responses backend): `recover` it; delivered when the server finished it;
        - text already shown: the user is told the answer was interrupted and may resend;
        - otherwise (never started, or started without showing anything): handled again.
        """
        taken = 0
        for entry in await inbox.pending(self._db):
            event = entry.event
            if event.key.platform not in self._outboxes:
                continue
            taken += 1
            try:
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
        if taken:
            log.warning("took up %d events left unfinished by the previous process", taken)
        return taken

    async def _recover_one(self, event: Event) -> None:
        stale = await runs.latest_for_event(self._db, event.key.platform, event.event_id)
        if (stale is not None and stale.status == "completed") or (
            isinstance(event, CommandCall) and event.name == "cancel"
        ):
            await self._finish_event(event)
            return
        if event.attachments:
            names = ", ".join(a.name or a.kind for a in event.attachments)
            self._lanes.submit(event.key, lambda: self._guarded(event, _tell_resend(names)))
            return
        if (
            stale is None
            or not isinstance(event, Inbound)
            or not (stale.response_id or stale.shown_at)
        ):
            await self._accept(event)
            return
        message, record = event, stale

        async def resume() -> None:
            if await self._chat.deliver_recovered(message, record, self._outbox(message)):
                return
            if record.shown_at is not None:
                raise UserError(INTERRUPTED, log_detail=f"run {record.id} interrupted by restart")
            await (await self._message_job(message))()

        self._lanes.submit(event.key, lambda: self._guarded(event, resume))


INTERRUPTED = (
    "I was restarted while answering this message, so my answer to it is incomplete. "
    "Please send it again if you still need it."
)


def _tell_resend(names: str) -> Callable[[], Awaitable[None]]:
    async def tell() -> None:
        raise UserError(
            f"I was restarted before I could finish with your message and its files ({names}); "
            "files are not kept across a restart, so please send it again.",
            log_detail="replay with attachments",
        )

    return tell
