"""The one dispatcher: guards, lanes, routing to capabilities, and the one error boundary."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from bot.assistant import AssistantConfig, resolve_assistant
from bot.capabilities.chat import ChatCapability, check_message
from bot.capabilities.media import message_command
from bot.commands import COMMAND_NAMES, METERED_COMMANDS
from bot.config import Settings
from bot.delivery import Outbox
from bot.errors import UserError
from bot.lanes import Lanes, LanesClosed
from bot.moderation import Moderation
from bot.quota import Quota
from bot.types import CommandCall, ConversationKey, Event, Inbound, Reply
from storage import conversations, runs
from storage.db import Database
from storage.events import claim_event

log = logging.getLogger(__name__)

APOLOGY = (
    "Sorry, something went wrong on my side while answering. It has been logged; please try again."
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
    ) -> None:
        self._db = db
        self._settings = settings
        self._lanes = lanes
        self._chat = chat
        self._commands = dict(commands)
        self._quota = quota
        self._moderation = moderation
        self._outboxes: dict[str, Outbox] = {}

    @property
    def commands(self) -> Mapping[str, Command]:
        return self._commands

    async def wait_idle(self) -> None:
        """Return once every accepted event has been handled."""
        await self._lanes.wait_idle()

    async def has_conversation(self, key: ConversationKey) -> bool:
        """Whether the bot already takes part in the conversation at `key` (adapters use it to
        answer thread replies without a mention)."""
        return await conversations.get_active(self._db, key, self._chat.backend_name) is not None

    def register_outbox(self, platform: str, outbox: Outbox) -> None:
        self._outboxes[platform] = outbox

    def is_admin(self, actor_id: str, platform_admin: bool) -> bool:
        return platform_admin or actor_id in self._settings.admin_ids

    async def submit(self, event: Event) -> bool:
        """Accept an event: guards, dedupe, then queue it. Returns at once; False when the event
        was dropped (self/bot, not addressed to the bot, a redelivery, or shutting down)."""
        if isinstance(event, Inbound) and (
            event.is_self or event.actor.is_bot or not event.addressed
        ):
            return False
        if isinstance(event, Inbound):
            event = message_command(event) or event
        if self._lanes.closed:
            log.info("shutting down; not accepting event %s at %s", event.event_id, event.key)
            return False
        if not await claim_event(self._db, event.key.platform, event.event_id):
            log.info("duplicate event %s at %s ignored", event.event_id, event.key)
            return False
        try:
            if isinstance(event, Inbound):
                await self._submit_message(event)
            else:
                self._submit_command(event)
        except LanesClosed:
            return False
        return True

    async def _submit_message(self, event: Inbound) -> None:
        """A valid message gets its run row (queued) now, so it is on record while it waits for
        its lane; an invalid one only gets its explanation, in order with the others."""
        try:
            check_message(event, self._settings)
            config = await self._check_quota(event)
        except UserError as refusal:
            error = refusal

            async def explain() -> None:
                raise error

            self._lanes.submit(event.key, lambda: self._guarded(event, explain))
            return
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
            await self._chat.answer(event, run_id, self._outbox(event))

        self._lanes.submit(event.key, lambda: self._guarded(event, job))

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
        and an apology. Either way the lane moves on to the next event."""
        try:
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
                type(exc).__name__,
            )
