"""Wire layer of delivery faults on Discord: the real discord.py client against FakeDiscord, with
the real core behind it. discord.py retries 429s itself; what it cannot deliver fails the run
with Discord's reason and a log line, and the bot keeps serving."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from testing.fakes import discord_payloads as P
from testing.fakes.openai_fake import FakeOpenAI
from tests.test_discord_adapter import (  # noqa: F401  (fixtures used by name)
    Bot,
    discord_seams,
    fake_discord,
    mention,
    running_bot,
)


@pytest.fixture
async def openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake
    assert fake.spec_problems == []


@pytest.fixture
async def bot(discord_seams: None, openai: FakeOpenAI, tmp_path: Path) -> AsyncIterator[Bot]:  # noqa: F811
    async with fake_discord() as dc, running_bot(dc, openai, tmp_path) as running:
        yield running
        assert dc.internal_errors == []


async def runs_of(bot: Bot) -> list[dict]:
    return [dict(row) for row in await bot.app.db.fetch_all("SELECT * FROM runs ORDER BY id")]


async def test_a_rate_limited_post_is_retried_by_discord_py_and_delivered(bot: Bot) -> None:
    dc = bot.dc
    cid = dc.text_channel["id"]
    dc.rate_limit_next("POST", "/channels/{channel_id}/messages", times=2, retry_after=0.05)
    incoming = await dc.send_message_create(cid, dc.member, mention(dc, "hello"))
    answer = await bot.answer_to(incoming)
    assert answer["content"] == "echo: hello"
    assert dc.rate_limited_count == 2
    assert [m["content"] for m in bot.bot_messages(cid)] == ["echo: hello"]
    (run,) = await runs_of(bot)
    assert run["status"] == "completed"


async def test_a_post_discord_refuses_fails_the_run_with_the_reason_and_a_log_line(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    dc = bot.dc
    bot_user = dc.application_id
    locked = dc.add_channel(
        "read-only",
        overwrites=[P.overwrite(bot_user, type=1, deny=P.Perm.SEND_MESSAGES)],
    )
    incoming = await dc.send_message_create(locked["id"], dc.member, mention(dc, "hello"))
    await dc.wait_for(lambda: bot.events, 10, "the message reaching the core")
    await bot.idle()
    assert bot.bot_messages(locked["id"]) == []
    (run,) = await runs_of(bot)
    assert run["status"] == "failed"
    assert run["error"] == "delivery failed (answer): Forbidden 403 50013"
    event_id = bot.events[0].event_id
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(event_id in line and "50013" in line for line in errors), errors

    cid = dc.text_channel["id"]
    again = await dc.send_message_create(cid, dc.member, mention(dc, "still there?"))
    assert (await bot.answer_to(again))["content"] == "echo: still there?"
    assert incoming["id"] != again["id"]
