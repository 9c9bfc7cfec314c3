"""`/assistant` through the real platform clients: Slack (bolt, Socket Mode) and Discord
(discord.py) against their loopback fakes, the real core behind them, the OpenAI fake serving
models, files and vector stores. Admins are platform admins (Slack `users.info` is_admin, a
Discord member with Manage Server), never a flag set by the test."""

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

FAST_KNOWLEDGE = {
    "SWITCHBOARD_KNOWLEDGE_POLL_INTERVAL": 0.01,
    "SWITCHBOARD_KNOWLEDGE_WAIT": 10,
}


@pytest.fixture
async def slack_env(tmp_path: Path) -> AsyncIterator[Env]:
    async with slack_running(
        tmp_path, **FAST_KNOWLEDGE, slack_clean=True, openai_clean=True
    ) as environment:
        yield environment


async def audit_count(env_db: object) -> int:
    row = await env_db.fetch_one("SELECT count(*) AS n FROM assistant_changes")  # type: ignore[attr-defined]
    assert row is not None
    return int(row["n"])


# --------------------------------------------------------------------------------------- Slack


async def test_slack_admin_sets_the_model_and_the_next_answer_uses_it(slack_env: Env) -> None:
    env = slack_env
    await env.slack.send_slash_command("/assistant", "set model gpt-6.1-sol", user_id=P.USER_ID)
    await env.settle(1)
    await until(lambda: len(env.slack.ephemeral) >= 1)
    assert "Only admins" in env.slack.ephemeral[-1]["text"]
    assert await audit_count(env.app.db) == 0

    await env.slack.send_slash_command(
        "/assistant", 'set instructions "Speak like a sailor."', user_id="UADMIN"
    )
    await env.slack.send_slash_command("/assistant", "set model gpt-6.1-sol", user_id="UOWNER")
    await env.slack.send_slash_command("/assistant", "set temperature 1.5", user_id="UADMIN")
    await env.settle(4)
    await until(lambda: len(env.slack.ephemeral) >= 4)
    notes = [m["text"] for m in env.slack.ephemeral[1:]]
    assert sum("applies from the next message" in n for n in notes) == 3, notes
    assert await audit_count(env.app.db) == 3

    await env.slack.send_event(P.app_mention("ahoy"))
    await env.settle(5)
    body = next(r.json for r in reversed(env.openai.requests) if r.path == "/v1/responses")
    assert (body["model"], body["temperature"]) == ("gpt-6.1-sol", 1.5)
    assert body["instructions"].startswith("Speak like a sailor.\n\nThis is a group conversation")

    await env.slack.send_slash_command("/assistant", "", user_id=P.USER_ID)
    await env.settle(6)
    await until(lambda: len(env.slack.ephemeral) >= 5)
    shown = env.slack.ephemeral[-1]
    assert shown["user"] == P.USER_ID
    assert "• model: gpt-6.1-sol (set for this channel)" in shown["text"]


async def test_slack_knowledge_add_by_a_mention_with_files(slack_env: Env) -> None:
    env = slack_env
    env.openai.knowledge.fail = lambda name: (
        ("unsupported_file", "Unsupported encoding.") if name == "latin1.txt" else None
    )
    files = [
        env.slack.add_file("handbook.md", b"# Handbook\nWe ship on Fridays.", "text/markdown"),
        env.slack.add_file("latin1.txt", b"caf\xe9", "text/plain"),
        env.slack.add_file("q3.csv", b"region,sales\neu,10\n", "text/csv"),
    ]
    await env.slack.send_event(
        P.app_mention("/assistant knowledge add", user="UADMIN", files=files)
    )
    await env.settle(1)
    await until(lambda: len(env.slack.ephemeral) >= 1, 10)
    reply = env.slack.ephemeral[-1]
    assert reply["user"] == "UADMIN"
    assert "✓ handbook.md: ready for file search." in reply["text"]
    assert "✗ latin1.txt: OpenAI could not process it (Unsupported encoding." in reply["text"]
    assert "✗ q3.csv: file search cannot read spreadsheets or CSV" in reply["text"]
    kb = env.openai.knowledge
    assert [f["filename"] for f in kb.files.values()] == ["handbook.md"]
    assert kb.file_data and next(iter(kb.file_data.values())).startswith(b"# Handbook")

    await env.slack.send_event(P.app_mention("/assistant knowledge list", user=P.USER_ID))
    await env.settle(2)
    await until(lambda: len(env.slack.ephemeral) >= 2)
    assert "Only admins" in env.slack.ephemeral[-1]["text"]

    await env.slack.send_slash_command("/assistant", "knowledge list", user_id="UADMIN")
    await env.settle(3)
    await until(lambda: len(env.slack.ephemeral) >= 3)
    assert "• handbook.md" in env.slack.ephemeral[-1]["text"]

    await env.slack.send_slash_command(
        "/assistant", "knowledge remove handbook.md", user_id="UADMIN"
    )
    await env.settle(4)
    await until(lambda: len(env.slack.ephemeral) >= 4)
    assert "Removed handbook.md" in env.slack.ephemeral[-1]["text"]
    assert kb.files == {}


async def test_slack_slash_knowledge_add_explains_how_to_attach(slack_env: Env) -> None:
    env = slack_env
    await env.slack.send_slash_command("/assistant", "knowledge add", user_id="UADMIN")
    await env.settle(1)
    await until(lambda: len(env.slack.ephemeral) >= 1)
    assert "mention me with `/assistant knowledge add`" in env.slack.ephemeral[-1]["text"]


# ------------------------------------------------------------------------------------- Discord


async def test_discord_admin_change_applies_next_turn_and_a_member_is_refused(
    discord_seams: None,  # noqa: F811
    openai_fake: FakeOpenAI,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with fake_discord() as dc, running_bot(dc, openai_fake, tmp_path) as bot:
        refused = await dc.send_interaction(
            "assistant", {"args": "set temperature 0.3"}, user=dc.member
        )
        followup = await wait_followup(dc, refused)
        assert "Only admins" in followup["content"] and followup["flags"] & MsgFlag.EPHEMERAL
        assert await audit_count(bot.app.db) == 0

        for args in ("set temperature 0.3", "set model gpt-6.1-sol", "set name Scout"):
            changed = await dc.send_interaction("assistant", {"args": args}, user=dc.admin)
            assert "applies from the next message" in (await wait_followup(dc, changed))["content"]
        incoming = await dc.send_message_create(
            dc.text_channel["id"], dc.member, mention(dc, "hello")
        )
        await bot.answer_to(incoming)
        body = next(r.json for r in reversed(openai_fake.requests) if r.path == "/v1/responses")
        assert (body["model"], body["temperature"]) == ("gpt-6.1-sol", 0.3)

        unknown = await dc.send_interaction(
            "assistant", {"args": "set model gpt-7-ultra"}, user=dc.admin
        )
        assert "no model `gpt-7-ultra`" in (await wait_followup(dc, unknown))["content"]
        seed = await dc.send_interaction("assistant", {"args": "set seed 7"}, user=dc.admin)
        assert "Responses API" in (await wait_followup(dc, seed))["content"]

        reset = await dc.send_interaction("assistant", {"args": "reset"}, user=dc.admin)
        assert "Removed the settings" in (await wait_followup(dc, reset))["content"]
        history = await dc.send_interaction("assistant", {"args": "history"}, user=dc.admin)
        text = (await wait_followup(dc, history))["content"]
        assert f"<@{dc.admin['id']}>" in text
        assert await audit_count(bot.app.db) == 6


async def test_discord_threads_follow_their_parent_channels_assistant(
    discord_seams: None,  # noqa: F811
    openai_fake: FakeOpenAI,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with fake_discord() as dc, running_bot(dc, openai_fake, tmp_path) as bot:
        changed = await dc.send_interaction(
            "assistant", {"args": "set instructions Answer like a pirate."}, user=dc.admin
        )
        assert "applies from the next message" in (await wait_followup(dc, changed))["content"]
        thread = dc.add_thread(dc.text_channel, "a question", owner=dc.member)
        await dc.flush()
        incoming = await dc.send_message_create(thread["id"], dc.member, mention(dc, "ahoy?"))
        await bot.answer_to(incoming)
        body = next(r.json for r in reversed(openai_fake.requests) if r.path == "/v1/responses")
        assert body["instructions"].startswith("Answer like a pirate.\n\nThis is a group")


async def test_discord_knowledge_with_attachment_options(
    discord_seams: None,  # noqa: F811
    openai_fake: FakeOpenAI,  # noqa: F811
    tmp_path: Path,
) -> None:
    kb = openai_fake.knowledge
    kb.fail = lambda name: ("invalid_file", "Empty document.") if name == "blank.pdf" else None
    async with (
        fake_discord() as dc,
        running_bot(dc, openai_fake, tmp_path, **FAST_KNOWLEDGE) as bot,
    ):
        guide = dc.add_attachment("guide.pdf", b"%PDF-1.7 guide", "application/pdf")
        blank = dc.add_attachment("blank.pdf", b"%PDF-1.7", "application/pdf")
        sheet = dc.add_attachment(
            "budget.xlsx",
            b"PK\x03\x04",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        refused = await dc.send_interaction(
            "assistant", {"args": "knowledge add", "file": guide}, user=dc.member
        )
        assert "Only admins" in (await wait_followup(dc, refused))["content"]
        assert kb.files == {}

        added = await dc.send_interaction(
            "assistant",
            {"args": "knowledge add", "file": guide, "file2": blank, "file3": sheet},
            user=dc.admin,
        )
        text = (await wait_followup(dc, added))["content"]
        assert "✓ guide.pdf: ready for file search." in text
        assert "✗ blank.pdf: OpenAI could not process it (Empty document. [invalid_file])" in text
        assert "✗ budget.xlsx: file search cannot read spreadsheets or CSV" in text
        assert [f["filename"] for f in kb.files.values()] == ["guide.pdf"]

        schema = dc.add_attachment(
            "answer.json", b'{"type": "object", "properties": {}}', "application/json"
        )
        formatted = await dc.send_interaction(
            "assistant", {"args": "set format", "file": schema}, user=dc.admin
        )
        assert "Set format" in (await wait_followup(dc, formatted))["content"]
        listed = await dc.send_interaction("assistant", {"args": "knowledge list"}, user=dc.admin)
        assert "• guide.pdf" in (await wait_followup(dc, listed))["content"]
        removed = await dc.send_interaction(
            "assistant", {"args": "knowledge remove guide.pdf"}, user=dc.admin
        )
        assert "Removed guide.pdf" in (await wait_followup(dc, removed))["content"]
        assert kb.files == {}
        rows = await bot.app.db.fetch_all("SELECT * FROM knowledge_files")
        assert rows == []
        dc.assert_spec_clean()


# ------------------------------------------------------------------------------ reply_mode all


async def test_slack_reply_mode_all_answers_every_message_in_the_channel(slack_env: Env) -> None:
    env = slack_env
    await env.slack.send_slash_command("/assistant", "set reply_mode all", user_id="UADMIN")
    await env.settle(1)
    await until(lambda: len(env.slack.ephemeral) >= 1)
    plain = P.message("good morning")
    await env.slack.send_event(plain)
    await env.settle(2)
    assert env.bot_texts(P.CHANNEL_ID, plain["ts"]) == ["echo: good morning"]

    await env.slack.send_slash_command("/assistant", "set reply_mode mention", user_id="UADMIN")
    await env.settle(3)
    await until(lambda: len(env.slack.ephemeral) >= 2)
    quiet = P.message("just chatting")
    await env.slack.send_event(quiet)
    ping = P.app_mention("ping")
    await env.slack.send_event(ping)
    await env.settle(5)
    assert env.bot_texts(P.CHANNEL_ID, ping["ts"]) == ["echo: ping"]
    assert env.bot_texts(P.CHANNEL_ID, quiet["ts"]) == []
    assert [e.text for e in env.refused] == ["just chatting"]  # the core turned it away


async def test_discord_reply_mode_all_answers_without_a_mention(
    discord_seams: None,  # noqa: F811
    openai_fake: FakeOpenAI,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with fake_discord() as dc, running_bot(dc, openai_fake, tmp_path) as bot:
        cid = dc.text_channel["id"]
        changed = await dc.send_interaction(
            "assistant", {"args": "set reply_mode all"}, user=dc.admin
        )
        await wait_followup(dc, changed)
        plain = await dc.send_message_create(cid, dc.member, "good morning")
        assert (await bot.answer_to(plain))["content"] == "echo: good morning"

        back = await dc.send_interaction(
            "assistant", {"args": "set reply_mode mention"}, user=dc.admin
        )
        await wait_followup(dc, back)
        await dc.send_message_create(cid, dc.member, "just chatting")
        ping = await dc.send_message_create(cid, dc.member, mention(dc, "ping"))
        await bot.answer_to(ping)
        assert [m["content"] for m in bot.bot_messages(cid)] == ["echo: good morning", "echo: ping"]
