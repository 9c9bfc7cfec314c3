"""Wiring, in one place: storage, the one shared OpenAI client and the backends over it, the run
ledger, the features, the command table and the dispatcher. Adapters are handed the dispatcher;
`shutdown` winds everything down in order."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass

from bot.backends.base import Backend
from bot.backends.breaker import CircuitBreaker
from bot.backends.client import OpenAIClient, make_openai_client
from bot.backends.errors import openai_down_message
from bot.backends.factory import make_backends
from bot.backends.retry import retry_policy, retry_window
from bot.core.admins import AdminList, Admins
from bot.core.commands import CommandTable
from bot.core.config import Settings
from bot.core.dispatcher import Dispatcher
from bot.core.lanes import Lanes
from bot.core.ledger import RunLedger, ending_limit
from bot.core.presence import Presence
from bot.core.recovery import Recovery
from bot.core.replicas import WorkQueue
from bot.core.running import RunningAnswers
from bot.features.assistant.admin import AssistantAdmin
from bot.features.assistant.editor import ConfigEditor
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
from bot.tools.workers import ToolWorkers
from storage import stats
from storage.connect import open_database
from storage.db import Database
from storage.events import prune_events
from storage.retention import prune_content

log = logging.getLogger(__name__)

EVENT_MEMORY_SECONDS = 7 * 24 * 3600
HOUSEKEEPING_SECONDS = 3600.0  # how often retention runs while the bot is up


async def housekeep(db: Database, settings: Settings) -> None:
    """Retention: handled events' ids after `EVENT_MEMORY_SECONDS`, message history, answer
    steps and moderation flags after `SWITCHBOARD_RETENTION_DAYS` (`storage.retention`)."""
    events = await prune_events(db, EVENT_MEMORY_SECONDS)
    pruned = 0
    if settings.retention_days > 0:
        cutoff = time.time() - settings.retention_days * 86_400
        pruned = (await prune_content(db, cutoff)).total
    if events or pruned:
        log.info("retention: forgot %d handled events and %d stored texts", events, pruned)


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
        max_per_owner=settings.max_queued_per_user,
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
    workers: ToolWorkers | None = None
    housekeeping: asyncio.Task[None] | None = None
    backend: Backend | None = None  # the chat backend, closed before the client

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
        await housekeep(db, settings)
        lanes = make_lanes(settings)
        breaker = make_breaker(settings)
        retry = dataclasses.replace(
            retry_policy(settings, breaker), on_failure=metrics.on_openai_failure
        )
        metrics.watch(
            queued=lambda: lanes.total, breaker_open=lambda: breaker.retry_in() is not None
        )
        registry = make_tool_registry()
        workers = ToolWorkers(settings.tool_workers)
        backends = make_backends(settings, client, db, registry, retry, workers)
        media = MediaContext.create(db, settings, backends, ledger)
        audio = AudioCommands(media)
        images = ImageCommands(media)
        running = RunningAnswers()
        moderation = Moderation(backends.moderation, db, settings)
        inputs = MessageMedia(media, audio, moderation)
        chat = ChatCapability(db, settings, backends.chat, running, inputs)
        conversation = ConversationCommands(db, backends.conversations)
        control = RunCommands(db, running)
        quota = Quota(db, settings, priced=lambda model: model in prices.models)

        admins = Admins(AdminList.parse(settings.admins))
        editor = ConfigEditor(db)  # one settings writer: /assistant and /usage share its lock
        usage = UsageCommands(db, settings, quota, admins, editor=editor)
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
            db,
            settings,
            backends.models,
            backends.knowledge,
            admins,
            registry.names,
            builtin_functions=registry.builtin_names,
            priced=lambda model: model in prices.models,
            editor=editor,
            moderation=moderation,
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
            admins=admins,
            queue=queue,
        )
        recovery = Recovery(db, dispatcher, ledger, chat, queue)
        queue.platforms = lambda: dispatcher.platforms
        app = cls(
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
            workers,
        )
        app.backend = backends.chat
        app.housekeeping = asyncio.create_task(app._housekeep_every(HOUSEKEEPING_SECONDS))
        return app

    async def _housekeep_every(self, seconds: float) -> None:
        """Retention while the bot runs (it may run for months without a restart)."""
        while True:
            await asyncio.sleep(seconds)
            try:
                await housekeep(self.db, self.settings)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("housekeeping failed: %s", type(exc).__name__)

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
        await self.check_endings()
        if self.queue is not None:
            self.queue.run_sweeps(self.recovery.take_up_quietly)
        return taken

    async def check_endings(self) -> int:
        """The ledger's check at start-up: accepted events that have no ending and none coming
        (logged with a few ids; `/status` shows the same count). Returns how many."""
        try:
            found = await self.ledger.check(stale_after=ending_limit(self.settings))
        except Exception as exc:
            log.error("the check of event endings failed: %s", type(exc).__name__)
            return 0
        if found.without:
            log.error(
                "%d accepted events have no ending (answered, told or dropped) and no process "
                "working on them, e.g. %s",
                found.without,
                ", ".join(found.examples),
            )
        else:
            log.info("every accepted event has an ending or a process working on it")
        return found.without

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
        hand their events back; stop the tool workers; close the OpenAI client and storage."""
        if self.housekeeping is not None:
            self.housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.housekeeping
        owner = self.queue.id if self.queue is not None and self.db.shared else None
        await self.ledger.interrupt_unfinished("shut down before the answer finished", owner=owner)
        if self.queue is not None:
            await self.queue.stop()
        if self.workers is not None:
            await self.workers.close()
        if self.backend is not None:
            await self.backend.close()
        await self.client.close()
        await self.db.close()
