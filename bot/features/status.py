"""`/status` (admins): the bot's state in one private message — version, uptime, the platforms'
connections, backend and models (with shutdown dates the endpoint reports), the OpenAI breaker,
queues, runs of the last hour by status, how the last hour's events ended with the ledger's
check (events without an ending), and today's spend."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import metadata
from urllib.parse import urlsplit

from bot.core.config import Settings
from bot.core.lanes import Lanes
from bot.core.ledger import ending_limit
from bot.core.presence import Presence
from bot.core.types import CommandCall, Reply
from storage import inbox, stats
from storage.db import Database

log = logging.getLogger(__name__)

MODELS_WAIT = 5.0  # seconds /status waits for the endpoint's model list (shutdown dates)
# Model id → its shutdown date (ISO text) or None.
ServedModels = Callable[[], Awaitable[dict[str, str | None]]]


@dataclass(frozen=True, slots=True)
class BreakerView:
    state: Callable[[], str]
    retry_in: Callable[[], float | None]


class StatusCommand:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        presence: Presence,
        lanes: Lanes,
        breaker: BreakerView,
        served_models: ServedModels,
        *,
        started_at: float | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._presence = presence
        self._lanes = lanes
        self._breaker = breaker
        self._served_models = served_models
        self._started_at = started_at or time.time()

    async def status(self, call: CommandCall) -> Reply:
        await self._presence.refresh()
        now = time.time()
        midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        by_status, spend, oldest, dates, endings = await asyncio.gather(
            stats.runs_by_status(self._db, now - 3600),
            stats.spend_since(self._db, midnight.timestamp()),
            stats.oldest_pending_age(self._db),
            self._shutdown_dates(),
            inbox.endings(self._db, now - 3600, now - ending_limit(self._settings)),
        )
        lines = [
            f"*Switchboard {_version()}* · up {_duration(now - self._started_at)}",
            "Platforms: " + self._platforms(now),
            f"Backend: `{self._settings.backend}` at {_host(self._settings.openai_base_url)}",
            "Models: " + self._models(dates),
            "OpenAI: " + self._openai(),
            f"Queues: {self._lanes.total} events waiting or running in "
            f"{self._lanes.active_lanes} conversations (busy at "
            f"{self._settings.busy_queued_total}, full at {self._settings.max_queued_total})"
            + (f"; oldest unhandled {_duration(oldest)} old" if oldest else ""),
            "Runs, last hour: "
            + (", ".join(f"{n} {status}" for status, n in by_status.items()) or "none"),
            "Events, last hour: " + _endings(endings, now),
            f"Spend today (UTC): ${spend:,.4f}",
        ]
        return Reply(call.key, text="\n".join(lines), ephemeral=True, actor_id=call.actor.id)

    def _platforms(self, now: float) -> str:
        state = self._presence.state()
        if not state:
            return "none"
        parts = []
        for name, conn in state.items():
            word = "connected" if conn.connected else (conn.detail or "not connected")
            since = f" for {_duration(now - conn.since)}" if conn.since else ""
            parts.append(f"{name} {word}{since}")
        return ", ".join(parts)

    def _models(self, dates: dict[str, str | None] | None) -> str:
        s = self._settings
        roles = (
            ("chat", s.chat_model),
            ("image", s.image_model),
            ("transcribe", s.transcribe_model),
            ("speech", s.speech_model),
            ("moderation", s.moderation_model),
        )
        parts = []
        for role, model in roles:
            note = ""
            if dates is not None:
                if model not in dates:
                    note = " (not listed by the endpoint)"
                elif dates[model]:
                    note = f" (shuts down {str(dates[model])[:10]})"
            parts.append(f"{role} `{model}`{note}")
        return ", ".join(parts)

    def _openai(self) -> str:
        state = self._breaker.state()
        if state == "closed":
            return "breaker closed (calls go through)"
        wait = self._breaker.retry_in()
        later = f", next try in {wait:.0f} s" if wait else ""
        return f"breaker {state.replace('_', '-')}{later}"

    async def _shutdown_dates(self) -> dict[str, str | None] | None:
        """The endpoint's model list, or None when it does not answer in time (the rest of
        /status must not wait on OpenAI)."""
        try:
            return await asyncio.wait_for(self._served_models(), MODELS_WAIT)
        except Exception as exc:  # TimeoutError included
            log.info("/status: no model list from the endpoint: %s", type(exc).__name__)
            return None


def _endings(found: inbox.Endings, now: float) -> str:
    """How the last hour's events ended, and the ledger's check: events without an ending."""
    ended = ", ".join(f"{n} {outcome}" for outcome, n in sorted(found.outcomes.items()))
    if not found.without:
        return (ended or "none") + "; every event has an ending or is being worked on"
    oldest = _duration(now - (found.oldest_without or now))
    return (
        ended or "none"
    ) + f"; *{found.without} without an ending* (oldest {oldest} old: see the log)"


def _version() -> str:
    try:
        return metadata.version("switchboard")
    except metadata.PackageNotFoundError:
        return "(source)"


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
