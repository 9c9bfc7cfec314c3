"""Who may spend how much: per-user rate limits and dollar budgets (user per UTC day, channel
and workspace per calendar month).

A request is refused when a limit is already reached, with a message naming the limit and when
it resets. Runs still in flight are not counted until they finish, so concurrent requests can
overshoot a budget by at most the cost of the runs already in flight.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from bot.core.config import Settings
from bot.core.errors import UserError
from bot.core.types import ConversationKey
from storage import ratelimits
from storage.db import Database
from storage.usage import UsageScope, spent

UTC = dt.UTC


def day_start(now: float) -> float:
    return (
        dt.datetime.fromtimestamp(now, UTC)
        .replace(hour=0, minute=0, second=0, microsecond=0)
        .timestamp()
    )


def month_start(now: float) -> float:
    moment = dt.datetime.fromtimestamp(now, UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def next_day(now: float) -> float:
    return day_start(now) + 86_400


def next_month(now: float) -> float:
    first = dt.datetime.fromtimestamp(month_start(now), UTC)
    year, month = (first.year + 1, 1) if first.month == 12 else (first.year, first.month + 1)
    return first.replace(year=year, month=month).timestamp()


def describe_reset(at: float, now: float) -> str:
    moment = dt.datetime.fromtimestamp(at, UTC)
    hours = (at - now) / 3600
    when = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"{when} (in {hours:.0f} h)" if hours < 48 else when


class RateLimiter:
    """Requests per actor per minute, in memory (a restart forgets; budgets are the durable part)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_minute = per_minute
        self._clock = clock
        self._hits: dict[tuple[str, str, str], deque[float]] = {}

    def hit(self, key: tuple[str, str, str]) -> float:
        """Record a request; 0 when allowed, else the seconds to wait (nothing recorded)."""
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] >= 60:
            hits.popleft()
        if len(hits) >= self._per_minute:
            return 60 - (now - hits[0])
        hits.append(now)
        if len(self._hits) > 10_000:
            self._forget_idle(now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or now - v[-1] >= 60]:
            del self._hits[key]


class SharedRateLimiter:
    """`RateLimiter` counted in the database, for processes sharing one (PostgreSQL): a user
    sending to several of them is counted once. Wall-clock time, so the processes' clocks
    should agree (NTP) to within a few seconds."""

    def __init__(
        self, db: Database, per_minute: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._per_minute = per_minute
        self._clock = clock
        self._checks = 0

    async def hit(self, key: tuple[str, str, str]) -> float:
        now = self._clock()
        self._checks += 1
        if self._checks % 1000 == 0:
            await ratelimits.forget_idle(self._db, now)
        return await ratelimits.hit(self._db, "\x1f".join(key), self._per_minute, now)


@dataclass(frozen=True, slots=True)
class Budget:
    label: str
    limit: float
    scope: UsageScope
    since: float
    resets: float


class Quota:
    def __init__(
        self, db: Database, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        per_minute = settings.rate_limit_per_minute
        self._rate: RateLimiter | None = None
        self._shared_rate: SharedRateLimiter | None = None
        if per_minute and db.shared:
            self._shared_rate = SharedRateLimiter(db, per_minute)
        elif per_minute:
            self._rate = RateLimiter(per_minute)

    def budgets(
        self, key: ConversationKey, actor_id: str, channel_budget: float | None
    ) -> list[Budget]:
        now = self._clock()
        s = self._settings
        channel_limit = (
            channel_budget if channel_budget is not None else s.budget_channel_monthly_usd
        )
        candidates = [
            ("your daily limit", s.budget_user_daily_usd,
             UsageScope(key.platform, key.workspace, user_id=actor_id), day_start(now), next_day(now)),
            ("this channel's monthly limit", channel_limit,
             UsageScope(key.platform, key.workspace, channel=key.channel), month_start(now), next_month(now)),
            ("this workspace's monthly limit", s.budget_workspace_monthly_usd,
             UsageScope(key.platform, key.workspace), month_start(now), next_month(now)),
        ]  # fmt: skip
        return [Budget(label, limit, scope, since, resets)
                for label, limit, scope, since, resets in candidates if limit]  # fmt: skip

    async def check(
        self, key: ConversationKey, actor_id: str, channel_budget: float | None
    ) -> None:
        """Raise a `UserError` when the actor is over the rate limit or a budget is used up."""
        scope = (key.platform, key.workspace, actor_id)
        wait = 0.0
        if self._rate is not None:
            wait = self._rate.hit(scope)
        elif self._shared_rate is not None:
            wait = await self._shared_rate.hit(scope)
        if wait:
            raise UserError(
                f"You're sending requests faster than {self._settings.rate_limit_per_minute} "
                f"a minute. Please try again in {max(1, round(wait))} s."
            )
        now = self._clock()
        for budget in self.budgets(key, actor_id, channel_budget):
            used = await spent(self._db, budget.scope, budget.since)
            if used >= budget.limit:
                raise UserError(
                    f"This request is refused: {budget.label} of ${budget.limit:.2f} is used up "
                    f"(${used:.2f} spent). It resets {describe_reset(budget.resets, now)}."
                )
