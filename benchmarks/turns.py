"""End-to-end turn time through dispatcher + lanes + storage + backend, versus a direct SDK call.

Starts the loopback fake OpenAI with a fixed latency (default 300 ms before the first byte) and,
for 1 and 50 concurrent conversations, measures each turn from `dispatcher.submit` to the final
text delivered, next to the same streamed Responses call made directly with the SDK against the
same fake. Then turns per second with zero latency. Prints its figures; asserts nothing.

    scripts/test --co -q >/dev/null   # (once) installs the dev dependencies
    .venv/bin/python -m benchmarks.turns [--latency 0.3] [--turns 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from openai import AsyncOpenAI

from benchmarks.common import child_process, machine_line, pct
from bot.app import App
from bot.core.config import Settings, load_settings
from bot.core.types import Actor, ConversationKey, Inbound, Reply
from testing.fakes.openai_fake import FakeOpenAI

USER = Actor("U1", "bench")
_ids = itertools.count()


class TimingOutbox:
    """Records when each answer's final text is delivered."""

    def __init__(self) -> None:
        self.finished: dict[str, asyncio.Future[float]] = {}

    def expect(self, message_id: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.finished[message_id] = future
        return future

    async def send(self, reply: Reply) -> None:
        raise RuntimeError(f"unexpected reply: {reply.text}")

    def open_stream(self, key: ConversationKey, in_reply_to: str, actor: Actor) -> _Stream:
        return _Stream(self, in_reply_to)


class _Stream:
    def __init__(self, outbox: TimingOutbox, message_id: str) -> None:
        self._outbox = outbox
        self._id = message_id

    async def append(self, delta: str) -> None:
        pass

    async def finish(self, text: str) -> None:
        self._outbox.finished.pop(self._id).set_result(time.perf_counter())

    async def abort(self) -> None:
        pass


def _serve_fake(latency: float, pipe) -> None:  # type: ignore[no-untyped-def]
    async def serve() -> None:
        async with FakeOpenAI(latency=latency, spec_check=False) as fake:
            pipe.send(fake.base_url)
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    asyncio.run(serve())


@contextlib.contextmanager
def fake_in_subprocess(latency: float):  # type: ignore[no-untyped-def]
    """The fake runs in its own process, as OpenAI would, so its CPU is not charged to the bot."""
    with child_process(_serve_fake, latency) as (base_url, _):
        yield base_url


async def direct_turns(
    client: AsyncOpenAI, settings: Settings, conversations: list[str], turns: int
) -> list[float]:
    """The same request the bot makes (model, instructions, input, conversation), made directly."""

    async def one(conversation: str) -> list[float]:
        times = []
        for n in range(turns):
            start = time.perf_counter()
            stream = await client.responses.create(
                model=settings.chat_model,
                instructions=settings.instructions,
                input=[{"role": "user", "content": [{"type": "input_text", "text": f"turn {n}"}]}],
                conversation=conversation,
                stream=True,
                store=True,
            )
            async with stream:
                async for _ in stream:
                    pass
            times.append(time.perf_counter() - start)
        return times

    results = await asyncio.gather(*(one(c) for c in conversations))
    return [t for times in results for t in times]


async def bot_turns(
    app: App, outbox: TimingOutbox, keys: list[ConversationKey], turns: int
) -> list[float]:
    async def one(key: ConversationKey) -> list[float]:
        times = []
        for n in range(turns):
            event_id = f"bench-{next(_ids)}"
            done = outbox.expect(event_id)
            start = time.perf_counter()
            await app.dispatcher.submit(
                Inbound(key, USER, f"turn {n}", event_id, message_id=event_id)
            )
            times.append(await done - start)
        return times

    results = await asyncio.gather(*(one(k) for k in keys))
    return [t for times in results for t in times]


@contextlib.asynccontextmanager
async def bot_against(base_url: str, tmp: str):  # type: ignore[no-untyped-def]
    settings = load_settings(
        OPENAI_API_KEY="sk-bench",
        OPENAI_BASE_URL=base_url,
        DATABASE_URL=f"sqlite:///{Path(tmp) / 'bench.db'}",
        LOG_LEVEL="WARNING",
        SWITCHBOARD_MAX_CONCURRENCY=64,
    )
    app = await App.create(settings)
    outbox = TimingOutbox()
    app.dispatcher.register_outbox("bench", outbox)
    client = AsyncOpenAI(api_key="sk-bench", base_url=base_url, max_retries=0)
    try:
        yield app, outbox, client, settings
    finally:
        await client.close()
        await app.shutdown()


async def latency_figures(base_url: str, turns: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with bot_against(base_url, tmp) as (app, outbox, client, settings):
            for concurrency in (1, 50):
                keys = [
                    ConversationKey("bench", "W", f"C{concurrency}-{i}") for i in range(concurrency)
                ]
                conversations = [(await client.conversations.create()).id for _ in keys]
                await bot_turns(app, outbox, keys, 1)  # warm-up: creates each conversation
                await direct_turns(client, settings, conversations, 1)
                direct = await direct_turns(client, settings, conversations, turns)
                through = await bot_turns(app, outbox, keys, turns)
                d50, d99 = pct(direct, 0.5), pct(direct, 0.99)
                b50, b99 = pct(through, 0.5), pct(through, 0.99)
                print(
                    f"{concurrency:>2} conversations x {turns} turns: direct p50 {d50 * 1000:.1f} ms "
                    f"p99 {d99 * 1000:.1f} ms | bot p50 {b50 * 1000:.1f} ms p99 {b99 * 1000:.1f} ms "
                    f"| ratio p50 {b50 / d50:.3f} p99 {b99 / d99:.3f}"
                )


async def throughput_figures(base_url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with bot_against(base_url, tmp) as (app, outbox, client, settings):
            keys = [ConversationKey("bench", "W", f"T{i}") for i in range(50)]
            await bot_turns(app, outbox, keys, 1)
            start = time.perf_counter()
            through = await bot_turns(app, outbox, keys, 10)
            elapsed = time.perf_counter() - start
            conversations = [(await client.conversations.create()).id for _ in range(50)]
            start = time.perf_counter()
            direct = await direct_turns(client, settings, conversations, 10)
            direct_elapsed = time.perf_counter() - start
            print(
                f"zero latency, 50 conversations: bot {len(through) / elapsed:.0f} turns/s, "
                f"direct SDK {len(direct) / direct_elapsed:.0f} calls/s, "
                f"mean bot turn {statistics.mean(through) * 1000:.1f} ms"
            )


def measure(latency: float, turns: int) -> None:
    print(f"{machine_line()}; fake OpenAI in its own process, latency {latency * 1000:.0f} ms")
    with fake_in_subprocess(latency) as base_url:
        asyncio.run(latency_figures(base_url, turns))
    with fake_in_subprocess(0.0) as base_url:
        asyncio.run(throughput_figures(base_url))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.3, help="seconds before the first byte")
    parser.add_argument("--turns", type=int, default=5, help="measured turns per conversation")
    args = parser.parse_args()
    measure(args.latency, args.turns)


if __name__ == "__main__":
    main()
