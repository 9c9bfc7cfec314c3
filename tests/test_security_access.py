"""Issue 19, item 13: who may use the bot. Workspace admins keep allow and block lists of users,
roles (Discord) / user groups (Slack) and channels; a refused user gets one private notice,
nothing reaches OpenAI, and the refusal is on record. Through slack-bolt and discord.py against
their fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from testing.fakes import slack_payloads as P
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
    async with slack_running(tmp_path, slack_clean=True, openai_clean=True) as environment:
        yield environment


async def admin_says(env: Env, text: str, user: str = "UADMIN") -> str:
    before = len(env.slack.ephemeral)
    await env.slack.send_slash_command("/assistant", text, user_id=user)
    await until(lambda: len(env.slack.ephemeral) > before)
    await env.app.dispatcher.wait_idle()
    return str(env.slack.ephemeral[-1]["text"])


def model_calls(env: Env) -> int:
    return sum(r.path == "/v1/responses" for r in env.openai.requests)


async def access_runs(env: Env) -> list[tuple[str, str, str]]:
    rows = await env.app.db.fetch_all(
        "SELECT user_id, status, error FROM runs WHERE kind = 'access' ORDER BY id"
    )
    return [(r["user_id"], r["status"], r["error"]) for r in rows]


async def test_slack_block_list_refuses_privately_and_nothing_reaches_openai(
    slack_env: Env,
) -> None:
    env = slack_env
    said = await admin_says(env, "access block <@UALICE|alice>")
    assert "blocked: <@UALICE>" in said
    # a member cannot change the lists, even for themselves
    assert "Only admins" in await admin_says(env, "access unblock <@UALICE>", "UBOB")

    before = model_calls(env)
    ephemeral = len(env.slack.ephemeral)
    await env.slack.send_event(P.app_mention("are you there?"))
    await until(lambda: len(env.slack.ephemeral) > ephemeral)
    await env.app.dispatcher.wait_idle()
    notice = env.slack.ephemeral[-1]
    assert notice["user"] == P.USER_ID and "can't use the assistant here" in notice["text"]
    assert env.bot_texts(P.CHANNEL_ID) == []  # nothing in the channel
    assert model_calls(env) == before
    assert await access_runs(env) == [
        (P.USER_ID, "failed", "access refused: blocked (user:UALICE)")
    ]
    # the slash commands too
    assert "can't use the assistant here" in await admin_says(env, "", P.USER_ID)

    # Bob is not blocked; the admin is never refused
    await env.slack.send_event(P.app_mention("hello", user="UBOB"))
    await until(lambda: model_calls(env) > before)
    assert "• access: blocked: <@UALICE>" in await admin_says(env, "")
    rows = await env.app.db.fetch_all("SELECT field FROM assistant_changes")
    assert [r["field"] for r in rows] == ["access_block"]  # audited


async def test_slack_allow_list_by_user_group(slack_env: Env) -> None:
    env = slack_env
    env.slack.add_usergroup("S0ENG", "eng", ["UBOB"])
    said = await admin_says(env, "access allow <!subteam^S0ENG|@eng>")
    assert "allowed: group S0ENG" in said
    before = model_calls(env)
    await env.slack.send_event(P.app_mention("may I?"))  # Alice is not in @eng
    await until(lambda: any("can't use" in m["text"] for m in env.slack.ephemeral))
    await env.slack.send_event(P.app_mention("and me?", user="UBOB"))
    await until(lambda: model_calls(env) > before)
    await env.app.dispatcher.wait_idle()
    assert model_calls(env) == before + 1
    assert [who for who, *_ in await access_runs(env)] == [P.USER_ID]
    assert "Removed" not in await admin_says(env, "access clear")
    await env.slack.send_event(P.app_mention("now?"))
    await until(lambda: model_calls(env) > before + 1)


# ------------------------------------------------------------------------------------- Discord


async def test_discord_blocked_role_and_channel_allow_list(
    discord_seams: None,  # noqa: F811
    openai_fake: FakeOpenAI,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with fake_discord() as dc:
        gid = dc.guild["id"]
        muted = dc.add_role("Muted", 0, guild_id=gid)
        troll = dc.add_member(username="troll", roles=[muted["id"]], guild_id=gid)
        other = dc.add_channel("random", guild_id=gid)
        async with running_bot(dc, openai_fake, tmp_path) as bot:
            await blocked_role_and_channel_allow_list(dc, bot, openai_fake, muted, troll, other)


async def blocked_role_and_channel_allow_list(
    dc: Any, bot: Any, openai: FakeOpenAI, muted: dict, troll: dict, other: dict
) -> None:
    changed = await dc.send_interaction(
        "assistant", {"args": f"access block <@&{muted['id']}>"}, user=dc.admin
    )
    assert f"blocked: <@&{muted['id']}>" in (await wait_followup(dc, changed))["content"]

    calls = len(openai.requests)
    cid = dc.text_channel["id"]
    await dc.send_message_create(cid, troll, mention(dc, "hi"))
    dm = dc.dm_channel(troll["id"])["id"]
    await dc.wait_for(lambda: bool(bot.bot_messages(dm)), 10, "the private notice")
    await bot.idle()
    assert "can't use the assistant here" in bot.bot_messages(dm)[0]["content"]
    assert bot.bot_messages(cid) == []
    assert len(openai.requests) == calls

    refused = await dc.send_interaction("usage", None, user=troll)
    assert "can't use the assistant" in (await wait_followup(dc, refused))["content"]

    # an allow list of channels: the bot works only there
    changed = await dc.send_interaction(
        "assistant", {"args": f"access allow channel {cid}"}, user=dc.admin
    )
    await wait_followup(dc, changed)
    incoming = await dc.send_message_create(other["id"], dc.member, mention(dc, "here?"))
    member_dm = dc.dm_channel(dc.member["id"])["id"]
    await dc.wait_for(lambda: bool(bot.bot_messages(member_dm)), 10, "the notice")
    assert "can't use the assistant" in bot.bot_messages(member_dm)[0]["content"]
    answered = await dc.send_message_create(cid, dc.member, mention(dc, "and here?"))
    await bot.answer_to(answered)
    assert incoming["id"] != answered["id"]
    rows = await bot.app.db.fetch_all("SELECT error FROM runs WHERE kind = 'access'")
    assert [r["error"] for r in rows] == [
        f"access refused: blocked (role:{muted['id']})",
        f"access refused: blocked (role:{muted['id']})",
        "access refused: channel not on the allow list",
    ]
