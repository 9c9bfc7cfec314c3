"""`python -m bot [run|console|doctor]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from bot.config import ConfigError, Settings, load_settings
from bot.logs import configure_logging

log = logging.getLogger("bot")

PLATFORM_HINT = (
    "no chat platform is configured. Set SLACK_BOT_TOKEN (with SLACK_APP_TOKEN or "
    "SLACK_SIGNING_SECRET) for Slack, or DISCORD_TOKEN for Discord; or try "
    "`python -m bot console` to chat from this terminal."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Switchboard chat bot")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="start every adapter whose credentials are set (the default)")
    sub.add_parser("console", help="chat with the configured assistant from this terminal")
    sub.add_parser("doctor", help="check configuration, OpenAI reachability and models")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level, settings.secrets())
        command = args.command or "run"
        if command == "doctor":
            return asyncio.run(_doctor(settings))
        if command == "console":
            return asyncio.run(_console(settings))
        return asyncio.run(_run(settings))
    except ConfigError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _doctor(settings: Settings) -> int:
    from bot.doctor import run_doctor

    return await run_doctor(settings, sys.stdout)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def _console(settings: Settings) -> int:
    from adapters.console import ConsoleAdapter
    from bot.app import App

    app = await App.create(settings)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    console = ConsoleAdapter(app.dispatcher, sys.stdin, sys.stdout, interactive=sys.stdin.isatty())
    try:
        await console.run(stop)
        if not stop.is_set():
            idle = asyncio.ensure_future(app.dispatcher.wait_idle())
            halt = asyncio.ensure_future(stop.wait())
            await asyncio.wait({idle, halt}, return_when=asyncio.FIRST_COMPLETED)
            idle.cancel()
            halt.cancel()
    finally:
        await app.shutdown()
    return 0


async def _run(settings: Settings) -> int:
    from adapters import configured_platforms

    platforms = configured_platforms(settings)
    if not platforms:
        raise ConfigError(PLATFORM_HINT)
    missing = [name for name, available in platforms.items() if not available]
    if missing:
        raise ConfigError(
            f"the {' and '.join(missing)} adapter is not part of this build yet; "
            "unset its credentials or use `python -m bot console`"
        )
    raise ConfigError("unreachable: every platform adapter is missing")  # filled by the adapters
