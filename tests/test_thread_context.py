"""Thread and reply context (issue 14): mentioned in a thread it had no part in, or in a reply to
an earlier message, the bot reads what was said before (Slack `conversations.replies`,
paginated; Discord channel history and the message reference), attributed by speaker, once;
without the permission to read it, it answers anyway with a one-time notice. Through the real
slack-bolt / discord.py / openai clients against the fakes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import adapters.slack.history as slack_history
from bot.core.types import Actor, EarlierMessage
from bot.features.chat.context import EARLIER_INTRO, _within, render
from testing.fakes import slack_payloads as P
from testing.fakes.discord_payloads import Perm, overwrite
from testing.fakes.openai_fake import FakeOpenAI
from tests.media_fixtures import png
from tests.test_discord_adapter import discord_seams, fake_discord, mention, running_bot
from tests.test_slack_adapter import Env, start_env, stop_env

__all__ = ["discord_seams"]  # the fixture restoring discord.py's endpoints

NOTICE = "(I could not read the earlier messages here: the bot lacks"


@pytest.fixture(params=["responses", "chat"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    environment = await start_env(tmp_path, SWITCHBOARD_BACKEND=request.param)
    environment.slack.add_user("UCAROL", "carol", real_name="Carol Example")
    yield environment
    await stop_env(environment)
    assert environment.slack.internal_errors == []
    assert environment.openai.spec_problems == []


def last_user_parts(openai: FakeOpenAI) -> list[str]:
    """The text parts of the last answer request's user message, on either backend."""
    body = next(
        r.json
        for r in reversed(openai.requests)
        if r.path in ("/v1/responses", "/v1/chat/completions")
    )
    content = body["input"][0]["content"] if "input" in body else body["messages"][-1]["content"]
    if isinstance(content, str):
        return [content]
    return [p["text"] for p in content if p["type"] in ("input_text", "text")]


def user_parts(env: Env) -> list[str]:
    return last_user_parts(env.openai)


def seed_thread(env: Env) -> str:
    """A thread of 5 human messages by 3 people, and one by another bot; its parent's ts."""
    parent = env.slack.add_message(P.CHANNEL_ID, "Launch plan: we ship on Friday")
    ts = parent["ts"]
    env.slack.add_message(P.CHANNEL_ID, "I can't do Friday", user="UBOB", thread_ts=ts)
    env.slack.add_message(P.CHANNEL_ID, "Monday works for me", user="UCAROL", thread_ts=ts)
    env.slack.record_event(P.bot_message("build 42 is green", thread_ts=ts))
    env.slack.add_message(P.CHANNEL_ID, "Then Monday it is", thread_ts=ts)
    env.slack.add_message(P.CHANNEL_ID, "Agreed", user="UBOB", thread_ts=ts)
    return ts


async def test_slack_thread_summary_reads_the_thread_once_with_its_authors(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slack_history, "PAGE_SIZE", 2)  # several pages for six messages
    thread = seed_thread(env)
    ask = P.app_mention("summarise this thread", user="UCAROL", thread_ts=thread)
    await env.slack.send_event(ask)
    await env.settle(1)

    context, speaker, words = user_parts(env)
    assert context.splitlines() == [
        EARLIER_INTRO,
        "alice (<@UALICE>): Launch plan: we ship on Friday",
        "bob (<@UBOB>): I can't do Friday",
        "carol (<@UCAROL>): Monday works for me",
        "other-bot [a bot]: build 42 is green",
        "alice (<@UALICE>): Then Monday it is",
        "bob (<@UBOB>): Agreed",
    ]
    assert (speaker, words) == ("carol (<@UCAROL>):", "summarise this thread")
    assert env.slack.replies_pages >= 3  # paginated
    calls = env.slack.calls_to("conversations.replies")
    assert all(c.args["ts"] == thread and c.args["latest"] == ask["ts"] for c in calls)
    assert env.bot_texts(P.CHANNEL_ID, thread) == ["echo: summarise this thread"]

    # the conversation holds them now: the next message does not read them again
    pages = env.slack.replies_pages
    await env.slack.send_event(P.thread_reply("and who disagreed?", thread_ts=thread))
    await env.settle(2)
    assert env.slack.replies_pages == pages
    assert user_parts(env) == ["alice (<@UALICE>):", "and who disagreed?"]
    assert "bob (<@UBOB>): I can't do Friday" in env.openai.turns[-1].messages[0][1]


async def test_slack_reads_no_further_once_its_replies_allowance_is_spent(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slack_history, "PAGE_SIZE", 2)
    env.adapter.history = slack_history.SlackHistory(
        env.adapter.client, lambda: env.adapter.identity, replies_per_minute=1
    )
    thread = seed_thread(env)
    await env.slack.send_event(P.app_mention("summarise", thread_ts=thread))
    await env.settle(1)
    assert env.slack.replies_pages == 1  # one call a minute: the first page only
    context = user_parts(env)[0].splitlines()
    assert context == [
        EARLIER_INTRO,
        "alice (<@UALICE>): Launch plan: we ship on Friday",
        "bob (<@UBOB>): I can't do Friday",
    ]
    assert env.bot_texts(P.CHANNEL_ID, thread) == ["echo: summarise"]


async def test_slack_thread_images_reach_the_model_with_the_context(env: Env) -> None:
    image = env.slack.add_file("plan.png", png(), "image/png")
    parent = env.slack.add_message(P.CHANNEL_ID, "the plan", files=[image])
    await env.slack.send_event(P.app_mention("what is in the picture?", thread_ts=parent["ts"]))
    await env.settle(1)
    (turn,) = env.openai.turns
    assert turn.images and turn.images[0].startswith("data:image/png;base64,")
    assert "alice (<@UALICE>) [1 image]: the plan" in turn.messages[-1][1]


async def test_slack_without_the_history_scope_answers_with_a_notice_once(env: Env) -> None:
    env.slack.revoke_scope("channels:history")
    first = seed_thread(env)
    await env.slack.send_event(P.app_mention("summarise", thread_ts=first))
    await env.settle(1)
    (answer,) = env.bot_texts(P.CHANNEL_ID, first)
    assert answer.startswith(NOTICE + " the `channels:history` scope.")
    assert answer.endswith("echo: summarise")
    assert user_parts(env) == ["alice (<@UALICE>):", "summarise"]
    (call,) = env.slack.calls_to("conversations.replies")
    assert call.response is not None and call.response["needed"] == "channels:history"

    second = seed_thread(env)  # another thread of the same channel: no second notice
    await env.slack.send_event(P.app_mention("and this one?", thread_ts=second))
    await env.settle(2)
    assert env.bot_texts(P.CHANNEL_ID, second) == ["echo: and this one?"]


# --------------------------------------------------------------------------- Discord


@contextlib.asynccontextmanager
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake
    assert fake.spec_problems == []


parts = last_user_parts


@pytest.mark.parametrize("backend", ["responses", "chat"])
async def test_discord_thread_and_reply_context(
    discord_seams: None, tmp_path: Path, backend: str
) -> None:
    async with openai_fake() as openai, fake_discord() as dc:
        alice = dc.add_member(dc.add_user("alice", global_name="Alice"))
        bob = dc.add_member(dc.add_user("bob", global_name="Bob"))
        carol = dc.add_member(dc.add_user("carol", global_name="Carol"))
        async with running_bot(dc, openai, tmp_path, SWITCHBOARD_BACKEND=backend) as bot:
            thread = dc.add_thread(dc.text_channel, "launch", owner=alice, bot_joined=False)
            await dc.flush()
            said = [
                (alice, "Launch plan: we ship on Friday"),
                (bob, "I can't do Friday"),
                (carol, "Monday works for me"),
                (alice, "Then Monday it is"),
                (bob, "Agreed"),
            ]
            for who, text in said:
                await dc.send_message_create(thread["id"], who, text)
            ask = await dc.send_message_create(thread["id"], carol, mention(dc, "summarise"))
            assert (await bot.answer_to(ask))["content"] == "echo: summarise"
            in_thread = parts(openai)
            reads = len(dc.history_reads)
            again = await dc.send_message_create(thread["id"], bob, "who agreed?")
            await bot.answer_to(again)
            assert len(dc.history_reads) == reads  # read once
            assert parts(openai) == [f"Bob (<@{bob['id']}>):", "who agreed?"]

            # a reply to an earlier message in the channel
            cid = dc.text_channel["id"]
            earlier = await dc.send_message_create(cid, alice, "The deadline is Friday")
            question = await dc.send_message_create(
                cid, bob, mention(dc, "is this right?"), reply_to=earlier
            )
            await bot.answer_to(question)
            reply = parts(openai)
        dc.assert_spec_clean()

    def who(user: dict) -> str:
        return f"{user['global_name']} (<@{user['id']}>)"

    context, speaker, words = in_thread
    assert context.splitlines() == [EARLIER_INTRO] + [f"{who(u)}: {t}" for u, t in said]
    assert (speaker, words) == (f"{who(carol)}:", "summarise")
    assert reply == [
        f"(The message below replies to this one:)\n{who(alice)}: The deadline is Friday",
        f"{who(bob)}:",
        "is this right?",
    ]


async def test_discord_without_read_message_history_answers_with_a_notice_once(
    discord_seams: None, tmp_path: Path
) -> None:
    async with openai_fake() as openai, fake_discord() as dc:
        async with running_bot(dc, openai, tmp_path) as bot:
            deny = overwrite(dc.bot_role["id"], type=0, deny=Perm.READ_MESSAGE_HISTORY)
            secret = dc.add_channel("secret", overwrites=[deny])
            await dc.flush()
            answers = []
            for name in ("one", "two"):
                thread = dc.add_thread(secret, name, owner=dc.member, bot_joined=False)
                await dc.flush()
                await dc.send_message_create(thread["id"], dc.member, "earlier words")
                ask = await dc.send_message_create(thread["id"], dc.member, mention(dc, name))
                answers.append((await bot.answer_to(ask))["content"])
            assert parts(openai) == [f"member (<@{dc.member['id']}>):", "two"]
        dc.assert_spec_clean()
    first, second = answers
    assert first.startswith(NOTICE + " the Read Message History permission in this channel.")
    assert first.endswith("echo: one")
    assert second == "echo: two"


# --------------------------------------------------------------------------- pure


def test_context_is_bounded_newest_first_and_keeps_the_replied_message() -> None:
    alice = Actor("U1", "Alice", mention="<@U1>")
    old = [EarlierMessage(alice, f"message {n} " + "z" * 400, str(n)) for n in range(10)]
    replied = EarlierMessage(alice, "the one replied to", "r", replied_to=True)
    kept = _within([replied, *old], 400)
    assert kept[0] is replied and [m.message_id for m in kept[1:]] == ["7", "8", "9"]
    text = render(kept)
    assert text.startswith(EARLIER_INTRO) and text.endswith("Alice (<@U1>): the one replied to")
    me = EarlierMessage(Actor("B"), "my earlier answer", "s", is_self=True)
    assert render([me]).endswith("you (the assistant): my earlier answer")
    assert render([]) == ""


def test_the_manifest_and_the_invite_ask_for_what_reading_history_needs(tmp_path: Path) -> None:
    import discord

    from adapters.discord.invite import PERMISSIONS, build_invite_url
    from adapters.slack.manifest import manifest
    from tests.harness import make_settings

    settings = make_settings("http://127.0.0.1:9/v1", tmp_path)
    scopes = manifest(settings)["oauth_config"]["scopes"]["bot"]
    assert {"channels:history", "groups:history", "mpim:history", "users:read"} <= set(scopes)
    assert PERMISSIONS.read_message_history
    url = build_invite_url(123456789012345678)
    granted = discord.Permissions(int(url.split("permissions=")[1].split("&")[0]))
    assert granted.read_message_history and granted.view_channel
