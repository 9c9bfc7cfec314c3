"""`python -m bot` as an operator runs it: a real subprocess with Slack credentials (Socket Mode)
against the loopback fake Slack and fake OpenAI; a mention is answered in its thread; SIGTERM
ends it cleanly."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from testing.fakes import slack_payloads as payloads
from testing.fakes.openai_fake import FakeOpenAI
from testing.fakes.slack_fake import FakeSlack
from tests.test_cli import bot_env


async def test_python_m_bot_serves_slack_until_sigterm(tmp_path: Path) -> None:
    async with FakeOpenAI() as openai_fake, FakeSlack() as slack:
        env = bot_env(
            openai_fake,
            tmp_path,
            SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_APP_TOKEN=slack.app_token,
            SLACK_API_URL=slack.api_url,
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
        assert proc.stderr is not None
        try:
            ready = await asyncio.wait_for(proc.stderr.readline(), 20)
            while b"slack: connected" not in ready:
                ready = await asyncio.wait_for(proc.stderr.readline(), 20)
            await slack.wait_connected()
            event = payloads.app_mention(f"<@{slack.bot_user_id}> hello from a real process")
            await slack.send_event(event)
            thread_ts = event["ts"]
            for _ in range(200):
                replies = [
                    m
                    for m in slack.messages.get(event["channel"], [])
                    if m.get("thread_ts") == thread_ts and m.get("bot_id")
                ]
                streamed = [s.text for s in slack.streams.values() if s.thread_ts == thread_ts]
                if any("echo: hello from a real process" in t for t in streamed) or any(
                    "echo: hello from a real process" in (m.get("text") or "") for m in replies
                ):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("no answer in the thread")
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert slack.bot_token not in err.decode() and slack.app_token not in err.decode()
