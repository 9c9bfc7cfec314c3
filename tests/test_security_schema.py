"""Issue 19, item 7: an admin's JSON schema with a catastrophic `pattern` cannot freeze the bot.
Patterns are matched with RE2 (linear time); a pattern RE2 cannot run safely is refused when it
is set. Through slack-bolt against the Slack fake, the model's answer from the OpenAI fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from testing.fakes import slack_payloads as P
from tests.test_slack_adapter import Env, slack_running, until

EVIL = {
    "type": "object",
    "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}},
    "patternProperties": {"^(x+x+)+y$": {"type": "string"}},
}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with slack_running(tmp_path, slack_clean=True) as environment:
        yield environment


async def admin_says(env: Env, text: str) -> str:
    before = len(env.slack.ephemeral)
    await env.slack.send_slash_command(
        "/assistant", text, user_id="UADMIN", channel_id=P.DM_CHANNEL_ID
    )
    await until(lambda: len(env.slack.ephemeral) > before)
    await env.app.dispatcher.wait_idle()
    return str(env.slack.ephemeral[-1]["text"])


async def test_a_catastrophic_pattern_is_matched_in_linear_time(env: Env) -> None:
    said = await admin_says(env, "set format " + json.dumps(EVIL))
    assert "Set format" in said
    # With a backtracking engine, this answer takes 2^40 steps to reject.
    env.openai.answer = lambda turn: json.dumps({"code": "a" * 40 + "!", "x" * 40: "z"})
    question = P.im_message("give me a code")
    await env.slack.send_event(question)
    await env.settle(2, seconds=10)  # seconds, not hours
    (shown,) = env.bot_texts(P.DM_CHANNEL_ID)
    assert "does not match this channel's JSON schema" in shown
    # and the bot is free for the next message
    env.openai.answer = lambda turn: json.dumps({"code": "aaa"})
    await env.slack.send_event(P.im_message("again"))
    await env.settle(3, seconds=10)
    assert "does not match" not in env.bot_texts(P.DM_CHANNEL_ID)[1]


async def test_patterns_that_need_backtracking_are_refused_when_set(env: Env) -> None:
    for pattern in ("^(?=a)b", "(a)\\1"):
        schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": pattern}}}
        said = await admin_says(env, "set format " + json.dumps(schema))
        assert "is not supported" in said and "lookarounds and backreferences" in said, said
    rows = await env.app.db.fetch_all("SELECT field FROM assistant_changes")
    assert rows == []
