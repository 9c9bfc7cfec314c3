"""The Slack burst: N new threads at once, each a new conversation, versus the same OpenAI calls
made directly with the SDK in the same run.

The workload: N users mention the bot at the same moment, each at the top level of a channel of
its own, so each question opens a new thread and a new conversation; the model (the loopback
fake OpenAI, paced) answers after 0.3 s with 40 words as 40 deltas 10 ms apart, a short answer.
The bot is the real app with its Slack adapter on Socket Mode against the fake Slack (rate
limits on). For N = 1, 20 and 50, 3 rounds each after a warm-up, and each round paired with the
direct baseline at the same N: the OpenAI calls the bot makes for a new thread (responses
backend: the conversation's creation, then the streamed response in it; chat backend: the
streamed chat completion), made directly.

Prints per backend and load: end to end (the user's message leaving the fake Slack to the
final text arriving there) ÷ direct (p50, p99), first text − direct first token, the bot's CPU
per turn and ÷ the SDK-alone CPU, database round trips per turn (counted at
`storage.db.Database`, `benchmarks.counting`), Slack API calls and OpenAI requests per turn,
and a CPU profile (top 10, cProfile) of one more round at the largest load. Asserts nothing.

    .venv/bin/python -m benchmarks.burst             # ~4 minutes
    .venv/bin/python -m benchmarks.burst --quick     # N = 1 and 50, 1 round, one backend
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from benchmarks.common import machine_line
from benchmarks.report import report_load
from benchmarks.stream_bot import Plan
from benchmarks.streaming import run_bot, start_fakes, warm_bytecode

TARGETS = {"final_p50": 1.15, "final_p99": 1.30, "first_ms": 50.0, "cpu": 1.5}
WORDS = 40
COOLDOWN = 1.0  # new threads: no per-channel write budget to wait for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 1 and 50, one round")
    parser.add_argument("--backend", choices=("responses", "chat", "both"))
    parser.add_argument("--loads", help="comma-separated threads at once (1,20,50)")
    parser.add_argument("--rounds", type=int, help="measured rounds per load (3)")
    parser.add_argument("--profile", metavar="DIR", default="", help="also save the raw cProfile")
    parser.add_argument("--verbose", action="store_true", help="database statements per turn")
    args = parser.parse_args()
    loads = (
        [int(n) for n in args.loads.split(",")]
        if args.loads
        else [1, 50]
        if args.quick
        else [1, 20, 50]
    )
    rounds = args.rounds or (1 if args.quick else 3)
    backend = args.backend or ("responses" if args.quick else "both")
    backends = ["responses", "chat"] if backend == "both" else [backend]
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {machine_line()}")
    print(
        f"workload: Slack, N new threads at once; first delta after 0.3 s, {WORDS} deltas "
        f"10 ms apart; N in {loads}, {rounds} rounds each after a warm-up"
    )
    began = time.monotonic()
    warm_bytecode()
    with start_fakes(max(loads)) as info:
        for name in backends:
            plan = Plan(
                "slack",
                loads,
                rounds,
                backend=name,
                words=WORDS,
                rss_answers=0,
                new_threads=True,
                cooldown=COOLDOWN,
                profile_dir=args.profile,
            )
            result = run_bot(info, plan)
            label = f"slack   {name:9}"
            for load, measured in result["loads"].items():
                report_load(
                    label, int(load), measured, TARGETS, streaming=False, verbose=args.verbose
                )
            for line in result.get("profile", []):
                print(f"{label} {line}")
    print(f"took {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
