"""Storage engines on the same workload: one bot process on SQLite, one on PostgreSQL, and two
processes (replicas) sharing one PostgreSQL database.

The fake OpenAI runs in its own process, PostgreSQL is a real server (testing/postgres.py), and
every bot process is a real App (dispatcher, lanes, work queue, ledger, storage) in its own
process with a timing outbox. The workload: CONVERSATIONS conversations, TURNS turns each, sent
in waves (turn n of every conversation, then turn n+1 once all are answered), each message
going to the processes in turn, as a load balancer would. Reported: answers per second,
p50/p99 time from `submit` to the first text, and database round trips per answer (trips to
aiosqlite's thread, or statements sent on a PostgreSQL connection, BEGIN and COMMIT included).
Prints its figures; asserts nothing.

    .venv/bin/python -m benchmarks.storage_engines [--latency 0] [--conversations 40] [--turns 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import child_process, machine_line, pct
from benchmarks.turns import fake_in_subprocess
from bot.core.types import Actor, ConversationKey, Inbound, Reply

USER = Actor("U1", "bench")


class _Outbox:
    """First text and final text times per message id."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.done: dict[str, asyncio.Event] = {}

    async def send(self, reply: Reply) -> None:
        raise RuntimeError(f"unexpected reply: {reply.text}")

    def open_stream(self, key: ConversationKey, in_reply_to: str, actor: Actor) -> _Stream:
        return _Stream(self, in_reply_to)


class _Stream:
    def __init__(self, outbox: _Outbox, message_id: str) -> None:
        self._outbox = outbox
        self._id = message_id

    async def append(self, delta: str) -> None:
        self._outbox.first.setdefault(self._id, time.perf_counter())

    async def finish(self, text: str) -> None:
        self._outbox.first.setdefault(self._id, time.perf_counter())
        self._outbox.done.setdefault(self._id, asyncio.Event()).set()

    async def abort(self) -> None:
        pass


def _count_trips() -> dict[str, int]:
    """Count database round trips in this process, for both engines (benchmark-only patches)."""
    from storage.postgres import engine as pg
    from storage.sqlite import engine as lite

    trips = {"n": 0}

    def counted(cls: Any, name: str) -> None:
        original = getattr(cls, name)

        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            trips["n"] += 1
            return await original(self, *args, **kwargs)

        setattr(cls, name, wrapper)

    counted(lite.SqliteDatabase, "_send")  # writes and transactions: one trip each
    counted(lite.SqliteDatabase, "fetch_all")  # reads (fetch_one goes through it)
    counted(pg.PostgresDatabase, "_retrying")  # single statements
    counted(pg._PgTransaction, "_send")  # statements inside a transaction
    counted(pg._PgTransaction, "_begin")
    counted(pg._PgTransaction, "commit")
    return trips


def _bot(url: str, base_url: str, pipe: Any) -> None:
    """One bot process: takes waves of (conversation, turn, event id) and answers them."""

    async def serve() -> None:
        from bot.app import App
        from bot.core.config import load_settings

        trips = _count_trips()
        settings = load_settings(
            OPENAI_API_KEY="sk-bench",
            OPENAI_BASE_URL=base_url,
            DATABASE_URL=url,
            LOG_LEVEL="WARNING",
            SWITCHBOARD_MAX_CONCURRENCY=64,
            SWITCHBOARD_BACKEND="chat",
        )
        app = await App.create(settings)
        outbox = _Outbox()
        app.dispatcher.register_outbox("bench", outbox)
        await app.recover()
        loop = asyncio.get_running_loop()
        pipe.send("ready")
        try:
            while True:
                wave = await loop.run_in_executor(None, pipe.recv)
                if wave == "stop":
                    return
                trips["n"] = 0
                started: dict[str, float] = {}
                for channel, turn, event_id in wave:
                    key = ConversationKey("bench", "W", channel)
                    outbox.done.setdefault(event_id, asyncio.Event())
                    started[event_id] = time.perf_counter()
                    await app.dispatcher.submit(
                        Inbound(key, USER, f"turn {turn}", event_id, message_id=event_id)
                    )
                for event_id in started:
                    await outbox.done[event_id].wait()
                firsts = [outbox.first[e] - started[e] for e in started]
                pipe.send((firsts, trips["n"]))
        finally:
            await app.shutdown()

    asyncio.run(serve())


@contextlib.contextmanager
def _bots(url: str, base_url: str, count: int) -> Iterator[list[Any]]:
    with contextlib.ExitStack() as stack:
        pipes = []
        for _ in range(count):
            ready, pipe = stack.enter_context(child_process(_bot, url, base_url))
            assert ready == "ready"
            pipes.append(pipe)
        yield pipes


def run(
    label: str, url: str, base_url: str, processes: int, conversations: int, turns: int
) -> None:
    with _bots(url, base_url, processes) as pipes:
        firsts: list[float] = []
        trips = 0
        answers = 0
        elapsed = 0.0
        for turn in range(-1, turns):  # turn -1: warm-up (creates the conversations)
            shares: list[list[tuple[str, int, str]]] = [[] for _ in pipes]
            for n in range(conversations):
                shares[(n + turn) % len(pipes)].append((f"C{n}", turn, f"{label}-{turn}-{n}"))
            start = time.perf_counter()
            for pipe, share in zip(pipes, shares, strict=True):
                pipe.send(share)
            results = [pipe.recv() for pipe in pipes]
            if turn < 0:
                continue
            elapsed += time.perf_counter() - start
            for times, count in results:
                firsts.extend(times)
                trips += count
            answers += conversations
    print(
        f"{label:<28} {answers / elapsed:7.1f} answers/s   first text p50 "
        f"{pct(firsts, 0.5) * 1000:6.1f} ms  p99 {pct(firsts, 0.99) * 1000:6.1f} ms   "
        f"{trips / answers:5.1f} round trips/answer"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.0, help="fake OpenAI's first byte")
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--turns", type=int, default=5)
    args = parser.parse_args()
    from testing.postgres import PostgresServer

    print(f"{machine_line()}; fake OpenAI in its own process, latency {args.latency * 1000:.0f} ms")
    print(f"{args.conversations} conversations x {args.turns} turns, chat backend")
    with (
        fake_in_subprocess(args.latency) as base_url,
        PostgresServer.start() as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        work = (args.conversations, args.turns)
        run("1 process, SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", base_url, 1, *work)
        run("1 process, PostgreSQL", server.create_database(), base_url, 1, *work)
        run("2 processes, PostgreSQL", server.create_database(), base_url, 2, *work)


if __name__ == "__main__":
    main()
