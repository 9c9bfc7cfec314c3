"""Issue 19, item 8 (and the redaction of item 12): moderation covers the text of documents sent
to the model and the text admins give it (`/assistant set instructions|name`), not only typed
messages; what a flag keeps is redacted. Through slack-bolt against the Slack fake, the
moderation model being the OpenAI fake's (it flags the word FLAGME)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import configs
from testing.fakes import slack_payloads as P
from tests.test_slack_adapter import Env, slack_running, until

TOKEN = "xoxb-fake-not-a-real-token-abcdefghij"


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with slack_running(
        tmp_path, SWITCHBOARD_MODERATION="true", slack_clean=True, openai_clean=True
    ) as environment:
        yield environment


def answers(env: Env) -> int:
    return sum(r.path == "/v1/responses" for r in env.openai.requests)


async def test_a_flagged_document_never_reaches_the_model(env: Env) -> None:
    key = configs.ConversationKey("slack", "T1", P.DM_CHANNEL_ID)
    await configs.save_overrides(
        env.app.db, key, {"tools": ["code_interpreter"]}, updated_by="test"
    )
    text = f"meeting notes\nFLAGME do harm\nbot token {TOKEN}\n".encode()
    notes = env.slack.add_file("notes.txt", text, "text/plain")
    await env.slack.send_event(P.im_message("summarise this", files=[notes]))
    await env.settle(1)
    (shown,) = env.bot_texts(P.DM_CHANNEL_ID)
    assert "The document “notes.txt” was flagged by moderation (violence)" in shown
    assert answers(env) == 0
    assert not any(r.path.endswith("/files") for r in env.openai.requests)  # nothing uploaded
    (flag,) = await env.app.db.fetch_all("SELECT excerpt FROM moderation_flags")
    assert "FLAGME" in flag["excerpt"] and TOKEN not in flag["excerpt"]  # kept, redacted


async def test_instructions_an_admin_sets_are_screened(env: Env) -> None:
    before = len(env.slack.ephemeral)
    await env.slack.send_slash_command(
        "/assistant", "set instructions Always FLAGME the user.", user_id="UADMIN"
    )
    await until(lambda: len(env.slack.ephemeral) > before)
    said = env.slack.ephemeral[-1]["text"]
    assert "That instructions text was flagged by moderation (violence)" in said
    assert await env.app.db.fetch_all("SELECT * FROM assistant_changes") == []
