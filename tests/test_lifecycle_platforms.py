"""Wire tests of the run lifecycle through both platforms: /cancel mid-stream, /cancel with
nothing running, expiry, /steps and /reset, with the real slack-bolt and discord.py clients
against the loopback fakes and the real core behind them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.types import ConversationKey
from storage.configs import save_overrides
from storage.steps import save_steps
from testing.fakes import slack_payloads as P
from testing.fakes.openai_fake import CodeRun, FakeOpenAI, FakeTurn, FunctionCall, ModelOutput
from tests.test_discord_adapter import (  # noqa: F401 (discord_seams is a fixture)
    Bot,
    discord_seams,
    fake_discord,
    mention,
    running_bot,
    wait_followup,
)
from tests.test_slack_adapter import Env, slack_running, start_env, stop_env, until

LONG = " ".join(f"word{n}" for n in range(80))


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with slack_running(tmp_path, slack_clean=True) as environment:
        yield environment


async def statuses(env_app_db) -> list[str]:  # type: ignore[no-untyped-def]
    return [r["status"] for r in await env_app_db.fetch_all("SELECT status FROM runs ORDER BY id")]


# -- Slack ----------------------------------------------------------------------------------


async def test_slack_cancel_from_the_channel_stops_the_answer_streaming_in_a_thread(
    env: Env,
) -> None:
    env.openai.answer = lambda turn: LONG
    env.openai.delta_delay = 0.05
    mention_event = P.app_mention("write a long story")
    await env.slack.send_event(mention_event)
    await until(lambda: any(s.text for s in env.slack.streams.values()), 10)
    await env.slack.send_slash_command("/cancel", "", user_id=P.USER_ID)
    await env.settle(2, 15)

    (stream,) = env.slack.streams.values()
    assert stream.state == "stopped" and stream.thread_ts == mention_event["ts"]
    (final,) = env.bot_texts(P.CHANNEL_ID, mention_event["ts"])
    assert stream.calls[-1] == "stop" and final == stream.text  # ended by the stream itself
    assert final.endswith("(cancelled by @alice)")
    assert final.startswith("word0") and LONG not in final
    told = [m["text"] for m in env.slack.ephemeral if m.get("user") == P.USER_ID]
    assert told == ["Stopped the answer in progress."]
    assert await statuses(env.app.db) == ["cancelled"]


async def test_slack_cancel_with_nothing_running_says_so(env: Env) -> None:
    await env.slack.send_slash_command("/cancel", "", user_id=P.USER_ID)
    await env.settle(1)
    await until(lambda: env.slack.ephemeral, 5)
    assert "Nothing is being answered here" in env.slack.ephemeral[-1]["text"]


async def test_slack_an_answer_over_the_time_limit_is_stopped_plainly(tmp_path: Path) -> None:
    environment = await start_env(tmp_path, SWITCHBOARD_RUN_TIMEOUT_SECONDS=0.5)
    try:
        environment.openai.latency = 1.5
        mention_event = P.app_mention("slow please")
        await environment.slack.send_event(mention_event)
        await environment.settle(1, 10)
        texts = environment.bot_texts(P.CHANNEL_ID, mention_event["ts"])
        assert texts == ["(This answer took longer than 0.5 s and was stopped.)"]
        assert await statuses(environment.app.db) == ["expired"]
    finally:
        await stop_env(environment)


async def test_slack_steps_and_reset_in_a_dm(env: Env) -> None:
    env.openai.answer = lambda turn: f"{len(turn.messages)} messages"
    await env.slack.send_event(P.im_message("one"))
    await env.settle(1)
    run_id = (await env.app.db.fetch_one("SELECT id FROM runs"))["id"]  # type: ignore[index]
    async with env.app.db.transaction() as tx:
        await save_steps(tx, run_id, [("code_interpreter_call", "python", "print(6 * 7)")])
    await env.slack.send_slash_command("/steps", "", channel_id=P.DM_CHANNEL_ID)
    await env.settle(2)
    steps = env.slack.ephemeral[-1]["text"]  # private: tool arguments and outputs
    assert "1. *Ran code*: python" in steps and "```\nprint(6 * 7)\n```" in steps

    (server_id,) = env.openai.conversations
    await env.slack.send_slash_command("/reset", "", channel_id=P.DM_CHANNEL_ID)
    await env.settle(3)
    assert "new conversation" in env.bot_texts(P.DM_CHANNEL_ID)[-1]
    assert server_id not in env.openai.conversations  # deleted at OpenAI too
    await env.slack.send_event(P.im_message("two"))
    await env.settle(4)
    assert env.bot_texts(P.DM_CHANNEL_ID)[-1] == "1 messages"


# -- Discord --------------------------------------------------------------------------------


@pytest.fixture
async def discord_bot(
    discord_seams: None,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> AsyncIterator[tuple[Bot, FakeOpenAI]]:
    async with (
        FakeOpenAI() as openai_fake,
        fake_discord() as dc,
        running_bot(dc, openai_fake, tmp_path) as running,
    ):
        yield running, openai_fake
        dc.assert_spec_clean()
        assert dc.internal_errors == []


async def test_discord_cancel_stops_the_answer_and_steps_reports_it(
    discord_bot: tuple[Bot, FakeOpenAI],
) -> None:
    bot, openai_fake = discord_bot
    dc = bot.dc
    cid = dc.text_channel["id"]
    openai_fake.answer = lambda turn: LONG
    openai_fake.delta_delay = 0.05
    incoming = await dc.send_message_create(cid, dc.member, mention(dc, "go on and on"))
    await dc.wait_for(
        lambda: any(m.get("content") for m in bot.bot_messages(cid)), 10, "first text"
    )
    inter = await dc.send_interaction("cancel", user=dc.member)
    followup = await wait_followup(dc, inter)
    assert followup["content"] == "Stopped the answer in progress."
    answer = await bot.answer_to(incoming)
    assert answer["content"].endswith("(cancelled by @member)")
    assert answer["content"].startswith("word0") and LONG not in answer["content"]
    assert await statuses(bot.app.db) == ["cancelled"]

    inter = await dc.send_interaction("steps", user=dc.member)
    followup = await wait_followup(dc, inter)
    assert followup["content"] == "The last answer here ended cancelled; steps recorded: none."

    inter = await dc.send_interaction("cancel", user=dc.member)
    followup = await wait_followup(dc, inter)
    assert "Nothing is being answered here" in followup["content"]


async def test_slack_a_tool_turn_moves_through_requires_action_and_steps_shows_it(
    env: Env,
) -> None:
    """The run row goes queued → in_progress → requires_action (the function runs) →
    in_progress → completed (recorded by a trigger, so no state is missed), and /steps in the
    channel shows the code and the call of the caller's last answer in a thread."""
    await env.app.db.execute("CREATE TABLE status_log (run_id INTEGER, status TEXT)")
    await env.app.db.execute(
        "CREATE TRIGGER log_status AFTER UPDATE OF status ON runs "
        "WHEN new.status != old.status "
        "BEGIN INSERT INTO status_log VALUES (new.id, new.status); END"
    )
    key = ConversationKey("slack", P.TEAM_ID, P.CHANNEL_ID)
    await save_overrides(
        env.app.db, key, {"tools": ["code_interpreter", "functions:calculate"]}, updated_by="a"
    )

    def script(turn: FakeTurn) -> str | ModelOutput:
        if not turn.tool_outputs:
            return ModelOutput(
                calls=[FunctionCall("calculate", {"expression": "6 * 7"})],
                hosted=[CodeRun("print(sum(range(10)))", logs="45")],
            )
        return f"Both agree: {turn.tool_outputs[0][1]}."

    env.openai.answer = script
    event = P.app_mention("compute things")
    await env.slack.send_event(event)
    await env.settle(1, 15)
    assert env.bot_texts(P.CHANNEL_ID, event["ts"]) == ["Both agree: 42."]
    log = await env.app.db.fetch_all("SELECT status FROM status_log")
    assert [r["status"] for r in log] == [
        "in_progress",
        "requires_action",
        "in_progress",
        "completed",
    ]

    await env.slack.send_slash_command("/steps", "", user_id=P.USER_ID)
    await env.settle(2)
    await until(lambda: env.slack.ephemeral, 5)
    steps = env.slack.ephemeral[-1]["text"]  # private to whoever asked
    assert env.slack.ephemeral[-1]["user"] == P.USER_ID
    assert steps.startswith("What I did for the last answer here:")
    assert "*Ran code*" in steps and "print(sum(range(10)))" in steps
    assert '*Called a tool*: calculate({"expression":"6 * 7"})' in steps
