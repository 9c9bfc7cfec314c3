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
import itertools
import platform
import statistics
import tempfile
import time
from pathlib import Path

from openai import AsyncOpenAI
from tests.fakes.openai_fake import FakeOpenAI

from bot.app import App
from bot.config import load_settings
from bot.types import Actor, ConversationKey, Inbound, Reply

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


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def direct_turns(
    client: AsyncOpenAI, model: str, conversations: list[str], turns: int
) -> list[float]:
    async def one(conversation: str) -> list[float]:
        times = []
        for n in range(turns):
            start = time.perf_counter()
            stream = await client.responses.create(
                model=model,
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


async def measure(latency: float, turns: int) -> None:
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}, "
        f"{__import__('os').cpu_count()} cores; fake latency {latency * 1000:.0f} ms"
    )
    async with FakeOpenAI(latency=latency, spec_check=False) as fake:
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_settings(
                OPENAI_API_KEY="sk-bench",
                OPENAI_BASE_URL=fake.base_url,
                DATABASE_URL=f"sqlite:///{Path(tmp) / 'bench.db'}",
                LOG_LEVEL="WARNING",
                SWITCHBOARD_MAX_CONCURRENCY=64,
            )
            app = await App.create(settings)
            outbox = TimingOutbox()
            app.dispatcher.register_outbox("bench", outbox)
            client = AsyncOpenAI(api_key="sk-bench", base_url=fake.base_url, max_retries=0)
            try:
                for concurrency in (1, 50):
                    keys = [
                        ConversationKey("bench", "W", f"C{concurrency}-{i}")
                        for i in range(concurrency)
                    ]
                    conversations = [(await client.conversations.create()).id for _ in keys]
                    await bot_turns(app, outbox, keys, 1)  # warm-up: creates each conversation
                    await direct_turns(client, settings.chat_model, conversations, 1)
                    direct = await direct_turns(client, settings.chat_model, conversations, turns)
                    through = await bot_turns(app, outbox, keys, turns)
                    d50, d99 = pct(direct, 0.5), pct(direct, 0.99)
                    b50, b99 = pct(through, 0.5), pct(through, 0.99)
                    print(
                        f"{concurrency:>2} conversations x {turns} turns: direct p50 {d50 * 1000:.1f} ms "
                        f"p99 {d99 * 1000:.1f} ms | bot p50 {b50 * 1000:.1f} ms p99 {b99 * 1000:.1f} ms "
                        f"| ratio p50 {b50 / d50:.3f} p99 {b99 / d99:.3f}"
                    )
                fake.latency = 0.0
                keys = [ConversationKey("bench", "W", f"T{i}") for i in range(50)]
                await bot_turns(app, outbox, keys, 1)
                start = time.perf_counter()
                through = await bot_turns(app, outbox, keys, 10)
                elapsed = time.perf_counter() - start
                conversations = [(await client.conversations.create()).id for _ in range(50)]
                start = time.perf_counter()
                direct = await direct_turns(client, settings.chat_model, conversations, 10)
                direct_elapsed = time.perf_counter() - start
                print(
                    f"zero latency, 50 conversations: bot {len(through) / elapsed:.0f} turns/s, "
                    f"direct SDK {len(direct) / direct_elapsed:.0f} calls/s, "
                    f"mean bot turn {statistics.mean(through) * 1000:.1f} ms"
                )
            finally:
                await client.close()
                await app.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=0.3, help="seconds before the first byte")
    parser.add_argument("--turns", type=int, default=5, help="measured turns per conversation")
    args = parser.parse_args()
    asyncio.run(measure(args.latency, args.turns))


if __name__ == "__main__":
    main()
