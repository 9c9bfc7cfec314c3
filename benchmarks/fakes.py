"""The loopback fakes of the streaming benchmark in processes of their own (the fake OpenAI in
one, the fake Discord and Slack in another), so their CPU is never charged to the bot and
neither delays the other; each is steered over a small HTTP control API.

The control API (JSON over POST, on 127.0.0.1):

- `/ask` `{"platform", "asks": [{"channel", "thread"}]}`: the channel's user (one per
  channel) mentions the bot in each channel (in `thread`, a Slack thread ts, when given); answers when each was sent.
- `/writes` `{"platform", "since"}`: the bot's visible writes since `since` (the time each
  post/edit/stream call arrived at the fake, the characters it shows, whether it completes the
  answer), in the clock of `/ask`.
- `/openai` `{"latency", "delta_delay", "words"}`: the model's pacing and answer length (sent
  to both: the platforms need the answer to tell the final text).
- `/limits` `{"discord": bool}`: Discord's per-channel message-write bucket on or off.
- `/stats`: 429s each platform answered.
- `/requests` `{"since", "clock"}` (the fake OpenAI): when each generation request (a response
  or a chat completion) arrived since `since`, in the `clock` ("wall" or "monotonic").
- `/calls` `{"platform"}`: every API call the fake has answered so far, counted by method
  (Slack: the Web API method; Discord: verb and route; "openai": verb and path with ids
  replaced): the bot diffs two readings.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections import Counter
from typing import Any

from aiohttp import web

from testing.fakes import slack_payloads as SP
from testing.fakes.discord_fake import FakeDiscord
from testing.fakes.openai_fake import FakeOpenAI
from testing.fakes.slack_fake import FakeSlack

SLACK_BOT_TOKEN = "xoxb-" + "1111111111-2222222222-BenchBotToken"
SLACK_APP_TOKEN = "xapp-1-A1-3333333333-BenchAppToken"
_VOCABULARY = [
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "it",
    "for",
    "on",
    "we",
    "can",
    "see",
    "how",
    "this",
    "that",
    "run",
    "why",
    "you",
]
_ID = re.compile(r"/[a-z]+_[A-Za-z0-9]+")  # /conv_ab12, /resp_cd34: an object's id
DISCORD_MESSAGE_LIMIT = (5, 5.0)  # Discord's shared per-channel message-write bucket
_DISCORD_WRITES = (
    "/channels/{channel_id}/messages",
    "/channels/{channel_id}/messages/{message_id}",
)
_SLACK_WRITES = (
    "chat.postMessage",
    "chat.update",
    "chat.startStream",
    "chat.appendStream",
    "chat.stopStream",
)


def answer_text(words: int) -> str:
    """`words` short words (~4 characters with the space): one Discord message for 400."""
    return " ".join(_VOCABULARY[i % len(_VOCABULARY)] for i in range(words)) + "."


def discord_token(application_id: str) -> str:
    head = base64.b64encode(application_id.encode()).decode().rstrip("=")
    return f"{head}.GabcDe.bench-not-a-secret-0123456789abcdefghij"


class TimedDiscord(FakeDiscord):
    """Also records when each REST request arrived (`Call.at` is when it was answered)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrived: dict[int, float] = {}  # id(Call) -> arrival time

    async def _api(self, request: web.Request) -> web.StreamResponse:
        arrived = time.time()
        response = await super()._api(request)
        # the Call is appended just before `_api` returns, with no await in between
        self.arrived[id(self.calls[-1])] = arrived
        return response


class TimedOpenAI(FakeOpenAI):
    """Also records when each generation request arrived, in both clocks."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrivals: list[tuple[float, float]] = []  # (wall, monotonic)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method == "POST" and request.path in _GENERATIONS:
            self.arrivals.append((time.time(), time.monotonic()))
        return await super()._middleware(request, handler)


_GENERATIONS = ("/v1/responses", "/v1/chat/completions")


class World:
    """The fake model (role "openai") or the fake platforms (role "platforms"): two processes,
    so that neither's event loop delays the other's answers."""

    def __init__(self, role: str, channels: int) -> None:
        self.role = role
        self.answer = answer_text(400)
        self.openai = TimedOpenAI(spec_check=False) if role == "openai" else None
        if self.openai is not None:
            self.openai.paced = True
            self.openai.answer = lambda turn: self.answer
        self.discord = TimedDiscord(message_content=True, spec_path=None)
        self.discord.enable_message_rate_limit(*DISCORD_MESSAGE_LIMIT)
        self.slack = FakeSlack(bot_token=SLACK_BOT_TOKEN, app_token=SLACK_APP_TOKEN)
        self.slack.enable_rate_limits()
        self.discord_channels = [
            self.discord.add_channel(f"bench-{i}")["id"] for i in range(channels)
        ]
        self.slack_channels = [f"CBENCH{i:04d}" for i in range(channels)]
        # One user per channel: N questions at once are N people's (each within their share
        # of the queue, SWITCHBOARD_MAX_QUEUED_PER_USER), as in a busy workspace.
        self.discord_askers = {
            channel: self.discord.add_member(username=f"user{i}")
            for i, channel in enumerate(self.discord_channels)
        }
        self.slack_askers = {
            channel: self.slack.add_user(f"UBENCH{i:04d}", f"user{i}")["id"]
            for i, channel in enumerate(self.slack_channels)
        }

    async def start(self) -> None:
        if self.openai is not None:
            await self.openai.start()
            return
        await self.discord.start()
        self.discord.token = discord_token(self.discord.application_id)
        await self.slack.start()

    async def close(self) -> None:
        if self.openai is not None:
            await self.openai.close()
            return
        await self.slack.stop()
        await self.discord.close()

    def info(self) -> dict[str, Any]:
        if self.openai is not None:
            return {"openai": self.openai.base_url}
        return {
            "discord_api": self.discord.api_url,
            "discord_gateway": self.discord.gateway_url,
            "discord_token": self.discord.token,
            "discord_guild": self.discord.text_channel["guild_id"],
            "discord_channels": self.discord_channels,
            "slack_api": self.slack.api_url,
            "slack_bot_token": SLACK_BOT_TOKEN,
            "slack_app_token": SLACK_APP_TOKEN,
            "slack_channels": self.slack_channels,
        }

    # -- control --------------------------------------------------------------------------------

    async def ask(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        if body["platform"] == "discord":
            return await asyncio.gather(*(self._ask_discord(a["channel"]) for a in body["asks"]))
        return await asyncio.gather(
            *(self._ask_slack(a["channel"], a.get("thread")) for a in body["asks"])
        )

    async def _ask_discord(self, channel: str) -> dict[str, Any]:
        dc = self.discord
        text = f"<@{dc.application_id}> tell me about streaming"
        sent_at = time.time()
        await dc.send_message_create(channel, self.discord_askers[channel], text)
        return {"channel": channel, "sent_at": sent_at}

    async def _ask_slack(self, channel: str, thread: str | None) -> dict[str, Any]:
        event = SP.app_mention(
            "tell me about streaming",
            channel=channel,
            thread_ts=thread,
            user=self.slack_askers[channel],
        )
        sent_at = time.monotonic()
        await self.slack.send_event(event)
        return {"channel": channel, "thread": thread or event["ts"], "sent_at": sent_at}

    def writes(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        since = float(body["since"])
        if body["platform"] == "discord":
            return self._discord_writes(since)
        return self._slack_writes(since)

    def _discord_writes(self, since: float) -> list[dict[str, Any]]:
        out = []
        for call in self.discord.calls:
            if call.at < since or call.route not in _DISCORD_WRITES:
                continue
            if call.method not in ("POST", "PATCH") or call.status >= 300:
                continue
            content = (call.json or {}).get("content") or ""
            channel = call.path.split("/")[2]
            out.append(
                {
                    "at": self.discord.arrived.get(id(call), call.at),
                    "channel": channel,
                    "chars": len(content),
                    "final": content == self.answer,
                }
            )
        return out

    def _slack_writes(self, since: float) -> list[dict[str, Any]]:
        out = []
        shown: dict[str, int] = {}  # stream ts -> characters shown
        for call in self.slack.calls:
            if call.method not in _SLACK_WRITES or not call.ok:
                continue
            args, response = call.args, call.response or {}
            if call.method in ("chat.postMessage", "chat.update"):
                text = str(args.get("markdown_text") or args.get("text") or "")
            else:
                text = "".join(FakeSlack._markdown_pieces(args)[0])
            ts = str(args.get("ts") or response.get("ts") or "")
            if call.method in ("chat.appendStream", "chat.stopStream"):
                chars = shown.get(ts, 0) + len(text)
            else:
                chars = len(text)
            shown[ts] = chars
            final = chars >= len(self.answer) and call.method != "chat.appendStream"
            if call.at >= since:
                channel = str(args.get("channel"))
                out.append({"at": call.at, "channel": channel, "chars": chars, "final": final})
        return out

    def set_openai(self, body: dict[str, Any]) -> None:
        self.answer = answer_text(int(body["words"]))
        if self.openai is not None:
            self.openai.latency = float(body["latency"])
            self.openai.delta_delay = float(body["delta_delay"])

    def set_limits(self, body: dict[str, Any]) -> None:
        if body["discord"]:
            self.discord.enable_message_rate_limit(*DISCORD_MESSAGE_LIMIT)
        else:
            self.discord.disable_message_rate_limit()

    def calls(self, body: dict[str, Any]) -> dict[str, int]:
        platform = body["platform"]
        if platform == "openai":
            assert self.openai is not None
            return dict(
                Counter(f"{r.method} {_ID.sub('/{id}', r.path)}" for r in self.openai.requests)
            )
        if platform == "discord":
            return dict(Counter(f"{c.method} {c.route}" for c in self.discord.calls))
        return dict(Counter(c.method for c in self.slack.calls))

    def requests(self, body: dict[str, Any]) -> list[float]:
        assert isinstance(self.openai, TimedOpenAI)
        column = 0 if body["clock"] == "wall" else 1
        return [a[column] for a in self.openai.arrivals if a[column] >= body["since"]]

    def stats(self) -> dict[str, Any]:
        return {
            "discord_429": self.discord.rate_limited_count,
            "slack_429": self.slack.rate_limited_count,
            "internal_errors": [
                *self.discord.internal_errors,
                *map(str, self.slack.internal_errors),
            ],
        }


def _control_app(world: World) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        name = request.match_info["name"]
        if name == "ask":
            result: Any = await world.ask(body)
        elif name == "writes":
            result = world.writes(body)
        elif name == "openai":
            result = world.set_openai(body)
        elif name == "limits":
            result = world.set_limits(body)
        elif name == "stats":
            result = world.stats()
        elif name == "calls":
            result = world.calls(body)
        elif name == "requests":
            result = world.requests(body)
        else:
            raise web.HTTPNotFound()
        return web.json_response(result)

    app = web.Application()
    app.router.add_post("/{name}", handle)
    return app


def serve(role: str, channels: int, pipe: Any) -> None:
    """Child-process entry point (see `benchmarks.common.child_process`)."""

    async def main() -> None:
        world = World(role, channels)
        await world.start()
        runner = web.AppRunner(_control_app(world), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        pipe.send({**world.info(), f"control_{role}": f"http://127.0.0.1:{port}"})
        try:
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        finally:
            await runner.cleanup()
            await world.close()

    asyncio.run(main())
