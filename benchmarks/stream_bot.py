"""The bot's side of the streaming and burst benchmarks: one process running the real app and
one platform adapter against the fakes (`benchmarks.fakes`), plus the direct-SDK baseline.

The direct baseline runs in this same process, between the bot's rounds (never at the same
time), so its CPU figure is the SDK-alone cost of the same calls in a comparable process. It
makes the OpenAI calls the bot makes for the same message: on the responses backend a streamed
response in the channel's conversation (and, for a new thread, the conversation's creation
first); on the chat backend a streamed chat completion with the conversation's history.

Per round the bot's side also counts its database round trips (`benchmarks.counting`), the API
calls each fake answered (their `/calls`), and, in one extra round at the largest load whose
timings are discarded, where its CPU went (`benchmarks.profile_summary`).
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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from openai import AsyncOpenAI

from benchmarks import counting
from benchmarks.common import rss_mib
from benchmarks.profile_summary import summarise
from bot.app import App
from bot.core.config import Settings, load_settings
from bot.core.types import Event
from bot.ops.heap import freeze_startup_objects

COOLDOWN = 5.5  # seconds between a channel's rounds: its write budget (5 per 5 s) refills
QUESTION = "tell me about streaming"


class GcTime:
    """Seconds the garbage collector ran, per generation (`gc.callbacks`)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.runs = [0, 0, 0]
        self._began = 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.thread_time()
        else:
            self.seconds[info["generation"]] += time.thread_time() - self._began
            self.runs[info["generation"]] += 1

    def reading(self) -> tuple[list[float], list[int]]:
        return list(self.seconds), list(self.runs)


GC = GcTime()


@dataclass
class Plan:
    platform: str  # "discord" | "slack"
    loads: list[int]
    rounds: int
    backend: str = "responses"  # SWITCHBOARD_BACKEND: "responses" | "chat"
    latency: float = 0.3
    delta_delay: float = 0.01
    words: int = 400
    rss_answers: int = 500
    seed_conversations: int = 0
    new_threads: bool = False  # Slack: every question starts a new thread (a new conversation)
    cooldown: float = COOLDOWN
    profile: bool = True  # one extra, profiled round at the largest load
    profile_dir: str = ""  # a directory: the raw cProfile of that round written there
    database_url: str = ""  # DATABASE_URL for the bot ("": a fresh SQLite file)


@dataclass
class Round:
    """One round at one load: per answer seconds since the question, CPU seconds, and what the
    bot's answers cost in database trips and API calls."""

    direct_first: list[float] = field(default_factory=list)
    direct_final: list[float] = field(default_factory=list)
    direct_cpu: float = 0.0
    direct_openai: int = 0  # OpenAI requests the direct baseline made
    direct_request: list[float] = field(default_factory=list)  # its model request left
    first: list[float] = field(default_factory=list)
    final: list[float] = field(default_factory=list)
    request: list[float] = field(default_factory=list)  # the bot's model requests arrived
    writes: list[int] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    cpu: float = 0.0
    missing: int = 0
    errors_429: int = 0
    db_trips: dict[str, int] = field(default_factory=dict)
    db_statements: dict[str, int] = field(default_factory=dict)
    engine_trips: int = 0  # trips the SQLite engine made to its threads
    gc_seconds: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    gc_runs: list[int] = field(default_factory=lambda: [0, 0, 0])
    api_calls: dict[str, int] = field(default_factory=dict)
    openai_calls: dict[str, int] = field(default_factory=dict)

    @property
    def answers(self) -> int:
        return len(self.final) + self.missing


class Control:
    """The fakes' control APIs (`benchmarks.fakes`): `openai` goes to both processes."""

    def __init__(self, session: aiohttp.ClientSession, info: dict[str, Any]) -> None:
        self._session = session
        self._platforms = info["control_platforms"]
        self._openai = info["control_openai"]

    async def __call__(self, name: str, **body: Any) -> Any:
        if name == "requests" or (name == "calls" and body["platform"] == "openai"):
            return await self._post(self._openai, name, body)
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
        self.settings = _settings(plan, info, tmp)
        self.submitted = 0
        self._arrived = asyncio.Event()
        self._want = 0
        self.app: App | None = None
        self.adapter: Any = None
        self.threads: dict[str, str] = {}
        self.db: counting.CountingDatabase | None = None
        self.seeded_in = 0.0

    async def settle(self) -> None:
        """After `start`, what `python -m bot` does next (`bot.cli`): the inbox taken up, the
        start-up's objects frozen out of the collector's way."""
        assert self.app is not None
        await self.app.recover()
        freeze_startup_objects()

    async def start(self) -> dict[str, Any]:
        opened = counting.install()
        self.app = app = await App.create(self.settings)
        self.db = opened[-1]
        seeding = time.monotonic()
        if self.plan.seed_conversations:
            await _seed(app, self.plan.seed_conversations, self.plan.backend)
        self.seeded_in = time.monotonic() - seeding  # the benchmark's own work, not start-up
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

    def thread_of(self, channel: str) -> str | None:
        """Where the next question in `channel` goes: None for a new thread (Slack)."""
        return None if self.plan.new_threads else self.threads.get(channel)

    async def bot_round(
        self, control: Control, channels: list[str], profiler: cProfile.Profile | None = None
    ) -> Round:
        assert self.app is not None and self.db is not None
        platform = self.plan.platform
        result = Round()
        self._want = self.submitted + len(channels)
        self._arrived.clear()
        asks = [{"channel": c, "thread": self.thread_of(c)} for c in channels]
        before = (await control("stats"))[f"{platform}_429"]
        api_before = await control("calls", platform=platform)
        openai_before = await control("calls", platform="openai")
        trips_before, statements_before = Counter(self.db.trips), Counter(self.db.statements)
        engine_before = counting.EngineTrips.count
        gc_seconds, gc_runs = GC.reading()
        if profiler is not None:
            profiler.enable()
        cpu = time.process_time()
        sent = await control("ask", platform=platform, asks=asks)
        await self._arrived.wait()
        await self.app.dispatcher.wait_idle()
        result.cpu = time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
        result.db_trips = dict(Counter(self.db.trips) - trips_before)
        result.engine_trips = counting.EngineTrips.count - engine_before
        seconds, runs = GC.reading()
        result.gc_seconds = [b - a for a, b in zip(gc_seconds, seconds, strict=True)]
        result.gc_runs = [b - a for a, b in zip(gc_runs, runs, strict=True)]
        result.db_statements = dict(Counter(self.db.statements) - statements_before)
        result.api_calls = _diff(await control("calls", platform=platform), api_before)
        result.openai_calls = _diff(await control("calls", platform="openai"), openai_before)
        result.errors_429 = (await control("stats"))[f"{platform}_429"] - before
        for ask in sent:
            if platform == "slack":
                self.threads.setdefault(ask["channel"], ask["thread"])
        since = min(a["sent_at"] for a in sent)
        clock = "monotonic" if platform == "slack" else "wall"
        arrivals = await control("requests", since=since, clock=clock)
        # the k-th question sent and the k-th model request (the first of each answer)
        asked = sorted(a["sent_at"] for a in sent)
        result.request = [
            at - q for q, at in zip(asked, sorted(arrivals)[: len(asked)], strict=False)
        ]
        writes = await control("writes", platform=platform, since=since)
        for ask in sent:
            _timeline(ask, writes, result)
        return result


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}


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


class Direct:
    """The direct SDK baseline: the OpenAI calls the bot makes for the same questions."""

    def __init__(self, client: AsyncOpenAI, settings: Settings, plan: Plan) -> None:
        self._client = client
        self._settings = settings
        self._plan = plan
        self._conversations: dict[str, str] = {}  # channel -> server conversation (responses)
        self._history: dict[str, list[dict[str, str]]] = {}  # channel -> messages (chat)

    async def prepare(self, channels: list[str]) -> None:
        """Existing conversations, as the bot has after its warm-up round (not for new threads:
        there each question creates its own)."""
        if self._plan.backend == "responses" and not self._plan.new_threads:
            for channel in channels:
                if channel not in self._conversations:
                    self._conversations[channel] = (await self._client.conversations.create()).id

    async def round(self, channels: list[str], into: Round) -> None:
        cpu = time.process_time()
        for first, final, request in await asyncio.gather(*(self._one(c) for c in channels)):
            into.direct_first.append(first)
            into.direct_final.append(final)
            into.direct_request.append(request)
            into.direct_openai += (
                2 if self._plan.new_threads and self._plan.backend != "chat" else 1
            )
        into.direct_cpu = time.process_time() - cpu

    async def _one(self, channel: str) -> tuple[float, float, float]:
        """Seconds to the first text delta, to the end of the stream, and to the model request
        being sent."""
        start = time.perf_counter()
        if self._plan.backend == "chat":
            first, request = await self._chat(channel, start)
        else:
            first, request = await self._responses(channel, start)
        return first, time.perf_counter() - start, request

    async def _responses(self, channel: str, start: float) -> tuple[float, float]:
        if self._plan.new_threads:
            conversation = (await self._client.conversations.create()).id
        else:
            conversation = self._conversations[channel]
        first = 0.0
        request = time.perf_counter() - start
        stream = await self._client.responses.create(
            model=self._settings.chat_model,
            instructions=self._settings.instructions,
            input=[{"role": "user", "content": [{"type": "input_text", "text": QUESTION}]}],
            conversation=conversation,
            stream=True,
            store=True,
        )
        async with stream:
            async for event in stream:
                if not first and event.type == "response.output_text.delta":
                    first = time.perf_counter() - start
        return first, request

    async def _chat(self, channel: str, start: float) -> tuple[float, float]:
        history = [] if self._plan.new_threads else self._history.setdefault(channel, [])
        messages = [
            {"role": "system", "content": self._settings.instructions},
            *history,
            {"role": "user", "content": QUESTION},
        ]
        first = 0.0
        parts: list[str] = []
        request = time.perf_counter() - start
        stream = await self._client.chat.completions.create(
            model=self._settings.chat_model,
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    if not first:
                        first = time.perf_counter() - start
                    parts.append(chunk.choices[0].delta.content)
        history += [
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": "".join(parts)},
        ]
        return first, request


def _settings(plan: Plan, info: dict[str, Any], tmp: Path) -> Settings:
    values: dict[str, Any] = {
        "OPENAI_API_KEY": "sk-bench-not-a-real-key",
        "OPENAI_BASE_URL": info["openai"],
        "DATABASE_URL": plan.database_url or f"sqlite:///{tmp / 'bench.db'}",
        "LOG_LEVEL": "WARNING",
        "SWITCHBOARD_MAX_CONCURRENCY": 64,
        "SWITCHBOARD_BACKEND": plan.backend,
    }
    if plan.platform == "discord":
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


async def _seed(app: App, count: int, backend: str) -> None:
    """`count` conversations the bot has had elsewhere (other channels, with server ids)."""
    now = time.time()
    rows = [
        (
            "discord",
            "1",
            str(10**17 + i),
            "",
            backend,
            f"conv_seed{i}" if backend == "responses" else None,
            now,
        )
        for i in range(count)
    ]
    async with app.db.transaction() as tx:
        await tx.execute_many(
            "INSERT INTO conversations (platform, workspace, channel, thread, backend, "
            "backend_conversation_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            rows,
        )


async def measure(plan: Plan, info: dict[str, Any], started_at: float) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    out: dict[str, Any] = {"platform": plan.platform, "backend": plan.backend, "loads": {}}
    with tempfile.TemporaryDirectory() as tmp:
        side = BotSide(plan, info, Path(tmp))
        out["running"] = time.time() - started_at  # interpreter up, modules imported
        out |= await side.start()
        out["ready"] = time.time() - started_at - side.seeded_in
        await side.settle()
        async with aiohttp.ClientSession() as session:
            control = Control(session, info)
            client = AsyncOpenAI(api_key="sk-bench", base_url=info["openai"], max_retries=0)
            direct = Direct(client, side.settings, plan)
            try:
                await control(
                    "openai", latency=plan.latency, delta_delay=plan.delta_delay, words=plan.words
                )
                for load in plan.loads:
                    out["loads"][load] = await _load(side, control, direct, load)
                if plan.profile and plan.loads:
                    out["profile"] = await _profile(side, control, max(plan.loads))
                out["rss_before"] = rss_mib()
                out["rss"] = await _rss(side, control, plan.rss_answers)
                out["stats"] = await control("stats")
            finally:
                await client.close()
                with contextlib.suppress(Exception):
                    await side.close()
    return out


async def _load(side: BotSide, control: Control, direct: Direct, n: int) -> list[Round]:
    channels = side.channels(n)
    await direct.prepare(channels)
    await direct.round(channels, Round())  # warm-up
    await side.bot_round(control, channels)  # warm-up: creates the bot's conversations
    ended = time.monotonic()
    rounds = []
    for _ in range(side.plan.rounds):
        result = Round()
        await direct.round(channels, result)
        await asyncio.sleep(max(0.0, ended + side.plan.cooldown - time.monotonic()))
        bot = await side.bot_round(control, channels)
        ended = time.monotonic()
        bot.direct_first, bot.direct_final = result.direct_first, result.direct_final
        bot.direct_cpu, bot.direct_openai = result.direct_cpu, result.direct_openai
        bot.direct_request = result.direct_request
        rounds.append(bot)
    await asyncio.sleep(max(0.0, ended + side.plan.cooldown - time.monotonic()))
    return rounds


async def _profile(side: BotSide, control: Control, n: int) -> list[str]:
    """One more round at load `n` under cProfile (CPU time of the event loop's thread); its
    timings are not reported."""
    profiler = cProfile.Profile(time.thread_time)
    bot = await side.bot_round(control, side.channels(n), profiler)
    await asyncio.sleep(side.plan.cooldown)
    if side.plan.profile_dir:
        name = f"{side.plan.platform}-{side.plan.backend}-x{n}.prof"
        profiler.dump_stats(str(Path(side.plan.profile_dir) / name))
    return [f"profile, one round of {n} at once:", *summarise(profiler, bot.answers)]


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
    try:
        result = asyncio.run(measure(plan, info, started_at))
        pipe.send(result)
    except Exception as exc:  # reported by the parent
        pipe.send({"error": f"{type(exc).__name__}: {exc}"})
        raise
    with contextlib.suppress(EOFError, OSError):
        pipe.recv()
