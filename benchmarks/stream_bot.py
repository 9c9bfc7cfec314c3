"""The bot's side of the streaming benchmark: one process running the real app and one
platform adapter against the fakes (`benchmarks.fakes`), plus the direct-SDK baseline.

The direct baseline runs in this same process, between the bot's rounds (never at the same
time), so its CPU figure is the SDK-alone cost of the same stream in a comparable process.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import itertools
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from openai import AsyncOpenAI

from benchmarks.common import rss_mib
from bot.app import App
from bot.core.config import Settings, load_settings
from bot.core.types import Event

COOLDOWN = 5.5  # seconds between a channel's rounds: its write budget (5 per 5 s) refills


@dataclass
class Plan:
    platform: str  # "discord" | "slack"
    loads: list[int]
    rounds: int
    latency: float = 0.3
    delta_delay: float = 0.01
    words: int = 400
    rss_answers: int = 500
    seed_conversations: int = 0
    profile: str = ""  # a directory: cProfile of this process written there


@dataclass
class Round:
    """One round at one load: per answer seconds since the question, and CPU seconds."""

    direct_first: list[float] = field(default_factory=list)
    direct_final: list[float] = field(default_factory=list)
    direct_cpu: float = 0.0
    first: list[float] = field(default_factory=list)
    final: list[float] = field(default_factory=list)
    writes: list[int] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    cpu: float = 0.0
    missing: int = 0
    errors_429: int = 0


class Control:
    """The fakes' control APIs (`benchmarks.fakes`): `openai` goes to both processes."""

    def __init__(self, session: aiohttp.ClientSession, info: dict[str, Any]) -> None:
        self._session = session
        self._platforms = info["control_platforms"]
        self._openai = info["control_openai"]

    async def __call__(self, name: str, **body: Any) -> Any:
        if name == "openai":
            await self._post(self._openai, name, body)
        return await self._post(self._platforms, name, body)

    async def _post(self, url: str, name: str, body: dict[str, Any]) -> Any:
        async with self._session.post(f"{url}/{name}", json=body) as response:
            response.raise_for_status()
            return await response.json()


class BotSide:
    def __init__(self, plan: Plan, info: dict[str, Any], tmp: Path) -> None:
        self.plan = plan
        self.info = info
        self.settings = _settings(plan.platform, info, tmp)
        self.submitted = 0
        self._arrived = asyncio.Event()
        self._want = 0
        self.app: App | None = None
        self.adapter: Any = None
        self.threads: dict[str, str] = {}

    async def start(self) -> dict[str, Any]:
        self.app = app = await App.create(self.settings)
        if self.plan.seed_conversations:
            await _seed(app, self.plan.seed_conversations)
        submit = app.dispatcher.submit

        async def counting_submit(event: Event) -> bool:
            accepted = await submit(event)
            self.submitted += 1
            if self.submitted >= self._want:
                self._arrived.set()
            return accepted

        app.dispatcher.submit = counting_submit  # type: ignore[method-assign]
        if self.plan.platform == "discord":
            from adapters.discord.adapter import DiscordAdapter

            self.adapter = DiscordAdapter(self.settings, app.dispatcher)
            await self.adapter.start()
            synced = self.adapter.commands_synced is not None
            return {"synced": synced, "ready_means": f"connected, commands synced {synced}"}
        from adapters.slack.adapter import SlackAdapter

        self.adapter = SlackAdapter(self.settings, app.dispatcher, http_host="127.0.0.1")
        await self.adapter.start()
        return {"synced": True, "ready_means": "Socket Mode connected"}

    async def close(self) -> None:
        assert self.app is not None
        await self.app.drain()
        await self.adapter.close()
        await self.app.close()

    def channels(self, n: int) -> list[str]:
        return list(self.info[f"{self.plan.platform}_channels"][:n])

    async def bot_round(self, control: Control, channels: list[str]) -> Round:
        assert self.app is not None
        result = Round()
        self._want = self.submitted + len(channels)
        self._arrived.clear()
        asks = [{"channel": c, "thread": self.threads.get(c)} for c in channels]
        before = (await control("stats"))[f"{self.plan.platform}_429"]
        cpu = time.process_time()
        sent = await control("ask", platform=self.plan.platform, asks=asks)
        await self._arrived.wait()
        await self.app.dispatcher.wait_idle()
        result.cpu = time.process_time() - cpu
        result.errors_429 = (await control("stats"))[f"{self.plan.platform}_429"] - before
        for ask in sent:
            if self.plan.platform == "slack":
                self.threads.setdefault(ask["channel"], ask["thread"])
        since = min(a["sent_at"] for a in sent)
        writes = await control("writes", platform=self.plan.platform, since=since)
        for ask in sent:
            _timeline(ask, writes, result)
        return result


def _timeline(ask: dict[str, Any], writes: list[dict[str, Any]], into: Round) -> None:
    """First visible text, final text, number of writes and gaps of one answer."""
    mine = sorted(
        (w for w in writes if w["channel"] == ask["channel"] and w["at"] >= ask["sent_at"]),
        key=lambda w: w["at"],
    )
    shown = []
    for write in mine:
        shown.append(write)
        if write["final"]:
            break
    else:
        into.missing += 1
        return
    at = [w["at"] - ask["sent_at"] for w in shown]
    into.first.append(at[0])
    into.final.append(at[-1])
    into.writes.append(len(at))
    into.gaps.extend(b - a for a, b in itertools.pairwise(at))


async def direct_round(
    client: AsyncOpenAI, settings: Settings, conversations: list[str], into: Round
) -> None:
    """The request the bot makes (model, instructions, input, conversation), made directly."""

    async def one(conversation: str) -> tuple[float, float]:
        start = time.perf_counter()
        first = 0.0
        stream = await client.responses.create(
            model=settings.chat_model,
            instructions=settings.instructions,
            input=[{"role": "user", "content": [{"type": "input_text", "text": "tell me"}]}],
            conversation=conversation,
            stream=True,
            store=True,
        )
        async with stream:
            async for event in stream:
                if not first and event.type == "response.output_text.delta":
                    first = time.perf_counter() - start
        return first, time.perf_counter() - start

    cpu = time.process_time()
    for first, final in await asyncio.gather(*(one(c) for c in conversations)):
        into.direct_first.append(first)
        into.direct_final.append(final)
    into.direct_cpu = time.process_time() - cpu


def _settings(platform: str, info: dict[str, Any], tmp: Path) -> Settings:
    values: dict[str, Any] = {
        "OPENAI_API_KEY": "sk-bench-not-a-real-key",
        "OPENAI_BASE_URL": info["openai"],
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
        "LOG_LEVEL": "WARNING",
        "SWITCHBOARD_MAX_CONCURRENCY": 64,
    }
    if platform == "discord":
        values |= {
            "DISCORD_TOKEN": info["discord_token"],
            "DISCORD_API_URL": info["discord_api"],
            "DISCORD_GATEWAY_URL": info["discord_gateway"],
        }
    else:
        values |= {
            "SLACK_BOT_TOKEN": info["slack_bot_token"],
            "SLACK_APP_TOKEN": info["slack_app_token"],
            "SLACK_API_URL": info["slack_api"],
        }
    return load_settings(**values)


async def _seed(app: App, count: int) -> None:
    """`count` conversations the bot has had elsewhere (other channels, with server ids)."""
    now = time.time()
    rows = [
        ("discord", "1", str(10**17 + i), "", "responses", f"conv_seed{i}", now)
        for i in range(count)
    ]
    async with app.db.transaction() as tx:
        await tx.execute_many(
            "INSERT INTO conversations (platform, workspace, channel, thread, backend, "
            "backend_conversation_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


async def measure(plan: Plan, info: dict[str, Any], started_at: float) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    out: dict[str, Any] = {"platform": plan.platform, "loads": {}}
    with tempfile.TemporaryDirectory() as tmp:
        side = BotSide(plan, info, Path(tmp))
        out["running"] = time.time() - started_at  # interpreter up, modules imported
        out |= await side.start()
        out["ready"] = time.time() - started_at
        async with aiohttp.ClientSession() as session:
            control = Control(session, info)
            client = AsyncOpenAI(api_key="sk-bench", base_url=info["openai"], max_retries=0)
            try:
                await control(
                    "openai", latency=plan.latency, delta_delay=plan.delta_delay, words=plan.words
                )
                for load in plan.loads:
                    out["loads"][load] = await _load(side, control, client, load)
                out["rss_before"] = rss_mib()
                out["rss"] = await _rss(side, control, plan.rss_answers)
                out["stats"] = await control("stats")
            finally:
                await client.close()
                with contextlib.suppress(Exception):
                    await side.close()
    return out


async def _load(side: BotSide, control: Control, client: AsyncOpenAI, n: int) -> list[Round]:
    channels = side.channels(n)
    conversations = [(await client.conversations.create()).id for _ in channels]
    warm = Round()
    await direct_round(client, side.settings, conversations, warm)
    await side.bot_round(control, channels)  # creates the bot's conversations
    ended = time.monotonic()
    rounds = []
    for _ in range(side.plan.rounds):
        result = Round()
        await direct_round(client, side.settings, conversations, result)
        await asyncio.sleep(max(0.0, ended + COOLDOWN - time.monotonic()))
        bot = await side.bot_round(control, channels)
        ended = time.monotonic()
        bot.direct_first, bot.direct_final = result.direct_first, result.direct_final
        bot.direct_cpu = result.direct_cpu
        rounds.append(bot)
    await asyncio.sleep(max(0.0, ended + COOLDOWN - time.monotonic()))
    return rounds


async def _rss(side: BotSide, control: Control, answers: int) -> float:
    """RSS after `answers` more answers (short, unpaced, no write limit: memory, not time)."""
    if answers <= 0:
        return rss_mib()
    await control("openai", latency=0.0, delta_delay=0.0, words=40)
    await control("limits", discord=False)
    channels = side.channels(len(side.info[f"{side.plan.platform}_channels"]))
    done = 0
    while done < answers:
        batch = channels[: answers - done]
        await side.bot_round(control, batch)
        done += len(batch)
    await control("limits", discord=True)
    gc.collect()
    return rss_mib()


def run(plan: Plan, info: dict[str, Any], started_at: float, pipe: Any) -> None:
    """Child-process entry point (see `benchmarks.common.child_process`)."""
    profiler = cProfile.Profile() if plan.profile else None
    try:
        if profiler is not None:
            profiler.enable()
        result = asyncio.run(measure(plan, info, started_at))
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(Path(plan.profile) / f"{plan.platform}.prof"))
        pipe.send(result)
    except Exception as exc:  # reported by the parent
        pipe.send({"error": f"{type(exc).__name__}: {exc}"})
        raise
    with contextlib.suppress(EOFError, OSError):
        pipe.recv()
