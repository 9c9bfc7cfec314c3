"""Issue #20: a clean start and one ending per event. The real app on a real SQLite file
against the loopback fake OpenAI: messages arriving while the bot starts (50 times over) are
answered exactly once; every accepted event gets exactly one ending (answered, told or
dropped), and the ledger's check at start-up and in /status reports events without one."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.app import App
from storage.events import claim_event
from storage.inbox import encode_event
from testing.fakes.openai_fake import FakeOpenAI
from tests.harness import PLATFORM, Harness, make_settings
from tests.recording import RecordingOutbox
from tests.test_ops import ADMIN
from tests.test_reliability import replies_by_event


async def test_messages_sent_while_the_bot_starts_are_answered_once_50_times(
    fake: FakeOpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for round_ in range(50):
        settings = make_settings(fake.base_url, tmp_path / f"start{round_}")
        app = await App.create(settings)
        outbox = RecordingOutbox()
        app.dispatcher.register_outbox(PLATFORM, outbox)
        bot = Harness(app, outbox)
        try:
            sent = [bot.message(f"early {round_}.{n}") for n in range(3)]
            # The adapters deliver while start-up recovery runs.
            results = await asyncio.gather(
                *(app.dispatcher.submit(m) for m in sent[:2]),
                app.recover(),
                app.dispatcher.submit(sent[2]),
            )
            assert results[:2] == [True, True] and results[3] is True
            assert results[2] == 0  # nothing was taken for a previous process's
            await app.dispatcher.wait_idle()
            delivered = replies_by_event(bot)
            assert delivered == {m.message_id: [f"echo: {m.text}"] for m in sent}
            rows = await app.db.fetch_all("SELECT event_id, status FROM runs")
            assert sorted((r["event_id"], r["status"]) for r in rows) == sorted(
                (m.event_id, "completed") for m in sent
            )
        finally:
            await app.shutdown()
    assert "UNIQUE constraint" not in caplog.text
    assert "left unfinished by the previous process" not in caplog.text


async def test_every_event_gets_one_ending_and_the_check_finds_none_missing(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    bot = await Harness.start(
        make_settings(fake.base_url, tmp_path, SWITCHBOARD_MAX_INPUT_CHARS=1000)
    )
    try:
        assert await bot.say("hello") == "echo: hello"
        fake.fail_next("unauthorized")
        assert "OPENAI_API_KEY" in await bot.say("this one fails")
        assert "1,001 characters" in await bot.say("z" * 1001)  # refused: told why
        found = await bot.app.ledger.check(stale_after=3600)
        assert found.outcomes == {"answered": 1, "told": 2} and found.without == 0
        rows = await bot.app.db.fetch_all(
            "SELECT outcome FROM processed_events WHERE payload IS NOT NULL"
        )
        assert all(r["outcome"] in ("answered", "told") for r in rows)
        text = await bot.command("status", actor=ADMIN)
        assert "Events, last hour: 1 answered, 2 told;" in text
        assert "every event has an ending" in text
    finally:
        await bot.close()


async def test_an_event_no_process_will_end_is_reported_at_start_and_in_status(
    fake: FakeOpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An event a dead process accepted for a platform this process does not serve: recovery
    cannot take it up, so it has no ending coming; the check says so."""
    from storage.connect import open_database

    settings = make_settings(fake.base_url, tmp_path)
    db = await open_database(settings.database_url)
    orphan = Harness(None, None).message("from elsewhere", event_id="EvElsewhere")  # type: ignore[arg-type]
    orphan = type(orphan)(
        orphan.key.__class__("elsewhere", "W1", "C1", ""),
        orphan.actor,
        orphan.text,
        orphan.event_id,
        message_id=orphan.message_id,
    )
    assert await claim_event(db, "elsewhere", "EvElsewhere", encode_event(orphan), owner="gone:1")
    await db.close()

    with caplog.at_level(logging.ERROR):
        bot = await Harness.start(settings)
    try:
        assert any(
            r.levelno == logging.ERROR
            and "1 accepted events have no ending" in r.getMessage()
            and "elsewhere:EvElsewhere" in r.getMessage()
            for r in caplog.records
        )
        text = await bot.command("status", actor=ADMIN)
        assert "*1 without an ending*" in text
    finally:
        await bot.close()
