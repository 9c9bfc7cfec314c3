"""A channel that has talked for a year still answers its next message (issue 14): 200 turns of
~800-character messages in one Slack thread and in one Discord channel, on both backends, with
a small context window on the OpenAI fake (which answers 400 `context_length_exceeded` to any
request over it). Every turn is answered; no length error is ever shown. Through the real
slack-bolt / discord.py / openai clients."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from testing.fakes import slack_payloads as P
from testing.fakes.openai_fake import FakeOpenAI, FakeTurn
from tests.test_discord_adapter import discord_seams, fake_discord, mention, running_bot
from tests.test_slack_adapter import start_env, stop_env, until

__all__ = ["discord_seams"]  # the fixture restoring discord.py's endpoints

TURNS = 200
WINDOW = 4_000  # tokens: about 16 messages of 800 characters
BODY = "y" * 790


def words(n: int) -> str:
    return f"t{n:03d} {BODY}"


def tiny(turn: FakeTurn) -> str:
    """A short answer naming the turn it answers (the summariser's answer is short too)."""
    return f"ok {turn.user_text[:4]}"


@contextlib.asynccontextmanager
async def small_openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as openai:
        openai.context_window = WINDOW
        openai.answer = tiny
        yield openai
    assert openai.spec_problems == []


def window_env(backend: str) -> dict[str, object]:
    return {
        "SWITCHBOARD_BACKEND": backend,
        "SWITCHBOARD_CONTEXT_WINDOWS": f"gpt-6.1-terra={WINDOW}",
    }


@pytest.mark.parametrize("backend", ["responses", "chat"])
async def test_two_hundred_turns_in_one_slack_thread(tmp_path: Path, backend: str) -> None:
    env = await start_env(tmp_path, **window_env(backend))
    env.openai.context_window = WINDOW
    env.openai.answer = tiny
    try:
        first = P.app_mention(words(0))
        await env.slack.send_event(first)
        await env.settle(1)
        for n in range(1, TURNS):
            await env.slack.send_event(P.thread_reply(words(n), thread_ts=first["ts"]))
            await env.settle(n + 1)
        texts = env.bot_texts(P.CHANNEL_ID, first["ts"])
        runs = await env.app.db.fetch_all("SELECT status FROM runs")
        steps = await env.app.db.fetch_all("SELECT kind FROM run_steps")
    finally:
        await stop_env(env)
    assert texts == [f"ok t{n:03d}" for n in range(TURNS)]
    assert {row["status"] for row in runs} == {"completed"} and len(runs) == TURNS
    assert env.openai.context_errors == 0
    assert "compaction" in {row["kind"] for row in steps}
    # the model saw the conversation's end, within the window, every time
    answered = [t for t in env.openai.turns if t.user_text.startswith("t")]
    assert all(t.input_tokens <= WINDOW for t in answered)


@pytest.mark.parametrize("backend", ["responses", "chat"])
async def test_two_hundred_turns_in_one_discord_channel(
    discord_seams: None, tmp_path: Path, backend: str
) -> None:
    async with (
        small_openai() as openai,
        fake_discord() as dc,
        running_bot(dc, openai, tmp_path, edit_interval=0.05, **window_env(backend)) as bot,
    ):
        cid = dc.text_channel["id"]
        for n in range(TURNS):
            incoming = await dc.send_message_create(cid, dc.member, mention(dc, words(n)))
            await until(
                lambda incoming=incoming: any(
                    (m.get("message_reference") or {}).get("message_id") == incoming["id"]
                    for m in bot.bot_messages(cid)
                ),
                10,
            )
            await bot.app.dispatcher.wait_idle()
        runs = await bot.app.db.fetch_all("SELECT status FROM runs")
        texts = [m["content"] for m in bot.bot_messages(cid)]
    assert texts == [f"ok t{n:03d}" for n in range(TURNS)]
    assert {row["status"] for row in runs} == {"completed"} and len(runs) == TURNS
    assert openai.context_errors == 0
    assert all(t.input_tokens <= WINDOW for t in openai.turns)
