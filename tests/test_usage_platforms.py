"""`/usage` through the real platform clients: Slack (bolt, Socket Mode) and Discord (discord.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from testing.fakes import slack_payloads as P
from testing.fakes.discord_payloads import MsgFlag
from testing.fakes.openai_fake import FakeOpenAI
from tests.test_discord_adapter import (  # noqa: F401 (fixtures)
    discord_seams,
    fake_discord,
    mention,
    openai_fake,
    running_bot,
    wait_followup,
)
from tests.test_slack_adapter import Env, slack_running, until


@pytest.fixture
async def slack_env(tmp_path: Path) -> AsyncIterator[Env]:
    async with slack_running(tmp_path) as environment:
        yield environment


async def test_usage_on_slack_is_private_for_me_and_admin_only_for_the_channel(
    slack_env: Env,
) -> None:
    env = slack_env
    await env.slack.send_event(P.app_mention("hello"))
    await env.settle(1)
    await env.slack.send_slash_command("/usage", "me today", user_id=P.USER_ID)
    await env.settle(2)
    await until(lambda: len(env.slack.ephemeral) >= 1)
    mine = env.slack.ephemeral[-1]
    assert mine["user"] == P.USER_ID and "Runs: 1" in mine["text"] and "Cost: $" in mine["text"]

    await env.slack.send_slash_command("/usage", "channel", user_id=P.USER_ID)
    await env.settle(3)
    await until(lambda: len(env.slack.ephemeral) >= 2)
    assert "for admins" in env.slack.ephemeral[-1]["text"]

    await env.slack.send_slash_command("/usage", "channel 30d", user_id="UADMIN")
    await env.settle(4)
    await until(lambda: any("Top users" in m["text"] for m in env.slack.ephemeral))


async def test_usage_on_discord_is_an_ephemeral_followup_and_admin_gated(
    discord_seams: None,  # noqa: F811
    openai_fake: FakeOpenAI,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with fake_discord() as dc, running_bot(dc, openai_fake, tmp_path) as bot:
        incoming = await dc.send_message_create(
            dc.text_channel["id"], dc.member, mention(dc, "hello")
        )
        await bot.answer_to(incoming)

        mine = await dc.send_interaction(
            "usage", {"scope": "me", "period": "today"}, user=dc.member
        )
        followup = await wait_followup(dc, mine)
        assert "Runs: 1" in followup["content"] and "Cost: $" in followup["content"]
        assert followup["flags"] & MsgFlag.EPHEMERAL

        refused = await dc.send_interaction("usage", {"scope": "channel"}, user=dc.member)
        assert "for admins" in (await wait_followup(dc, refused))["content"]

        admin = await dc.send_interaction(
            "usage", {"scope": "channel", "period": "30d"}, user=dc.admin
        )
        report = (await wait_followup(dc, admin))["content"]
        assert "Top users" in report and dc.member["id"] in report


async def test_budget_and_moderation_settings_on_discord(
    discord_seams: None,  # noqa: F811
    openai_fake: FakeOpenAI,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with fake_discord() as dc, running_bot(dc, openai_fake, tmp_path) as bot:
        assert bot is not None
        budget = await dc.send_interaction(
            "usage", {"scope": "budget", "value": "12.5"}, user=dc.admin
        )
        assert "$12.50" in (await wait_followup(dc, budget))["content"]
        refused = await dc.send_interaction(
            "usage", {"scope": "moderation", "value": "on"}, user=dc.member
        )
        assert "Only admins" in (await wait_followup(dc, refused))["content"]
        switched = await dc.send_interaction(
            "usage", {"scope": "moderation", "value": "on"}, user=dc.admin
        )
        assert "is on" in (await wait_followup(dc, switched))["content"]
