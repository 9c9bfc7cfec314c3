"""`python -m bot [run|console|doctor|manifest|invite|usage]` (`scripts/run …` in a checkout).

Exit status: 0 done; 1 a piped console where some line got no answer; 2 a configuration
problem, said in one line on stderr naming the variable; 130 interrupted before start-up ended.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from bot.core.config import ConfigError, Settings, load_settings, unknown_variable_warnings
from bot.logs import configure_logging
from bot.ops.heap import freeze_startup_objects
from bot.text.redact import redact

log = logging.getLogger("bot")

PLATFORM_HINT = (
    "no chat platform is configured. Set SLACK_BOT_TOKEN (with SLACK_APP_TOKEN or "
    "SLACK_SIGNING_SECRET) for Slack, or DISCORD_TOKEN for Discord; or try "
    "the `console` command (`scripts/run console`) to chat from this terminal."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Switchboard chat bot")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="start every adapter whose credentials are set (the default)")
    sub.add_parser("console", help="chat with the configured assistant from this terminal")
    sub.add_parser("doctor", help="check configuration, OpenAI reachability and models")
    manifest = sub.add_parser("manifest", help="print the Slack app manifest (YAML)")
    manifest.add_argument("platform", choices=["slack"])
    invite = sub.add_parser("invite", help="print the Discord invite URL (no network call)")
    invite.add_argument("platform", choices=["discord"])
    invite.add_argument(
        "--client-id",
        type=int,
        help="the application id (Developer Portal → General Information), if DISCORD_TOKEN "
        "is not set or belongs to an application made before 2016",
    )
    usage = sub.add_parser("usage", help="usage reports")
    usage_sub = usage.add_subparsers(dest="usage_command", required=True)
    export = usage_sub.add_parser("export", help="write every run since DATE as CSV")
    export.add_argument("--since", required=True, type=_date, help="YYYY-MM-DD (UTC)")
    export.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")
    return parser


def _date(value: str) -> float:
    import datetime as dt

    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-11-01") from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level, settings.secrets(), settings.log_format)
        command = args.command or "run"
        if command != "doctor":  # the doctor reports them among its checks
            for warning in unknown_variable_warnings(os.environ):
                log.warning("%s", warning)
        if command == "doctor":
            return asyncio.run(_doctor(settings))
        if command == "console":
            return asyncio.run(_console(settings))
        if command == "usage":
            return _export_usage(settings, args.since, args.output)
        if command == "manifest":
            render_manifest = _adapter_function(
                "Slack", "adapters.slack.manifest", "render_manifest"
            )
            print(render_manifest(settings), end="")
            return 0
        if command == "invite":
            invite_url = _adapter_function("Discord", "adapters.discord.invite", "invite_url")
            print(invite_url(settings, args.client_id))
            return 0
        return asyncio.run(_run(settings))
    except ConfigError as exc:
        print(f"switchboard: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _adapter_function(platform: str, module_name: str, name: str):  # type: ignore[no-untyped-def]
    import importlib

    try:
        return getattr(importlib.import_module(module_name), name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise
        raise ConfigError(f"the {platform} adapter is not part of this build yet") from None


async def _usage_rows(settings: Settings, since: float) -> list:  # type: ignore[type-arg]
    from storage.connect import is_postgres, open_database
    from storage.usage import export_rows

    if not is_postgres(settings.database_url) and not settings.database_path.exists():
        raise ConfigError(f"no database at {settings.database_path} (DATABASE_URL)")
    db = await open_database(settings.database_url)
    try:
        return await export_rows(db, since)
    finally:
        await db.close()


def _export_usage(settings: Settings, since: float, output: str) -> int:
    import contextlib
    import csv

    from storage.usage import EXPORT_COLUMNS

    rows = asyncio.run(_usage_rows(settings, since))
    with contextlib.ExitStack() as stack:
        stream = (
            sys.stdout
            if output == "-"
            else stack.enter_context(open(output, "w", newline="", encoding="utf-8"))
        )
        writer = csv.writer(stream)
        writer.writerow(EXPORT_COLUMNS)
        for row in rows:
            writer.writerow(["" if row[c] is None else row[c] for c in EXPORT_COLUMNS])
    if output != "-":
        print(f"wrote {len(rows)} runs to {output}", file=sys.stderr)
    return 0


async def _doctor(settings: Settings) -> int:
    from bot.doctor import run_doctor

    return await run_doctor(settings, sys.stdout)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


def startup_line(settings: Settings) -> str:
    """Which endpoint, backend and model are in use (the first line of `run` and `console`)."""
    endpoint = urlsplit(settings.openai_base_url)
    where = endpoint.netloc + endpoint.path.rstrip("/") or settings.openai_base_url
    return (
        f"Switchboard: chat model {settings.chat_model}, backend {settings.backend}, "
        f"OpenAI endpoint {where}"
    )


async def _check_backend(settings: Settings) -> None:
    """The `responses` backend on a server without the Conversations API would fail every
    message: stop now, in one line, pointing at the backend that works there."""
    from bot.backends.endpoint import conversations_missing

    missing = await conversations_missing(settings)
    if missing is not None:
        raise ConfigError(
            f"OPENAI_BASE_URL serves no {missing}, which SWITCHBOARD_BACKEND=responses needs: "
            "set SWITCHBOARD_BACKEND=chat for this endpoint (`scripts/run doctor` shows what "
            "it serves)"
        )


async def _console(settings: Settings) -> int:
    from adapters.console.adapter import ConsoleAdapter
    from adapters.console.logs import LogGate
    from bot.app import App

    settings.require_openai()
    await _check_backend(settings)
    app = await App.create(settings)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    logs = LogGate().install()
    interactive = sys.stdin.isatty()
    console = ConsoleAdapter(
        app.dispatcher, sys.stdin, sys.stdout, interactive=interactive, stderr=sys.stderr, logs=logs
    )
    app.ledger.subscribe(console.on_ledger)
    try:
        console.banner(startup_line(settings))
        await app.recover()
        freeze_startup_objects()
        await console.run(stop)
        if not stop.is_set():
            idle = asyncio.ensure_future(app.dispatcher.wait_idle())
            halt = asyncio.ensure_future(stop.wait())
            await asyncio.wait({idle, halt}, return_when=asyncio.FIRST_COMPLETED)
            idle.cancel()
            halt.cancel()
    finally:
        logs.uninstall()
        await app.shutdown()
    if console.failures and not interactive and not stop.is_set():
        print(
            f"switchboard: {console.failures} line(s) got no answer (the reason is shown above)",
            file=sys.stderr,
        )
        return 1
    return 0


async def _run(settings: Settings) -> int:
    from adapters import build_adapters, configured_platforms
    from bot.app import App
    from bot.ops.http import OpsServer

    if not configured_platforms(settings):
        raise ConfigError(PLATFORM_HINT)
    settings.require_openai()
    await _check_backend(settings)
    app = await App.create(settings)
    log.info("%s", startup_line(settings))
    stop = asyncio.Event()
    _stop_on_signals(stop)
    started = []
    ops = None
    try:
        platforms = configured_platforms(settings)
        for platform in platforms:
            app.dispatcher.presence.expect(platform)
        if settings.http_port is not None:
            ops = OpsServer(settings.http_port, app.metrics, app.readiness, app.refresh_gauges)
            await ops.start()
        for adapter in build_adapters(settings, app.dispatcher):
            await adapter.start()
            started.append(adapter)
        await app.recover()
        freeze_startup_objects()
        await stop.wait()
        log.info("shutting down: finishing the answers in flight")
        await app.drain()
    finally:
        for adapter in reversed(started):
            try:
                await adapter.close()
            except Exception as exc:
                log.warning("closing the %s adapter failed: %s", adapter.name, type(exc).__name__)
        if ops is not None:
            await ops.close()
        await app.close()
    return 0
