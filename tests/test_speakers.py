"""Named speakers (issue 14): in a shared channel the model is told who said what (display name
and the platform's mention next to every message), it may mention people back with a real
mention, and nothing it writes pings a whole channel. Slack and Discord, through the real
slack-bolt / discord.py / openai clients against the fakes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from adapters.slack.mentions import JOINER, neutralise
from bot.core.types import Actor
from bot.features.chat.speakers import label
from testing.fakes import slack_payloads as P
from testing.fakes.discord_payloads import Perm
from testing.fakes.openai_fake import FakeOpenAI, FakeTurn, default_answer
from tests.test_discord_adapter import discord_seams, fake_discord, mention, running_bot
from tests.test_slack_adapter import Env, start_env, stop_env

__all__ = ["discord_seams"]  # the fixture restoring discord.py's endpoints


@pytest.fixture(params=["responses", "chat"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    environment = await start_env(tmp_path, SWITCHBOARD_BACKEND=request.param)
    yield environment
    await stop_env(environment)
    assert environment.slack.internal_errors == []
    assert environment.openai.spec_problems == []


def answer_naming(mention_of_alice: str, loud: str) -> Callable[[FakeTurn], str]:
    def answer(turn: FakeTurn) -> str:
        if "what does" in turn.user_text:
            return f"{mention_of_alice} likes tea. {loud}"
        return default_answer(turn)

    return answer


# --------------------------------------------------------------------------- Slack


async def test_slack_alice_and_bob_are_told_apart_and_alice_is_really_mentioned(env: Env) -> None:
    loud = "<!channel> <!here> <!everyone> @here @channel @everyone <!subteam^S1|@devs>"
    env.openai.answer = answer_naming("<@UALICE>", loud)
    started = P.app_mention("I am Alice and I like tea", user=P.USER_ID)
    await env.slack.send_event(started)
    await env.settle(1)
    await env.slack.send_event(
        P.thread_reply("what does Alice like?", thread_ts=started["ts"], user="UBOB")
    )
    await env.settle(2)

    turn = env.openai.turns[-1]
    assert turn.messages[0] == ("user", "alice (<@UALICE>):\nI am Alice and I like tea")
    assert turn.messages[-1] == ("user", "bob (<@UBOB>):\nwhat does Alice like?")
    assert turn.instructions is not None
    assert "This is a group conversation on Slack" in turn.instructions
    (_, answer) = env.bot_texts(P.CHANNEL_ID, started["ts"])
    assert answer.startswith("<@UALICE> likes tea.")  # Slack's own form: a real mention
    for special in ("<!channel>", "<!here>", "<!everyone>", "<!subteam", " @here", " @channel"):
        assert special not in answer, special
    assert answer == f"<@UALICE> likes tea. {neutralise(loud)}"
    assert JOINER in answer
    # names come from users.info, looked up once per person
    assert len(env.slack.calls_to("users.info")) == 2


async def test_a_dm_is_not_a_group_conversation(env: Env) -> None:
    await env.slack.send_event(P.im_message("hello"))
    await env.settle(1)
    turn = env.openai.turns[-1]
    assert turn.messages == [("user", "hello")]
    assert "group conversation" not in (turn.instructions or "")


# --------------------------------------------------------------------------- Discord


@contextlib.asynccontextmanager
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake
    assert fake.spec_problems == []


@pytest.mark.parametrize("backend", ["responses", "chat"])
async def test_discord_alice_and_bob_are_told_apart_and_everyone_is_not_pinged(
    discord_seams: None, tmp_path: Path, backend: str
) -> None:
    async with openai_fake() as openai, fake_discord() as dc:
        # the bot could ping everyone: only what it sends may stop it
        dc.set_bot_permissions(Perm.BOT_DEFAULT | Perm.MENTION_EVERYONE)
        alice = dc.add_member(dc.add_user("alice", global_name="Alice"))
        bob = dc.add_member(dc.add_user("bob", global_name="Bob"))
        role = dc.add_role("devs", 0)
        loud = f"@everyone @here <@&{role['id']}>"
        openai.answer = answer_naming(f"<@{alice['id']}>", loud)
        async with running_bot(dc, openai, tmp_path, SWITCHBOARD_BACKEND=backend) as bot:
            cid = dc.text_channel["id"]
            first = await dc.send_message_create(cid, alice, mention(dc, "I am Alice, I like tea"))
            await bot.answer_to(first)
            second = await dc.send_message_create(cid, bob, mention(dc, "what does Alice like?"))
            answer = await bot.answer_to(second)
            turn = openai.turns[-1]
        dc.assert_spec_clean()

    assert turn.messages[0] == ("user", f"Alice (<@{alice['id']}>):\nI am Alice, I like tea")
    assert turn.messages[-1] == ("user", f"Bob (<@{bob['id']}>):\nwhat does Alice like?")
    assert turn.instructions is not None
    assert "This is a group conversation on Discord" in turn.instructions
    assert answer["content"] == f"<@{alice['id']}> likes tea. {loud}"
    mentioned = {u["id"] for u in answer["mentions"]}
    assert alice["id"] in mentioned  # a real mention: Alice is pinged
    assert answer["mention_everyone"] is False
    assert answer["mention_roles"] == []


# --------------------------------------------------------------------------- pure


def test_labels_and_neutralising() -> None:
    assert label(Actor("U1", "Alice", mention="<@U1>")) == "Alice (<@U1>)"
    assert label(Actor("U1", mention="<@U1>")) == "<@U1>"
    assert label(Actor("B1", "deploy", is_bot=True)) == "deploy [a bot]"
    assert label(Actor("U1", "  A\nlong\tname  ", mention="<@U1>")) == "A long name (<@U1>)"
    text = "ping <@U1>, not <!here> nor @everyone; mail a@b.c, be a @hero"
    assert neutralise(text) == (
        f"ping <@U1>, not <{JOINER}!here> nor @everyon{JOINER}e; mail a@b.c, be a @hero"
    )
    for cut in range(len(text) + 1):  # streamed answers stay append-only
        assert neutralise(text).startswith(neutralise(text[:cut]))
