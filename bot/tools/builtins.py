"""The tools every deployment has: the time in a time zone, arithmetic, this channel's usage."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.tools.arithmetic import calculate, format_number
from bot.tools.errors import ToolError
from bot.tools.registry import Tool, ToolContext

USAGE_PERIODS = ("today", "7d", "30d", "all")  # bot.features.usage.PERIODS


async def current_time(args: dict[str, Any], context: ToolContext) -> str:
    zone_name = str(args.get("timezone") or "UTC").strip()
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(
            f"unknown time zone {zone_name!r}; use an IANA name such as Europe/Paris"
        ) from None
    now = datetime.now(UTC).astimezone(zone)
    return f"{now.isoformat(timespec='seconds')} ({now:%A}, {zone_name})"


async def arithmetic(args: dict[str, Any], context: ToolContext) -> str:
    return format_number(calculate(str(args["expression"])))


async def channel_usage(args: dict[str, Any], context: ToolContext) -> str:
    period = str(args.get("period") or "30d")
    key = context.key
    if context.db is None:
        raise ToolError("channel usage is not available here")
    # Imported here: tool worker processes load this module and need none of it.
    from bot.features.usage import PERIODS, format_totals, since
    from storage.usage import UsageScope, totals

    scope = UsageScope(key.platform, key.workspace, channel=key.channel)
    found = await totals(context.db, scope, since(period, time.time()))
    return f"Usage of this channel, {PERIODS[period]}:\n{format_totals(found)}"


BUILTIN_TOOLS: tuple[Tool, ...] = (
    Tool(
        name="current_time",
        description="The current date and time in a time zone (IANA name, default UTC).",
        parameters={
            "type": "object",
            "properties": {
                "timezone": {
                    "type": "string",
                    "description": "IANA time zone, e.g. Europe/Paris or America/New_York",
                }
            },
            "additionalProperties": False,
        },
        run=current_time,
    ),
    Tool(
        name="calculate",
        description=(
            "Evaluate an arithmetic expression exactly: numbers, + - * / // % ** (or ^), "
            "parentheses, sqrt, log, log10, exp, sin, cos, tan, abs, round, min, max, floor, "
            "ceil, pi, e."
        ),
        parameters={
            "type": "object",
            "properties": {
                "expression": {"type": "string", "description": "e.g. (3 + 4.5) * 2 ** 10"}
            },
            "required": ["expression"],
            "additionalProperties": False,
        },
        run=arithmetic,
    ),
    Tool(
        name="channel_usage",
        description="How much this chat channel used the assistant: runs, tokens and cost.",
        parameters={
            "type": "object",
            "properties": {"period": {"type": "string", "enum": list(USAGE_PERIODS)}},
            "additionalProperties": False,
        },
        run=channel_usage,
        in_process=True,  # it reads the bot's database (async I/O only)
    ),
)
