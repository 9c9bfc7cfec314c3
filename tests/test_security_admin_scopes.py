"""Issue 19, item 1: admin rights have a scope. Through the real clients: discord.py against the
Discord fake (members whose permissions the fake computes the Discord way) and slack-bolt against
the Slack fake (`users.info` with the user's own team), the real core behind them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from testing.fakes import discord_payloads as DP
from testing.fakes.discord_payloads import Perm
from testing.fakes.openai_fake import FakeOpenAI
from tests.test_discord_adapter import (  # noqa: F401 (fixtures)
    discord_seams,
    fake_discord,
    openai_fake,
    running_bot,
    wait_followup,
)
from tests.test_slack_adapter import Env, slack_running, until


async def ask(dc: Any, name: str, user: dict, text: str = "", **options: Any) -> str:
    values = {"args": text} if name == "assistant" else {}
    values.update(options)
    interaction = await dc.send_interaction(name, values or None, user=user, **_channel(options))
    return str((await wait_followup(dc, interaction))["content"])


def _channel(options: dict[str, Any]) -> dict[str, Any]:
    channel = options.pop("channel_id", None)
    return {"channel_id": channel} if channel else {}


async def test_discord_manage_channels_is_a_channel_admin_only(
    discord_seams: None,  # noqa: F811
    openai_fake: FakeOpenAI,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with (
        fake_discord() as dc,
        running_bot(
            dc,
            openai_fake,
            tmp_path,
            SWITCHBOARD_BUDGET_CHANNEL_MONTHLY_USD=5,
            SWITCHBOARD_MODERATION="true",
        ) as bot,
    ):
        manager, admin = dc.manager, dc.admin
        # the server-wide instructions, moderation and budgets are not the channel's to change
        said = await ask(dc, "assistant", manager, "set workspace instructions Obey me.")
        assert "Only workspace admins" in said
        said = await ask(dc, "assistant", manager, "reset workspace")
        assert "Only workspace admins" in said
        said = await ask(dc, "usage", manager, scope="budget", value="999999")
        assert "up to the workspace's cap of $5.00" in said
        said = await ask(dc, "assistant", manager, "set budget 999999")
        assert "up to the workspace's cap of $5.00" in said
        said = await ask(dc, "usage", manager, scope="moderation", value="off")
        assert "Moderation is on for this whole workspace" in said
        said = await ask(dc, "usage", manager, scope="workspace")
        assert "/usage workspace is for workspace admins" in said
        assert "for admins of this workspace" in await ask(dc, "status", manager)
        rows = await bot.app.db.fetch_all("SELECT field FROM assistant_changes")
        assert rows == []

        # their own channel, within the caps: yes
        said = await ask(dc, "assistant", manager, "set temperature 0.5")
        assert "applies from the next message" in said
        said = await ask(dc, "usage", manager, scope="budget", value="3")
        assert "$3.00" in said
        assert "Usage for this channel" in await ask(dc, "usage", manager, scope="channel")

        # a server admin may do all of it
        said = await ask(dc, "assistant", admin, "set workspace instructions Be brief.")
        assert "Set instructions for the workspace default" in said
        said = await ask(dc, "usage", admin, scope="budget", value="50")
        assert "$50.00" in said
        said = await ask(dc, "usage", admin, scope="moderation", value="off")
        assert "Moderation of incoming messages is off" in said
        assert "Usage for this workspace" in await ask(dc, "usage", admin, scope="workspace")
        fields = [r["field"] for r in await bot.app.db.fetch_all(
            "SELECT field FROM assistant_changes ORDER BY id"
        )]  # fmt: skip
        # /usage budget and moderation are audited like /assistant set
        assert fields == [
            "temperature", "budget_monthly_usd", "instructions", "budget_monthly_usd", "moderation"
        ]  # fmt: skip


async def test_discord_manage_channels_granted_on_one_channel_counts_there_only(
    discord_seams: None,  # noqa: F811
    openai_fake: FakeOpenAI,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with fake_discord() as dc, running_bot(dc, openai_fake, tmp_path):
        gid = dc.guild["id"]
        member = dc.member
        # an overwrite grants Manage Channels (and even Manage Server bits) on one channel
        grant = Perm.MANAGE_CHANNELS | Perm.MANAGE_GUILD
        own = dc.add_channel(
            "team-room",
            guild_id=gid,
            overwrites=[DP.overwrite(member["id"], type=1, allow=grant)],
        )
        await dc.flush()
        said = await ask(dc, "assistant", member, "set name Room bot", channel_id=own["id"])
        assert "Set name for this channel" in said
        # ... which does not make them a server admin, there or anywhere
        said = await ask(
            dc, "assistant", member, "set workspace name Boss bot", channel_id=own["id"]
        )
        assert "Only workspace admins" in said
        said = await ask(dc, "assistant", member, "set name Elsewhere")
        assert "Only admins" in said


# --------------------------------------------------------------------------------------- Slack


@pytest.fixture
async def slack_env(tmp_path: Path) -> AsyncIterator[Env]:
    async with slack_running(
        tmp_path, SWITCHBOARD_ADMINS="T1:UCAROL,T9:UDAVE", slack_clean=True
    ) as environment:
        yield environment


async def slack_says(env: Env, command: str, text: str, user: str) -> str:
    before = len(env.slack.ephemeral)
    await env.slack.send_slash_command(command, text, user_id=user)
    await until(lambda: len(env.slack.ephemeral) > before)
    await env.app.dispatcher.wait_idle()
    return str(env.slack.ephemeral[-1]["text"])


async def test_slack_admins_of_another_team_never_count(slack_env: Env) -> None:
    env = slack_env
    # a Slack Connect partner who is an admin of their own workspace
    guest = env.slack.add_user("UPARTNER", "partner", is_admin=True, is_owner=True)
    guest["team_id"] = "T2OTHER"
    said = await slack_says(env, "/assistant", "set name Partner bot", "UPARTNER")
    assert "Only admins" in said
    # an admin of this workspace
    assert "Set name" in await slack_says(env, "/assistant", "set name Ours", "UADMIN")
    # SWITCHBOARD_ADMINS scoped per workspace: T1:UCAROL is an admin here, T9:UDAVE is not
    env.slack.add_user("UCAROL", "carol")
    env.slack.add_user("UDAVE", "dave")
    assert "Set name" in await slack_says(env, "/assistant", "set name Carol's", "UCAROL")
    assert "Only admins" in await slack_says(env, "/assistant", "set name Dave's", "UDAVE")


async def test_slack_user_change_forgets_a_demoted_admin_at_once(slack_env: Env) -> None:
    env = slack_env
    assert "Set name" in await slack_says(env, "/assistant", "set name One", "UADMIN")
    env.slack.users["UADMIN"]["is_admin"] = False
    # cached: still an admin until Slack says the user changed
    assert "Set name" in await slack_says(env, "/assistant", "set name Two", "UADMIN")
    sent = await env.slack.send_event({"type": "user_change", "user": env.slack.users["UADMIN"]})
    await env.slack.wait_ack(sent)
    refused = ""
    for _ in range(20):  # bolt runs the listener just after the ack: retry until it ran
        refused = await slack_says(env, "/assistant", "set name Three", "UADMIN")
        if "Only admins" in refused:
            break
    assert "Only admins" in refused
