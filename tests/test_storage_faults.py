"""Storage faults while messages arrive: the real app on a real SQLite file, with the disk
"full" (SQLite's own `max_page_count` limit, which fails writes with SQLITE_FULL exactly as a
full disk does) and the file locked by another connection holding an exclusive transaction.
Every message the dispatcher took ends answered or told; one that could not be recorded is
refused with a "please resend" at once; nothing is silently lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core import intake
from bot.core.dispatcher import APOLOGY
from storage import inbox
from storage.sqlite import engine
from testing.fakes.openai_fake import FakeOpenAI
from tests.harness import Harness, make_settings
from tests.test_reliability import replies_by_event


@pytest.fixture(autouse=True)
def short_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "BUSY_TIMEOUT_MS", 100)
    monkeypatch.setattr(intake, "WAITS", (0.05, 0.1))


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another program holding the database file's write lock."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield conn
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        conn.close()


def db_path(tmp_path: Path) -> Path:
    return tmp_path / "switchboard.db"


async def test_a_locked_database_refuses_with_resend_then_recovers(
    fake: FakeOpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await Harness.start(make_settings(fake.base_url, tmp_path))
    try:
        assert await bot.say("before") == "echo: before"
        with exclusive_lock(db_path(tmp_path)), caplog.at_level(logging.ERROR):
            refused = bot.message("while locked")
            assert await bot.app.dispatcher.submit(refused) is False
        assert replies_by_event(bot)[refused.message_id] == [intake.RESEND]
        assert any(
            r.levelno == logging.ERROR and "could not be recorded" in r.getMessage()
            for r in caplog.records
        )
        assert "locked" in caplog.text

        # A lock released while the retries wait: the message is recorded and answered.
        late = bot.message("lock released soon")
        with exclusive_lock(db_path(tmp_path)) as holder:
            submitted = asyncio.ensure_future(bot.app.dispatcher.submit(late))
            await asyncio.sleep(0.12)  # into the first retry's pause
            holder.execute("ROLLBACK")
            assert await submitted is True
        await bot.app.dispatcher.wait_idle()
        assert replies_by_event(bot)[late.message_id] == ["echo: lock released soon"]
        assert await bot.say("after") == "echo: after"
        assert await inbox.pending(bot.app.db) == []
    finally:
        await bot.close()


async def test_a_full_disk_loses_no_message(fake: FakeOpenAI, tmp_path: Path) -> None:
    bot = await Harness.start(make_settings(fake.base_url, tmp_path))
    try:
        assert await bot.say("before") == "echo: before"
        pages = (await bot.app.db.fetch_one("PRAGMA page_count"))[0]
        await bot.app.db.execute(f"PRAGMA max_page_count = {pages}")  # no room to grow
        sent = []
        for n in range(40):  # long messages: they fill what room is left, then writes fail
            message = bot.message(f"message {n} " + "x" * 3000)
            sent.append(message)
            await bot.app.dispatcher.submit(message)
        await bot.app.dispatcher.wait_idle()
        delivered = replies_by_event(bot)
        outcomes = []
        for message in sent:
            (text,) = delivered[message.message_id]  # each exactly one reply: none lost
            if text == f"echo: {message.text}":
                outcomes.append("answered")
            else:
                assert text in (intake.RESEND, APOLOGY), text
                outcomes.append("told")
        assert "told" in outcomes  # the disk did fill up
        assert any(delivered[m.message_id] == [intake.RESEND] for m in sent)

        await bot.app.db.execute("PRAGMA max_page_count = 1073741823")  # room again
        assert await bot.say("after") == "echo: after"
    finally:
        await bot.close()


async def test_slack_http_acks_after_the_event_is_recorded_or_says_resend(
    tmp_path: Path,
) -> None:
    """Slack's HTTP Events API, through slack-bolt: the 200 comes only after the event is in
    the inbox; one that cannot be recorded gets "please resend" in its thread."""
    from testing.fakes import slack_payloads as P
    from tests.test_slack_adapter import start_env, stop_env, until

    env = await start_env(tmp_path, socket_mode=False)
    try:
        mention = P.app_mention("recorded first")
        status, _ = await env.slack.deliver_http(
            env.url, P.event_callback(mention, event_id="EvRec")
        )
        assert status == 200
        row = await env.app.db.fetch_one(  # on record by the time Slack got its 200
            "SELECT payload FROM processed_events WHERE event_id = 'EvRec'"
        )
        assert row is not None and row["payload"]
        await until(lambda: env.bot_texts(P.CHANNEL_ID, mention["ts"]) == ["echo: recorded first"])

        locked = P.app_mention("while locked")
        with exclusive_lock(tmp_path / "switchboard.db"):
            status, _ = await env.slack.deliver_http(
                env.url, P.event_callback(locked, event_id="EvLock")
            )
        assert status == 200
        await until(lambda: env.bot_texts(P.CHANNEL_ID, locked["ts"]) == [intake.RESEND])
    finally:
        await stop_env(env)
