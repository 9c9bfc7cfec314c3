"""Queries over runs and their usage: totals, top users and models, spend for budgets, export."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from storage.db import Database, Row


@dataclass(frozen=True, slots=True)
class UsageScope:
    """Which runs count: a workspace (None: every workspace of the platform, for a user whose
    id is the same everywhere), optionally narrowed to a channel and/or a user."""

    platform: str
    workspace: str | None
    channel: str | None = None
    user_id: str | None = None

    def where(self, since: float) -> tuple[str, list[Any]]:
        clauses = ["runs.platform = ?", "runs.created_at >= ?"]
        params: list[Any] = [self.platform, since]
        if self.workspace is not None:
            clauses.append("runs.workspace = ?")
            params.append(self.workspace)
        if self.channel is not None:
            clauses.append("runs.channel = ?")
            params.append(self.channel)
        if self.user_id is not None:
            clauses.append("runs.user_id = ?")
            params.append(self.user_id)
        return " AND ".join(clauses), params


@dataclass(frozen=True, slots=True)
class UsageTotals:
    runs: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    images: int
    audio_seconds: float
    characters: int
    cost_usd: float
    unknown_cost_runs: int


@dataclass(frozen=True, slots=True)
class UsageLine:
    name: str
    runs: int
    cost_usd: float


async def totals(db: Database, scope: UsageScope, since: float) -> UsageTotals:
    where, params = scope.where(since)
    row = await db.fetch_one(
        "SELECT count(runs.id), coalesce(sum(u.input_tokens), 0), coalesce(sum(u.cached_tokens), 0), "
        "coalesce(sum(u.output_tokens), 0), coalesce(sum(u.images), 0), "
        "coalesce(sum(u.audio_seconds), 0), coalesce(sum(u.characters), 0), "
        "coalesce(sum(u.cost_usd), 0), count(u.run_id) - count(u.cost_usd) "
        f"FROM runs LEFT JOIN usage u ON u.run_id = runs.id WHERE {where}",
        params,
    )
    assert row is not None
    return UsageTotals(*row)


async def top(
    db: Database,
    scope: UsageScope,
    since: float,
    by: Literal["user_id", "model"],
    limit: int = 5,
) -> list[UsageLine]:
    where, params = scope.where(since)
    column = "runs.user_id" if by == "user_id" else "coalesce(u.model, runs.model)"
    rows = await db.fetch_all(
        f"SELECT {column} AS name, count(runs.id), coalesce(sum(u.cost_usd), 0) AS cost "
        f"FROM runs LEFT JOIN usage u ON u.run_id = runs.id WHERE {where} AND {column} != '' "
        "GROUP BY name ORDER BY cost DESC, count(runs.id) DESC LIMIT ?",
        [*params, limit],
    )
    return [UsageLine(row[0], row[1], row[2]) for row in rows]


async def spent(db: Database, scope: UsageScope, since: float) -> float:
    """Dollars spent by finished runs in scope since `since` (runs of unknown cost count 0)."""
    where, params = scope.where(since)
    row = await db.fetch_one(
        f"SELECT coalesce(sum(u.cost_usd), 0) FROM runs JOIN usage u ON u.run_id = runs.id WHERE {where}",
        params,
    )
    return float(row[0]) if row else 0.0


EXPORT_COLUMNS = (
    "run_id",
    "created_at",
    "platform",
    "workspace",
    "channel",
    "thread",
    "user_id",
    "kind",
    "status",
    "model",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "reasoning_tokens",
    "images",
    "audio_seconds",
    "characters",
    "file_search_calls",
    "web_search_calls",
    "container_sessions",
    "cost_usd",
)


async def export_rows(db: Database, since: float) -> list[Row]:
    return await db.fetch_all(
        "SELECT runs.id AS run_id, runs.created_at, runs.platform, runs.workspace, runs.channel, "
        "runs.thread, runs.user_id, runs.kind, runs.status, coalesce(u.model, runs.model) AS model, "
        "u.input_tokens, u.cached_tokens, u.output_tokens, u.reasoning_tokens, u.images, "
        "u.audio_seconds, u.characters, u.file_search_calls, u.web_search_calls, "
        "u.container_sessions, u.cost_usd "
        "FROM runs LEFT JOIN usage u ON u.run_id = runs.id WHERE runs.created_at >= ? "
        "ORDER BY runs.id",
        (since,),
    )


async def flagged_count(db: Database, scope: UsageScope, since: float) -> int:
    """Messages refused by moderation in scope since `since`."""
    where, params = scope.where(since)
    row = await db.fetch_one(f"SELECT count(*) FROM moderation_flags AS runs WHERE {where}", params)
    return int(row[0]) if row else 0
