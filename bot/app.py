"""Wiring, in one place: storage, the one shared OpenAI client and the backends over it, the run
ledger, the features, the command table and the dispatcher. Adapters are handed the dispatcher;
`shutdown` winds everything down in order."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from bot.backends.breaker import CircuitBreaker
from bot.backends.client import OpenAIClient, make_openai_client
from bot.backends.errors import openai_down_message
from bot.backends.factory import make_backends
from bot.backends.retry import retry_policy, retry_window
from bot.core.commands import CommandTable
from bot.core.config import Settings
from bot.core.dispatcher import Dispatcher
from bot.core.lanes import Lanes
from bot.core.ledger import RunLedger
from bot.core.presence import Presence
from bot.core.recovery import Recovery
from bot.core.replicas import WorkQueue
from bot.core.running import RunningAnswers
from bot.core.types import Actor
from bot.features.assistant.admin import AssistantAdmin
from bot.features.audio import AudioCommands
from bot.features.chat.answer import ChatCapability
from bot.features.chat.inputs import MessageMedia
from bot.features.control import RunCommands
from bot.features.conversation import ConversationCommands
from bot.features.images import ImageCommands
from bot.features.media import MediaContext
from bot.features.moderation import Moderation
from bot.features.status import BreakerView, StatusCommand
from bot.features.usage import UsageCommands
from bot.ops.metrics import Metrics
from bot.spend.pricing import PriceTable
from bot.spend.quota import Quota
from bot.tools import ToolRegistry, build_registry
from storage import stats
from storage.connect import open_database
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
    ledger: RunLedger
    dispatcher: Dispatcher
    recovery: Recovery
    tools: ToolRegistry
    metrics: Metrics
    breaker: CircuitBreaker | None = None
    queue: WorkQueue | None = None

    @property
    def function_names(self) -> frozenset[str]:
        """The function tools a channel may enable (`functions:<name>,<name>`)."""
        return self.tools.names

    @classmethod
    async def create(cls, settings: Settings) -> App:
        prices = PriceTable.load(settings.prices_path)
        client = make_openai_client(settings)
        db = await open_database(settings.database_url)
        metrics = Metrics()
        ledger = RunLedger(db, prices.cost)
        ledger.subscribe(metrics.on_ledger)
        queue = WorkQueue(db, live_seconds=settings.replica_timeout)
        await queue.start()
        # Alone on the database (SQLite), the previous process's unfinished runs are over; their
        # events stay in the inbox and are taken up by `recover` once the adapters are
        # connected. Shared (PostgreSQL), other processes' runs go on: recovery closes the
        # runs of each event it takes over.
        if not db.shared:
            stale = await ledger.interrupt_unfinished(
                "the previous process stopped before this answer finished"
            )
            if stale:
                log.warning("%d answers were interrupted by the previous shutdown or crash", stale)
        await prune_events(db, EVENT_MEMORY_SECONDS)
        lanes = make_lanes(settings)
        breaker = make_breaker(settings)
        retry = dataclasses.replace(
            retry_policy(settings, breaker), on_failure=metrics.on_openai_failure
        )
        metrics.watch(
            queued=lambda: lanes.total, breaker_open=lambda: breaker.retry_in() is not None
        )
        registry = make_tool_registry()
        backends = make_backends(settings, client, db, registry, retry)
        media = MediaContext.create(db, settings, backends, ledger)
        audio = AudioCommands(media)
        images = ImageCommands(media)
        running = RunningAnswers()
        chat = ChatCapability(db, settings, backends.chat, running, MessageMedia(media, audio))
        conversation = ConversationCommands(db, backends.conversations)
        control = RunCommands(db, running)
        quota = Quota(db, settings)

        def is_admin(actor: Actor) -> bool:
            return actor.is_admin or actor.id in settings.admin_ids

        usage = UsageCommands(db, settings, quota, is_admin)
        presence = Presence(on_rate_limited=metrics.on_rate_limited)
        status = StatusCommand(
            db,
            settings,
            presence,
            lanes,
            BreakerView(lambda: breaker.state, breaker.retry_in),
            backends.models.served,
        )
        assistant = AssistantAdmin(
            db, settings, backends.models, backends.knowledge, is_admin, registry.names
        )
        commands = CommandTable(
            {
                "imagine": images.imagine,
                "edit": images.edit,
                "variation": images.variation,
                "speak": audio.speak,
                "transcribe": audio.transcribe,
                "translate": audio.translate,
                "reset": conversation.reset,
                "cancel": control.cancel,
                "steps": control.steps,
                "assistant": assistant.assistant,
                "usage": usage.usage,
                "status": status.status,
            }
        )
        moderation = Moderation(backends.moderation, db, settings)
        dispatcher = Dispatcher(
            db,
            settings,
            lanes,
            ledger,
            commands,
            chat,
            running,
            quota,
            moderation,
            presence=presence,
            backend_name=backends.chat.name,
            openai_down=lambda: openai_down_message(breaker),
            job_scope=lambda: retry_window(settings.openai_retry_budget),
            queue=queue,
        )
        recovery = Recovery(db, dispatcher, ledger, chat, queue)
        queue.platforms = lambda: dispatcher.platforms
        return cls(
            settings,
            db,
            client,
            lanes,
            ledger,
            dispatcher,
            recovery,
            registry,
            metrics,
            breaker,
            queue,
        )

    async def readiness(self) -> str | None:
        """Why the bot is not ready for events (None: ready): a platform not connected, or
        storage not answering. `/readyz` answers with it."""
        await self.dispatcher.presence.refresh()
        down = self.dispatcher.presence.not_ready()
        try:
            await stats.ping(self.db)
        except Exception as exc:
            storage = f"storage not answering ({type(exc).__name__})"
            down = f"{down}; {storage}" if down else storage
        return down

    async def refresh_gauges(self) -> None:
        """Gauges that need storage, read before each scrape."""
        self.metrics.inbox_oldest.set(await stats.oldest_pending_age(self.db))

    async def recover(self) -> int:
        """Take up the events the previous process left unfinished (after the adapters
        registered their outboxes); sharing the database, keep taking over those of processes
        that stop or die."""
        taken = await self.recovery.recover()
        if self.queue is not None:
            self.queue.run_sweeps(self.recovery.take_up_quietly)
        return taken

    async def shutdown(self) -> None:
        await self.drain()
        await self.close()

    async def drain(self) -> None:
        """Stop taking work and let answers in flight finish within the grace period (adapters
        stay connected meanwhile, so those answers are still delivered). Sharing the database,
        the events not started yet are handed to the other processes at once."""
        if self.queue is not None:
            await self.queue.hand_back_unstarted()
        self.lanes.close()
        finished = await self.lanes.drain(self.settings.shutdown_grace)
        if not finished:
            log.warning(
                "shutdown grace of %.0fs ran out; unfinished answers marked interrupted",
                self.settings.shutdown_grace,
            )

    async def close(self) -> None:
        """Mark unfinished answers interrupted (sharing the database: this process's only) and
        hand their events back; close the OpenAI client and storage."""
        owner = self.queue.id if self.queue is not None and self.db.shared else None
        await self.ledger.interrupt_unfinished("shut down before the answer finished", owner=owner)
        if self.queue is not None:
            await self.queue.stop()
        await self.client.close()
        await self.db.close()
