"""`/usage` through the real platform clients: Slack (bolt, Socket Mode) and Discord (discord.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes import slack_payloads as P
from tests.test_slack_adapter import Env, start_env, stop_env, until


@pytest.fixture
async def slack_env(tmp_path: Path) -> AsyncIterator[Env]:
    environment = await start_env(tmp_path)
    yield environment
    await stop_env(environment)


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
