"""Issue 19, item 12 (controls): `/cancel` at channel level stops only the caller's own answer;
`/steps` answers privately. Through discord.py against the Discord fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from testing.fakes.discord_payloads import MsgFlag
from testing.fakes.openai_fake import FakeOpenAI
from tests.test_discord_adapter import (  # noqa: F401 (fixtures)
    Bot,
    discord_seams,
    fake_discord,
    mention,
    running_bot,
    wait_followup,
)

LONG = " ".join(f"word{n}" for n in range(400))


@pytest.fixture
async def discord_bot(
    discord_seams: None,  # noqa: F811
    tmp_path: Path,
) -> AsyncIterator[tuple[Bot, FakeOpenAI]]:
    async with (
        FakeOpenAI() as openai_fake,
        fake_discord() as dc,
        running_bot(dc, openai_fake, tmp_path) as running,
    ):
        yield running, openai_fake
        assert dc.internal_errors == []


async def test_cancel_in_a_channel_stops_only_the_callers_answer(
    discord_bot: tuple[Bot, FakeOpenAI],
) -> None:
    bot, openai_fake = discord_bot
    dc = bot.dc
    cid = dc.text_channel["id"]
    openai_fake.answer = lambda turn: LONG
    openai_fake.delta_delay = 0.02
    incoming = await dc.send_message_create(cid, dc.member, mention(dc, "tell me a long story"))
    await dc.wait_for(
        lambda: any(m.get("content") for m in bot.bot_messages(cid)), 10, "first text"
    )
    # someone else's /cancel does not stop it
    other = await dc.send_interaction("cancel", user=dc.manager)
    said = (await wait_followup(dc, other))["content"]
    assert "for someone else" in said
    answer = await bot.answer_to(incoming)
    assert not answer["content"].endswith("(cancelled by @manager)")

    # /steps is private
    inter = await dc.send_interaction("steps", user=dc.member)
    followup = await wait_followup(dc, inter)
    assert followup["flags"] & MsgFlag.EPHEMERAL
    assert "I ran no code and called no tools" in followup["content"]
