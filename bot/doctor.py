"""`python -m bot doctor`: configuration and reachability checks, printed one line each.

Exit status 0 when nothing is wrong, 1 with warnings, 2 with errors. `info` lines never count:
they say what is not configured (a platform left unset) or what will need attention later
without any setting being wrong (a shipped default model's announced shutdown).
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from bot.backends.endpoint import probe_features, working_backends
from bot.backends.models import EndpointCheck, check_endpoint
from bot.backends.speech import engine_kind
from bot.core.config import ConfigError, Settings, unknown_variable_warnings
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

    def info(self, text: str) -> None:
        self._out.write(f"info  {redact(text)}\n")

    def warn(self, text: str) -> None:
        self.warnings += 1
        self._out.write(f"WARN  {redact(text)}\n")

    def error(self, text: str) -> None:
        self.errors += 1
        self._out.write(f"ERROR {redact(text)}\n")  # platform errors may quote a token


def model_warnings(
    configured: dict[str, str],
    served: dict[str, str | None],
    today: dt.date,
    defaults: frozenset[str] = frozenset(),
) -> list[str]:
    """Warnings for configured models: unknown to the endpoint, shut down, or shutting down soon.
    `served` maps each model id the endpoint lists to its `shutdown_date` (or None). Roles in
    `defaults` use the shipped default: their coming shutdown is not a warning (no setting is
    wrong; see `default_model_notes`)."""
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
        elif days <= SHUTDOWN_WARNING_DAYS and role not in defaults:
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


def default_model_notes(
    configured: dict[str, str],
    served: dict[str, str | None],
    today: dt.date,
    defaults: frozenset[str],
) -> list[str]:
    """Shipped default models whose shutdown is announced within the warning window."""
    notes = []
    for role in sorted(defaults):
        model = configured.get(role)
        shutdown = served.get(model or "") if model else None
        if not shutdown:
            continue
        try:
            date = dt.date.fromisoformat(shutdown[:10])
        except ValueError:
            continue
        days = (date - today).days
        if 0 <= days <= SHUTDOWN_WARNING_DAYS:
            setting = f"SWITCHBOARD_{role.upper()}_MODEL"
            notes.append(
                f"the shipped default {role} model {model} shuts down on {date} (in {days} "
                f"days): update Switchboard before then, or choose another with {setting}"
            )
    return notes


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
    settings: Settings,
    out: TextIO,
    *,
    today: Callable[[], dt.date] = dt.date.today,
    environ: Mapping[str, str] | None = None,
    dotenv: Path | None = Path(".env"),
) -> int:
    """Print the checks; exit status 0 when nothing is wrong, 1 with warnings, 2 with errors."""
    report = Report(out)
    report.ok(f"backend {settings.backend}, OpenAI endpoint {settings.openai_base_url}")
    for warning in unknown_variable_warnings(os.environ if environ is None else environ, dotenv):
        report.warn(warning)
    problem = await check(settings.database_url)
    if problem is None:
        report.ok(f"database {describe(settings.database_url)}")
    else:
        report.error(problem)
    check_credentials(settings, report)
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

    if settings.openai_api_key is None or not settings.openai_api_key.get_secret_value().strip():
        return _status(report)  # said above; nothing to ask OpenAI without a key
    endpoint = await check_endpoint(settings)
    served = endpoint.served
    if served is None:
        report.error(_endpoint_problem(settings, endpoint))
        return _status(report)
    report.ok(f"OpenAI reachable, {len(served)} models listed")
    await check_backends(settings, report)

    configured: dict[str, str] = dict(settings.models)
    defaults = frozenset(
        role for role in configured if f"{role}_model" not in settings.model_fields_set
    )
    configured.update(await channel_models(settings))
    date = today()
    for warning in model_warnings(configured, served, date, defaults):
        report.warn(warning)
    oks, warnings = audio_findings(settings, date)
    for line in oks:
        report.ok(line)
    for warning in warnings:
        report.warn(warning)
    for note in default_model_notes(configured, served, date, defaults):
        report.info(note)
    if prices is not None:
        for role, model in configured.items():
            if role in PRICED_ROLES and model not in prices.models:
                report.warn(
                    f"{role} model {model} has no price: its cost will be recorded as unknown"
                )
    return _status(report)


def check_credentials(settings: Settings, report: Report) -> None:
    """Which credentials are set (never their values), and what is missing for what."""
    key = settings.openai_api_key
    if key is None or not key.get_secret_value().strip():
        report.error("OPENAI_API_KEY is not set: set it in the environment or in .env")
    else:
        report.ok("OPENAI_API_KEY is set")
    slack_extras = [
        name
        for name, value in (
            ("SLACK_APP_TOKEN", settings.slack_app_token),
            ("SLACK_SIGNING_SECRET", settings.slack_signing_secret),
        )
        if value is not None
    ]
    if settings.slack_bot_token is None:
        if slack_extras:
            report.warn(
                f"{' and '.join(slack_extras)} set but SLACK_BOT_TOKEN is not: Slack will not "
                "start (set SLACK_BOT_TOKEN, the xoxb- token from OAuth & Permissions)"
            )
        else:
            report.info("Slack is not configured (SLACK_BOT_TOKEN and SLACK_APP_TOKEN are not set)")
    else:
        report.ok(f"SLACK_BOT_TOKEN is set, with {' and '.join(slack_extras) or 'nothing else'}")
    if settings.discord_token is None:
        report.info("Discord is not configured (DISCORD_TOKEN is not set)")
    else:
        report.ok("DISCORD_TOKEN is set")
    if settings.slack_bot_token is None and settings.discord_token is None:
        report.warn(
            "no chat platform configured: `scripts/run` needs SLACK_BOT_TOKEN or DISCORD_TOKEN "
            "(`scripts/run console` works without)"
        )


async def check_backends(settings: Settings, report: Report) -> None:
    """What the endpoint serves, and whether the configured backend works with it."""
    probes = await probe_features(settings)
    served = [p.path for p in probes if p.served]
    missing = [p.path for p in probes if p.served is False]
    unknown = [f"{p.path} ({p.why})" for p in probes if p.served is None]
    parts = []
    if served:
        parts.append(f"serves {', '.join(served)}")
    if missing:
        parts.append(f"not {', '.join(missing)}")
    if unknown:
        parts.append(f"could not tell for {', '.join(unknown)}")
    report.ok(f"the endpoint {'; '.join(parts)}")
    verdicts = working_backends(probes)
    works = [name for name, ok in verdicts.items() if ok]
    mine = verdicts.get(settings.backend)
    if mine is True:
        report.ok(f"SWITCHBOARD_BACKEND={settings.backend} works with this endpoint")
    elif mine is False:
        lacking = [p.path for p in probes if p.served is False]
        fix = (
            f": set SWITCHBOARD_BACKEND={works[0]}, which works with it"
            if works
            else ": check OPENAI_BASE_URL"
        )
        report.error(
            f"SWITCHBOARD_BACKEND={settings.backend} needs {', '.join(lacking)}, which this "
            f"endpoint does not serve{fix}"
        )
    else:
        report.warn(f"could not tell whether SWITCHBOARD_BACKEND={settings.backend} works here")


def _endpoint_problem(settings: Settings, endpoint: EndpointCheck) -> str:
    said = f": {endpoint.message}" if endpoint.message else ""
    if endpoint.problem == "key":
        status = f"HTTP {endpoint.status_code}" if endpoint.status_code else "refused"
        return f"OpenAI rejected OPENAI_API_KEY ({status}{said}): check the key"
    if endpoint.problem == "unreachable":
        return f"cannot reach OpenAI at {settings.openai_base_url}: check OPENAI_BASE_URL"
    hint = ""
    if endpoint.status_code == 404 and not settings.openai_base_url.rstrip("/").endswith("/v1"):
        hint = " (OPENAI_BASE_URL usually ends in /v1)"
    return f"GET /models failed with HTTP {endpoint.status_code}{said}{hint}"


def _status(report: Report) -> int:
    return 2 if report.errors else 1 if report.warnings else 0
