"""Operations through the real clients and the real process: `/status` is admin-only and private
on Slack and Discord; `python -m bot` with SWITCHBOARD_HTTP_PORT serves /healthz, /readyz (503
while Slack's socket is down, 200 again after) and /metrics, and logs JSON lines without secrets
with LOG_FORMAT=json."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from testing.fakes import slack_payloads as P
from testing.fakes.discord_payloads import MsgFlag
from testing.fakes.openai_fake import FakeOpenAI
from testing.fakes.slack_fake import FakeSlack
from testing.waiting import until as wait_until
from tests.test_cli import bot_env
from tests.test_discord_adapter import (  # noqa: F401 (fixtures)
    discord_seams,
    fake_discord,
    openai_fake,
    running_bot,
    wait_followup,
)
from tests.test_slack_adapter import Env, slack_running, until


@pytest.fixture
async def slack_env(tmp_path: Path) -> AsyncIterator[Env]:
    async with slack_running(tmp_path) as environment:
        yield environment


async def test_status_on_slack_is_private_and_for_admins(slack_env: Env) -> None:
    env = slack_env
    await env.slack.send_slash_command("/status", "", user_id=P.USER_ID)
    await until(lambda: len(env.slack.ephemeral) >= 1)
    assert "for admins" in env.slack.ephemeral[-1]["text"]
    await env.slack.send_slash_command("/status", "", user_id="UADMIN")
    await until(lambda: len(env.slack.ephemeral) >= 2)
    status = env.slack.ephemeral[-1]
    assert status["user"] == "UADMIN" and "Switchboard" in status["text"]
    assert "Platforms: Slack connected" in status["text"]


async def test_status_on_discord_is_an_ephemeral_followup_for_admins(
    discord_seams: None,  # noqa: F811
    openai_fake: FakeOpenAI,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with fake_discord() as dc, running_bot(dc, openai_fake, tmp_path):
        refused = await dc.send_interaction("status", {}, user=dc.member)
        assert "for admins" in (await wait_followup(dc, refused))["content"]
        shown = await wait_followup(dc, await dc.send_interaction("status", {}, user=dc.admin))
        assert "Discord connected" in shown["content"]
        assert shown["flags"] & MsgFlag.EPHEMERAL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    try:
        async with session.get(url) as response:
            return response.status, await response.text()
    except aiohttp.ClientConnectionError:
        return 0, ""


async def test_the_process_serves_health_readiness_and_metrics_and_logs_json(
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with FakeOpenAI() as openai_server, FakeSlack() as slack:
        env = bot_env(
            openai_server,
            tmp_path,
            SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_APP_TOKEN=slack.app_token,
            SLACK_API_URL=slack.api_url,
            SWITCHBOARD_HTTP_PORT=str(port),
            LOG_FORMAT="json",
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        try:
            async with aiohttp.ClientSession() as session:
                await slack.wait_connected(timeout=20)
                ready: list[tuple[int, str]] = []

                async def readiness_is(status: int) -> bool:
                    ready.append(await get(session, f"{base}/readyz"))
                    return ready[-1][0] == status

                await poll(lambda: readiness_is(200), what=str(ready[-3:]))
                assert (await get(session, f"{base}/healthz"))[0] == 200

                event = P.app_mention(f"<@{slack.bot_user_id}> count me")
                await slack.send_event(event)
                await wait_until(lambda: slack.streams or slack.messages.get(event["channel"]), 20)

                # Slack's socket goes away and new ones are refused for a while: not ready.
                slack.fail_next("apps.connections.open", "internal_error", times=10_000)
                await slack.disconnect_socket(send_message=False)
                await poll(lambda: readiness_is(503), what=str(ready[-3:]))
                assert "Slack reconnecting" in json.loads(ready[-1][1])["reason"]
                assert (await get(session, f"{base}/healthz"))[0] == 200
                slack.clear_faults()
                await poll(lambda: readiness_is(200), what=str(ready[-3:]))

                async def answered() -> bool:
                    _, text = await get(session, f"{base}/metrics")
                    samples = {
                        (s.name, tuple(sorted(s.labels.items()))): s.value
                        for family in text_string_to_metric_families(text)
                        for s in family.samples
                    }
                    return samples.get(("switchboard_runs_total", (("status", "completed"),))) == 1

                await poll(answered, what="one completed run in /metrics")
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    lines = err.decode().splitlines()
    assert lines, "no log lines"
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    assert any("OpenAI endpoint 127.0.0.1" in e["message"] for e in entries)
    for secret in (slack.bot_token, slack.app_token, env["OPENAI_API_KEY"]):
        assert secret not in err.decode()


async def poll(check, attempts: int = 400, what: str = "") -> None:  # type: ignore[no-untyped-def]
    """Call the async `check` until it is true (a guard against hanging, not a measurement)."""
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the condition never held: {what}")
