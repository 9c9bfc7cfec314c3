"""`python -m bot doctor`: configuration and reachability checks, printed one line each."""

from __future__ import annotations

import datetime as dt
import importlib
import os
from collections.abc import Callable
from typing import Any, TextIO

from bot.backends.models import check_endpoint
from bot.backends.speech import engine_kind
from bot.core.config import ConfigError, Settings
from bot.spend.pricing import PriceTable
from bot.text.redact import redact
from bot.tools import build_registry, function_names
from storage.configs import all_overrides
from storage.connect import check, describe, open_existing
from storage.db import StorageError

SHUTDOWN_WARNING_DAYS = 60
# Endpoints (not models) that shut down: a setting that still uses one gets a warning.
TRANSLATIONS_SHUTDOWN = dt.date(2027, 2, 26)  # POST /v1/audio/translations
PRICED_ROLES = ("chat", "image", "transcribe", "speech", "translation")


class Report:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.errors = 0
        self.warnings = 0

    def ok(self, text: str) -> None:
        self._out.write(f"ok    {redact(text)}\n")

    def warn(self, text: str) -> None:
        self.warnings += 1
        self._out.write(f"WARN  {redact(text)}\n")

    def error(self, text: str) -> None:
        self.errors += 1
        self._out.write(f"ERROR {redact(text)}\n")  # platform errors may quote a token


def model_warnings(
    configured: dict[str, str], served: dict[str, str | None], today: dt.date
) -> list[str]:
    """Warnings for configured models: unknown to the endpoint, shut down, or shutting down soon.
    `served` maps each model id the endpoint lists to its `shutdown_date` (or None)."""
    warnings: list[str] = []
    for role, model in configured.items():
        if model not in served:
            warnings.append(
                f"{role} model {model} is not offered by this endpoint (GET /v1/models)"
            )
            continue
        shutdown = served[model]
        if not shutdown:
            continue
        try:
            date = dt.date.fromisoformat(shutdown[:10])
        except ValueError:
            warnings.append(f"{role} model {model} has an unreadable shutdown_date {shutdown!r}")
            continue
        days = (date - today).days
        if days < 0:
            warnings.append(f"{role} model {model} was shut down on {date}: choose another")
        elif days <= SHUTDOWN_WARNING_DAYS:
            warnings.append(
                f"{role} model {model} shuts down on {date} (in {days} days): choose a successor"
            )
    return warnings


def audio_findings(settings: Settings, today: dt.date) -> tuple[list[str], list[str]]:
    """(ok lines, warnings) about speech and translation: which engine speaks, and the opt-ins
    that lead to retired endpoints."""
    engine = engine_kind(settings.speech_engine, settings.speech_model)
    where = "the Realtime API" if engine == "realtime" else "/audio/speech"
    oks = [f"speech: {settings.speech_model} through {where}"]
    warnings: list[str] = []
    if settings.translation == "endpoint":
        days = (TRANSLATIONS_SHUTDOWN - today).days
        when = (
            f"was shut down on {TRANSLATIONS_SHUTDOWN}"
            if days < 0
            else f"shuts down on {TRANSLATIONS_SHUTDOWN} (in {days} days)"
        )
        warnings.append(
            "SWITCHBOARD_TRANSLATION=endpoint: /translate uses /audio/translations, which "
            f"{when}; unset it to transcribe with {settings.transcribe_model} and translate "
            "with the chat model"
        )
    if os.environ.get("SWITCHBOARD_IMAGE_VARIATIONS_ENDPOINT"):
        warnings.append(
            "SWITCHBOARD_IMAGE_VARIATIONS_ENDPOINT is no longer read: /variation always edits "
            "with the image model (the variations endpoint is retired)"
        )
    return oks, warnings


async def channel_settings(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    """Every stored assistant override, as (where, settings), read from the database if there is
    one (read-only: the doctor never creates or migrates a database)."""
    try:
        async with open_existing(settings.database_url) as db:
            stored = [] if db is None else await all_overrides(db)
    except (ConfigError, StorageError):
        return []
    return [
        (f"{s.platform}:{s.workspace}:{s.channel or '(workspace default)'}", s.settings)
        for s in stored
    ]


async def channel_models(settings: Settings) -> dict[str, str]:
    """Models chosen in channels' assistant settings."""
    return {
        f"channel {where} chat": values["model"]
        for where, values in await channel_settings(settings)
        if isinstance(values.get("model"), str)
    }


async def channel_functions(settings: Settings) -> dict[str, list[str]]:
    """Function tools enabled in channels' assistant settings."""
    found = {}
    for where, values in await channel_settings(settings):
        tools = values.get("tools")
        if isinstance(tools, list):
            names = function_names(t for t in tools if isinstance(t, str))
            if names:
                found[where] = names
    return found


async def check_tools(settings: Settings, report: Report) -> None:
    """The function tools this deployment has (plugins included), plugins that failed, and
    channels enabling a function no tool provides."""
    registry = build_registry()
    report.ok(f"function tools: {', '.join(sorted(registry.names))}")
    for reason in registry.skipped:
        report.warn(reason)
    for where, names in (await channel_functions(settings)).items():
        missing = [n for n in names if n not in registry.names]
        if missing:
            report.warn(f"channel {where} enables unknown function tools: {', '.join(missing)}")


async def run_doctor(
    settings: Settings, out: TextIO, *, today: Callable[[], dt.date] = dt.date.today
) -> int:
    """Print the checks; exit status 0 when nothing is wrong, 1 with warnings, 2 with errors."""
    report = Report(out)
    report.ok(f"backend {settings.backend}, OpenAI endpoint {settings.openai_base_url}")
    problem = await check(settings.database_url)
    if problem is None:
        report.ok(f"database {describe(settings.database_url)}")
    else:
        report.error(problem)
    for name, secret in (
        ("OPENAI_API_KEY", settings.openai_api_key),
        ("SLACK_BOT_TOKEN", settings.slack_bot_token),
        ("SLACK_APP_TOKEN", settings.slack_app_token),
        ("SLACK_SIGNING_SECRET", settings.slack_signing_secret),
        ("DISCORD_TOKEN", settings.discord_token),
    ):
        report.ok(f"{name} is {'set' if secret and secret.get_secret_value() else 'not set'}")
    if not (settings.slack_bot_token or settings.discord_token):
        report.warn("no chat platform configured: set SLACK_BOT_TOKEN or DISCORD_TOKEN")
    for module_name in ("adapters.slack.doctor", "adapters.discord.doctor"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        for level, text in await module.check(settings):
            {"ok": report.ok, "warn": report.warn, "error": report.error}[level](text)

    await check_tools(settings, report)

    prices: PriceTable | None = None
    try:
        prices = PriceTable.load(settings.prices_path)
        report.ok(f"price table with {len(prices.models)} models")
    except ConfigError as exc:
        report.error(str(exc))

    try:
        endpoint = await check_endpoint(settings)
    except ConfigError as exc:
        report.error(str(exc))
        return _status(report)
    served = endpoint.served
    if served is None:
        if endpoint.problem == "key":
            report.error("OpenAI rejected OPENAI_API_KEY (401): check the key")
        elif endpoint.problem == "unreachable":
            report.error(f"cannot reach OpenAI at {settings.openai_base_url}")
        else:
            report.error(f"GET /models failed with HTTP {endpoint.status_code}")
        return _status(report)
    report.ok(f"OpenAI reachable, {len(served)} models listed")

    configured: dict[str, str] = dict(settings.models)
    configured.update(await channel_models(settings))
    date = today()
    for warning in model_warnings(configured, served, date):
        report.warn(warning)
    oks, warnings = audio_findings(settings, date)
    for line in oks:
        report.ok(line)
    for warning in warnings:
        report.warn(warning)
    if prices is not None:
        for role, model in configured.items():
            if role in PRICED_ROLES and model not in prices.models:
                report.warn(
                    f"{role} model {model} has no price: its cost will be recorded as unknown"
                )
    return _status(report)


def _status(report: Report) -> int:
    return 2 if report.errors else 1 if report.warnings else 0
