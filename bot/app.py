"""Wiring, in one place: storage, the one shared OpenAI client and the backends over it,
capabilities and the dispatcher. Adapters are handed the dispatcher; `shutdown` winds
everything down in order."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.backends.breaker import CircuitBreaker
from bot.backends.client import OpenAIClient, make_openai_client
from bot.backends.factory import make_backends
from bot.backends.retry import retry_policy
from bot.core.config import Settings
from bot.core.dispatcher import Command, Dispatcher
from bot.core.lanes import Lanes
from bot.core.types import Actor
from bot.features.assistant.admin import AssistantAdmin
from bot.features.chat.answer import ChatCapability
from bot.features.control import RunCommands
from bot.features.conversation import ConversationCommands
from bot.features.media import MediaContext
from bot.features.media_commands import media_commands, message_media
from bot.features.moderation import Moderation
from bot.features.usage import UsageCommands
from bot.spend.pricing import PriceTable
from bot.spend.quota import Quota
from bot.tools import ToolRegistry, build_registry
from storage import runs
from storage.db import Database
from storage.events import prune_events

log = logging.getLogger(__name__)

EVENT_MEMORY_SECONDS = 7 * 24 * 3600


def make_breaker(settings: Settings) -> CircuitBreaker:
    return CircuitBreaker(
        settings.breaker_failures, settings.breaker_cooldown, settings.breaker_max_cooldown
    )


def make_lanes(settings: Settings) -> Lanes:
    return Lanes(
        settings.max_concurrency,
        busy_per_key=settings.busy_queued_per_conversation,
        max_per_key=settings.max_queued_per_conversation,
        busy_total=settings.busy_queued_total,
        max_total=settings.max_queued_total,
        max_notices=settings.max_queued_total,
    )


def make_tool_registry() -> ToolRegistry:
    """Built-in tools plus installed plugins (entry-point group `switchboard.tools`); built
    once per process. Its `names` are what `/assistant set tools functions:<names>` accepts."""
    return build_registry()


@dataclass(slots=True)
class App:
    settings: Settings
    db: Database
    client: OpenAIClient
    lanes: Lanes
    dispatcher: Dispatcher
    tools: ToolRegistry
    breaker: CircuitBreaker | None = None

    @property
    def function_names(self) -> frozenset[str]:
        """The function tools a channel may enable (`functions:<name>,<name>`)."""
        return self.tools.names

    @classmethod
    async def create(cls, settings: Settings) -> App:
        prices = PriceTable.load(settings.prices_path)
        client = make_openai_client(settings)
        db = await Database.open(settings.database_path)
        # The previous process's unfinished runs are over; their events stay in the inbox and
        # are taken up by `recover` once the adapters are connected.
        stale = await runs.mark_unfinished(
            db, "interrupted", "the previous process stopped before this answer finished"
        )
        if stale:
            log.warning("%d answers were interrupted by the previous shutdown or crash", stale)
        await prune_events(db, EVENT_MEMORY_SECONDS)
        lanes = make_lanes(settings)
        breaker = make_breaker(settings)
        retry = retry_policy(settings, breaker)
        registry = make_tool_registry()
        backends = make_backends(settings, client, db, registry, retry)
        media = MediaContext.create(db, settings, backends, prices)
        chat = ChatCapability(db, settings, backends.chat, prices, message_media(media))
        conversation = ConversationCommands(db, backends.conversations)
        run_commands = RunCommands(db, chat.running)
        quota = Quota(db, settings)

        def is_admin(actor: Actor) -> bool:
            return actor.is_admin or actor.id in settings.admin_ids

        usage = UsageCommands(db, settings, quota, is_admin)
        assistant = AssistantAdmin(
            db, settings, backends.models, backends.knowledge, is_admin, registry.names
        )
        commands = {
            "reset": Command(conversation.reset, "start a new conversation here", preempt=True),
            "cancel": Command(
                run_commands.cancel, "stop the answer in progress here", ordered=False
            ),
            "steps": Command(run_commands.steps, "what the assistant did for the last answer here"),
            **media_commands(media),
            "usage": Command(usage.usage, "tokens and cost", ordered=False),
            # Unordered: `knowledge add` waits for OpenAI to process files, which must not hold
            # up the channel's conversation; config writes are serialised by its own lock.
            "assistant": Command(assistant.assistant, "this channel's assistant", ordered=False),
        }
        moderation = Moderation(backends.moderation, db, settings)
        dispatcher = Dispatcher(
            db, settings, lanes, chat, commands, quota, moderation, breaker=breaker
        )
        return cls(settings, db, client, lanes, dispatcher, registry, breaker)

    async def recover(self) -> int:
        """Take up the events the previous process left unfinished (after the adapters
        registered their outboxes)."""
        return await self.dispatcher.recover()

    async def shutdown(self) -> None:
        await self.drain()
        await self.close()

    async def drain(self) -> None:
        """Stop taking work and let answers in flight finish within the grace period (adapters
        stay connected meanwhile, so those answers are still delivered)."""
        self.lanes.close()
        finished = await self.lanes.drain(self.settings.shutdown_grace)
        if not finished:
            log.warning(
                "shutdown grace of %.0fs ran out; unfinished answers marked interrupted",
                self.settings.shutdown_grace,
            )

    async def close(self) -> None:
        """Mark unfinished answers interrupted; close the OpenAI client and storage."""
        await runs.mark_unfinished(self.db, "interrupted", "shut down before the answer finished")
        await self.client.close()
        await self.db.close()
