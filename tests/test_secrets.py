"""Secrets never reach the logs (at DEBUG, from any library, with arguments, tracebacks and
stacks), the chat or the database.

The end-to-end test runs the real Slack adapter against the fakes with LOG_LEVEL=DEBUG and
every secret configured, through an answer and two error paths (OpenAI rejecting the key; a
Slack API error that echoes tokens), then searches the root handler's output, everything the
fake Slack recorded as posted, and every table of the database."""

from __future__ import annotations

import io
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import bot.text.redact
from bot.core.errors import UserError
from bot.logs import REDACTED, RedactingFilter, configure_logging, redact, secrets_of
from storage import runs
from storage.connect import open_database
from testing.fakes import slack_payloads as P
from testing.fakes.openai_fake import FakeOpenAI
from tests.test_discord_adapter import discord_seams, fake_discord, mention, running_bot
from tests.test_slack_adapter import APP_TOKEN, BOT_TOKEN, start_env, stop_env, until

OPENAI_KEY = "sk-proj-" + "Zq8yS3cr3tK3yF0rT3st1ng0nly"
DISCORD_TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAw" + "MQ.GhIjKl." + "s3cr3t-d1sc0rd-t0k3n-f0r-t3sts-0nly"
SIGNING = "8f2b" + "c0ffee1234567890abcdef0123456"
SECRETS = (OPENAI_KEY, BOT_TOKEN, APP_TOKEN, DISCORD_TOKEN, SIGNING)
__all__ = ["discord_seams"]  # a fixture


@pytest.fixture(autouse=True)
def registered_secrets() -> Iterator[None]:
    """The secrets a test registers do not outlive it."""
    before = list(bot.text.redact._secrets)
    yield
    bot.text.redact._secrets[:] = before


@pytest.mark.parametrize(
    "text",
    [
        "key sk-" + "abcdefghijklmnopqrstuvwx",
        "key sk-proj-" + "abc_DEF-ghijklmnopqrstuvwx123",
        "slack xoxb-" + "1234567890-abcdefghij",
        "user xoxp-" + "1234567890-1234-abcdef",
        "app xapp-" + "1-A1-1234567890-abcdef",
        "rotated xoxe.xoxp-" + "1-Mi0yLTEyMzQ1Ng",
        "refresh xoxe-" + "1-My0xLTEyMzQ1Ng",
        "discord " + DISCORD_TOKEN,
        "Authorization: Bot abc.def.ghi",
        "{'Authorization': 'Bearer " + "abcdefghijk'}",
        "headers bearer " + "abcdef123456",
        "signing_secret=" + "abcdef0123456789",
        '"api_key": "' + 'whatever-secret-value"',
        "OPENAI_API_KEY=" + "some-secret-value",
        "DISCORD_TOKEN: " + "abcdefgh12345",
        "https://hooks.slack.com/commands/T1/123/" + "aBcDeF123456",
        "POST https://discord.com/api/v10/webhooks/1100/" + "aW50ZXJhY3Rpb246MTIzNDU2Nzg5",
    ],
)
def test_token_shapes_are_redacted(text: str) -> None:
    cleaned = redact(text)
    assert REDACTED in cleaned
    tail = text.split()[-1].strip("'\"}")
    assert tail not in cleaned or tail in ("Bot", "abc.def.ghi")  # the header value is gone
    assert "abc.def.ghi" not in redact("Authorization: Bot abc.def.ghi")


def test_ordinary_text_is_left_alone() -> None:
    for text in (
        "max_tokens=1000 input_tokens: 12",
        "Bot switchboard#0001 connected to 3 servers",
        "POST /v1/responses 200 in 0.3 s",
        "model=gpt-5-mini token_type=bot",
    ):
        assert redact(text) == text


def captured_root_output() -> io.StringIO:
    """The root handler `configure_logging` installed, writing into a buffer instead of stderr
    (threads that log after the test cannot then write to a closed capture)."""
    buffer = io.StringIO()
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    return buffer


def test_the_filter_cleans_args_tracebacks_and_stacks() -> None:
    configure_logging("DEBUG", [SIGNING])
    output = captured_root_output()
    log = logging.getLogger("httpcore.http11")  # a third-party logger: the root handler filters
    log.debug("headers %s", {"Authorization": f"Bearer {OPENAI_KEY}"})
    log.debug("signed with %s", SIGNING, stack_info=True)
    log.debug("bad %s %s arguments", SIGNING)  # a formatting error must not escape either
    try:
        raise RuntimeError(f"boom {SIGNING} {BOT_TOKEN}")
    except RuntimeError:
        logging.getLogger("slack_sdk").exception("failed")
    err = output.getvalue()
    assert all(secret not in err for secret in SECRETS), err
    assert err.count(REDACTED) >= 5 and "Stack (most recent call last)" in err
    assert "RuntimeError: boom" in err


def test_every_secret_field_of_the_settings_is_registered() -> None:
    from tests.harness import make_settings

    settings = make_settings(
        "http://127.0.0.1:1/v1",
        Path("/tmp"),
        OPENAI_API_KEY=OPENAI_KEY,
        DISCORD_TOKEN=DISCORD_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING,
        SLACK_BOT_TOKEN=BOT_TOKEN,
    )
    assert set(secrets_of(settings)) >= {OPENAI_KEY, DISCORD_TOKEN, SIGNING, BOT_TOKEN}
    RedactingFilter(secrets_of(settings))
    assert SIGNING not in redact(f"secret is {SIGNING}")
    assert UserError(f"failed at {SIGNING}", log_detail=OPENAI_KEY).message.endswith(REDACTED)


async def test_errors_stored_on_runs_are_redacted(tmp_path: Path) -> None:
    from bot.core.types import ConversationKey

    db = await open_database(tmp_path / "x.db")
    try:
        run = await runs.create_run(
            db, ConversationKey("slack", "T1", "C1"), user_id="U1", event_id="e", kind="chat"
        )
        await runs.close_run(db, run, "failed", f"HTTP 401 for key {OPENAI_KEY}")
    finally:
        await db.close()
    with sqlite3.connect(tmp_path / "x.db") as conn:
        (error,) = conn.execute("SELECT error FROM runs").fetchone()
    assert error == f"HTTP 401 for key {REDACTED}"


def dump_database(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = [repr(row) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"')]
    return "\n".join(rows)


async def test_secrets_never_reach_logs_chat_or_database(tmp_path: Path) -> None:
    env = await start_env(
        tmp_path,
        OPENAI_API_KEY=OPENAI_KEY,
        DISCORD_TOKEN=DISCORD_TOKEN,
        LOG_LEVEL="DEBUG",
    )
    configure_logging(env.app.settings.log_level, secrets_of(env.app.settings))
    output = captured_root_output()
    try:
        await env.slack.send_event(P.app_mention("hello there"))
        await env.settle(1)
        env.openai.fail_next("unauthorized")  # OpenAI rejects the key
        await env.slack.send_event(P.app_mention("and now?"))
        await env.settle(2)
        # A Slack API error that echoes our tokens back.
        env.slack.fail_next("chat.startStream", f"invalid_auth {BOT_TOKEN} {OPENAI_KEY}")
        env.slack.fail_next("chat.postMessage", f"invalid_auth {BOT_TOKEN} {OPENAI_KEY}")
        await env.slack.send_event(P.im_message("one more"))
        await env.settle(3)
        await until(lambda: len(env.slack.bot_messages()) >= 2)
    finally:
        await stop_env(env)
    logs = output.getvalue()
    assert "DEBUG" in logs and "openai" in logs  # the libraries did log at DEBUG
    assert "OPENAI_API_KEY" in logs or "AuthenticationError" in logs  # the error path ran

    chat = repr(
        [env.slack.messages, env.slack.ephemeral, env.slack.streams, env.slack.statuses]
    ) + repr([(u.filename, u.data) for u in env.slack.uploads])
    assert "echo: hello there" in chat and "OPENAI_API_KEY" in chat
    database = dump_database(env.app.settings.database_path)
    assert "completed" in database and "AuthenticationError" in database  # both runs stored
    for secret in SECRETS:
        assert secret not in logs, f"a secret in the logs: {secret[:8]}…"
        assert secret not in chat, f"a secret in chat: {secret[:8]}…"
        assert secret not in database, f"a secret in the database: {secret[:8]}…"


async def test_discord_secrets_never_reach_logs_chat_or_database(
    discord_seams: None, tmp_path: Path
) -> None:
    async with FakeOpenAI() as openai, fake_discord() as dc:
        configure_logging("DEBUG", [dc.token, OPENAI_KEY])
        output = captured_root_output()
        async with running_bot(
            dc, openai, tmp_path, OPENAI_API_KEY=OPENAI_KEY, LOG_LEVEL="DEBUG"
        ) as bot:
            cid = dc.text_channel["id"]
            first = await dc.send_message_create(cid, dc.member, mention(dc, "hello there"))
            assert (await bot.answer_to(first))["content"] == "echo: hello there"
            openai.fail_next("unauthorized")
            second = await dc.send_message_create(cid, dc.member, mention(dc, "and now?"))
            assert "OPENAI_API_KEY" in (await bot.answer_to(second))["content"]
            # A user pasting the bot's own token where a number belongs: the error quotes it.
            inter = await dc.send_interaction(
                "usage", {"scope": "me", "value": dc.token}, user=dc.member
            )
            await dc.wait_for(lambda: bool(dc.followups[inter["token"]]), 10, "a follow-up")
            settings = bot.app.settings
    logs = output.getvalue()
    assert "discord.http" in logs and "DEBUG" in logs  # discord.py logged its requests
    chat = repr([dc.messages, dc.ephemeral_messages, dc.followups, dc.interaction_responses])
    assert f"I don't understand `{REDACTED}`" in chat
    database = dump_database(settings.database_path)
    for secret in (dc.token, OPENAI_KEY, inter["token"]):
        assert secret not in logs, f"a secret in the logs: {secret[:8]}…"
        assert secret not in database, f"a secret in the database: {secret[:8]}…"
    for secret in (dc.token, OPENAI_KEY):
        assert secret not in chat, f"a secret in chat: {secret[:8]}…"


def test_doctor_lines_are_redacted() -> None:
    from bot.doctor import Report

    out = io.StringIO()
    report = Report(out)
    report.error(f"Slack said invalid_auth for {BOT_TOKEN}")
    report.warn(f"OpenAI: Incorrect API key provided: {OPENAI_KEY}")
    report.ok("Discord: connected as switchboard#0001")
    text = out.getvalue()
    assert BOT_TOKEN not in text and OPENAI_KEY not in text and text.count(REDACTED) == 2
    assert "switchboard#0001" in text
