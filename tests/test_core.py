"""Core layer: dispatcher + capabilities + storage on a temporary database, a recording adapter,
and the real openai SDK talking to the loopback fake OpenAI."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.core.types import Actor, Addressing, ConversationKey
from storage import configs, runs
from storage.connect import open_database
from storage.db import Database
from testing.fakes.openai_fake import FakeOpenAI, FakeTurn, default_answer
from testing.waiting import until
from tests.harness import KEY, USER, Harness, make_settings

BACKENDS = ["responses", "chat"]


def asking(fake: FakeOpenAI) -> bool:
    """The bot has sent its request for an answer (Responses or Chat Completions)."""
    return any(r.path.endswith(("/responses", "/chat/completions")) for r in fake.requests)


async def all_runs(db: Database) -> list[dict]:
    rows = await db.fetch_all(
        "SELECT runs.*, usage.input_tokens, usage.output_tokens, usage.cost_usd FROM runs "
        "LEFT JOIN usage ON usage.run_id = runs.id ORDER BY runs.id"
    )
    return [dict(row) for row in rows]


async def test_a_message_is_answered_streamed_and_recorded(bot: Harness, fake: FakeOpenAI) -> None:
    answer = await bot.say("hello there friend")
    assert answer == "echo: hello there friend"
    stream = bot.outbox.streams[-1]
    assert len(stream.deltas) > 1 and "".join(stream.deltas) == answer
    (run,) = await all_runs(bot.app.db)
    assert run["status"] == "completed"
    assert run["kind"] == "chat" and run["user_id"] == USER.id
    assert run["started_at"] and run["finished_at"] and run["response_id"]
    assert run["input_tokens"] > 0 and run["output_tokens"] > 0
    assert run["cost_usd"] is not None and run["cost_usd"] > 0


async def test_the_conversation_is_the_context(bot: Harness, fake: FakeOpenAI) -> None:
    fake.answer = lambda turn: " | ".join(text for _, text in turn.messages)
    await bot.say("first")
    second = await bot.say("second")
    assert second == "first | first | second"
    other = await bot.say("elsewhere", key=ConversationKey("test", "W1", "C2"))
    assert other == "elsewhere"


async def test_history_survives_a_restart(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.answer = lambda turn: f"{len(turn.messages)} messages"
    for backend in BACKENDS:
        settings = make_settings(fake.base_url, tmp_path / backend, SWITCHBOARD_BACKEND=backend)
        first = await Harness.start(settings)
        assert await first.say("one") == "1 messages"
        await first.close()
        second = await Harness.start(settings)
        assert await second.say("two") == "3 messages"
        await second.close()


async def test_chat_backend_trims_history_but_keeps_instructions(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    settings = make_settings(
        fake.base_url, tmp_path, SWITCHBOARD_BACKEND="chat", SWITCHBOARD_HISTORY_TOKENS=600
    )
    bot = await Harness.start(settings)
    try:
        for n in range(8):
            await bot.say(f"message {n} " + "x" * 400)
        last: FakeTurn = fake.turns[-1]
        # the instructions first, then the summary of what no longer fits
        assert last.instructions is not None
        assert last.instructions.startswith(settings.instructions + "\n\nSummary of the")
        assert len(last.messages) < 16
        assert last.messages[-1][1].startswith("message 7")
    finally:
        await bot.close()


async def test_guards_drop_self_bots_unaddressed_and_redeliveries(
    bot: Harness, fake: FakeOpenAI
) -> None:
    dispatcher = bot.app.dispatcher
    assert not await dispatcher.submit(bot.message("me", is_self=True))
    assert not await dispatcher.submit(bot.message("beep", actor=Actor("B1", is_bot=True)))
    # a channel message without a mention, and a thread reply where the bot takes no part
    assert not await dispatcher.submit(bot.message("chatter", addressing=Addressing()))
    assert not await dispatcher.submit(bot.message("go on", addressing=Addressing(in_thread=True)))
    assert await dispatcher.submit(bot.message("once", event_id="Ev1"))
    assert not await dispatcher.submit(bot.message("once", event_id="Ev1"))
    await dispatcher.wait_idle()
    assert bot.outbox.shown == ["echo: once"]


async def test_messages_of_one_conversation_are_answered_in_order(
    bot: Harness, fake: FakeOpenAI
) -> None:
    fake.delta_delay = 0.002
    for n in range(5):
        await bot.app.dispatcher.submit(bot.message(f"m{n}"))
    await bot.app.dispatcher.wait_idle()
    assert bot.outbox.shown == [f"echo: m{n}" for n in range(5)]


async def test_empty_message_gets_a_friendly_reply(bot: Harness, fake: FakeOpenAI) -> None:
    reply = await bot.say("   ")
    assert "empty message" in reply
    assert fake.requests == []
    assert await bot.say("now real") == "echo: now real"


async def test_a_100000_character_message_is_answered_whole(bot: Harness, fake: FakeOpenAI) -> None:
    fake.answer = lambda turn: f"got {len(turn.messages[-1][1])} characters"
    assert await bot.say("y" * 100_000) == "got 100000 characters"


async def test_a_message_over_the_limit_is_refused(fake: FakeOpenAI, tmp_path: Path) -> None:
    bot = await Harness.start(
        make_settings(fake.base_url, tmp_path, SWITCHBOARD_MAX_INPUT_CHARS=1000)
    )
    try:
        reply = await bot.say("z" * 1001)
        assert "1,001 characters" in reply and "1,000" in reply
        assert await all_runs(bot.app.db) == []
    finally:
        await bot.close()


FAULTS = [
    ("unauthorized", "OPENAI_API_KEY"),
    ("quota", "billing"),
    ("server_error", "server error"),
    ("timeout", "too long"),
    ("break", "lost the connection"),
    ("failed", "could not finish"),
]


@pytest.mark.parametrize(("kind", "words"), FAULTS)
async def test_faults_get_a_clear_message_and_the_next_message_is_answered(
    bot: Harness, fake: FakeOpenAI, kind: str, words: str
) -> None:
    if kind == "failed" and bot.app.settings.backend == "chat":
        pytest.skip("response.failed exists only in the Responses API")
    retries = 0 if kind in ("unauthorized", "quota", "failed", "break") else 2
    fake.fail_next(kind, times=1 + retries)
    reply = await bot.say("hello")
    assert words in reply, reply
    (run,) = await all_runs(bot.app.db)
    assert run["status"] == "failed" and run["error"]
    assert await bot.say("again") == "echo: again"


async def test_quota_exhaustion_is_not_retried(bot: Harness, fake: FakeOpenAI) -> None:
    fake.fail_next("quota", times=5)
    await bot.say("hello")
    assert len(fake.requests) == 1


async def test_rate_limit_is_retried_with_retry_after(bot: Harness, fake: FakeOpenAI) -> None:
    fake.fail_next("rate_limit", times=2, retry_after=0.01)
    assert await bot.say("hello") == "echo: hello"


async def test_rate_limit_exhausted_says_busy(bot: Harness, fake: FakeOpenAI) -> None:
    fake.fail_next("rate_limit", times=3, retry_after=0.01)  # the first try and both retries
    assert "busy" in await bot.say("hello")
    assert await bot.say("again") == "echo: again"


async def test_a_broken_stream_keeps_the_partial_text_marked_unfinished(
    bot: Harness, fake: FakeOpenAI
) -> None:
    fake.answer = lambda turn: "one two three four five six seven eight nine ten eleven twelve"
    fake.fail_next("break")
    await bot.say("hello")
    broken = bot.outbox.streams[-1]
    assert broken.aborted and broken.final is None and broken.deltas


async def test_incomplete_answer_is_delivered_with_a_notice(bot: Harness, fake: FakeOpenAI) -> None:
    if bot.app.settings.backend == "chat":
        pytest.skip("incomplete responses exist only in the Responses API")
    fake.answer = lambda turn: "a fairly long answer that gets cut"
    fake.fail_next("incomplete")
    reply = await bot.say("hello")
    assert "output token limit" in reply


async def test_a_model_the_server_rejects_is_named(bot: Harness, fake: FakeOpenAI) -> None:
    await configs.save_overrides(bot.app.db, KEY, {"model": "gpt-nonexistent"}, updated_by="U9")
    reply = await bot.say("hello")
    assert "gpt-nonexistent" in reply
    await configs.save_overrides(bot.app.db, KEY, {}, updated_by="U9")
    assert await bot.say("again") == "echo: again"


async def test_channel_config_applies_from_the_next_turn(bot: Harness, fake: FakeOpenAI) -> None:
    await bot.say("before")
    assert fake.turns[-1].instructions == bot.app.settings.instructions
    workspace_key = ConversationKey(KEY.platform, KEY.workspace, "")
    await configs.save_overrides(
        bot.app.db,
        workspace_key,
        {"instructions": "Talk like a pirate."},
        updated_by="U9",
        workspace_wide=True,
    )
    await bot.say("workspace default")
    assert fake.turns[-1].instructions == "Talk like a pirate."
    await configs.save_overrides(
        bot.app.db, KEY, {"instructions": "Be terse.", "model": "gpt-6.1-sol"}, updated_by="U9"
    )
    await bot.say("after")
    assert fake.turns[-1].instructions == "Be terse."
    assert fake.turns[-1].model == "gpt-6.1-sol"


async def test_reset_starts_a_new_conversation(bot: Harness, fake: FakeOpenAI) -> None:
    fake.answer = lambda turn: f"{len(turn.messages)} messages"
    await bot.say("one")
    assert await bot.say("two") == "3 messages"
    assert "new conversation" in await bot.command("reset")
    assert await bot.say("three") == "1 messages"


async def test_unknown_command_is_explained(bot: Harness) -> None:
    reply = await bot.command("frobnicate")
    assert "/frobnicate" in reply and "/reset" in reply
    assert bot.outbox.replies[-1].ephemeral


async def test_a_bug_is_logged_once_with_key_and_event_and_the_user_gets_an_apology(
    bot: Harness, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    bot.outbox.fail_next_stream = RuntimeError("adapter bug")
    caplog.set_level(logging.INFO)
    reply = await bot.say("hello", event_id="EvBug")
    assert "Sorry" in reply
    lines = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 1
    assert "EvBug" in lines[0].getMessage() and str(KEY) in lines[0].getMessage()
    assert await bot.say("again") == "echo: again"


async def test_shutdown_marks_unfinished_answers_interrupted(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    bot = await Harness.start(
        make_settings(fake.base_url, tmp_path, SWITCHBOARD_SHUTDOWN_GRACE=0.1)
    )
    fake.latency = 5
    await bot.app.dispatcher.submit(bot.message("slow"))
    await until(lambda: asking(fake), what="the answer in flight")
    await bot.close()
    db = await open_database(tmp_path / "switchboard.db")
    try:
        (run,) = await all_runs(db)
        assert run["status"] == "interrupted"
    finally:
        await db.close()


async def test_shutdown_lets_answers_in_flight_finish(fake: FakeOpenAI, tmp_path: Path) -> None:
    bot = await Harness.start(make_settings(fake.base_url, tmp_path))
    fake.latency = 0.3
    await bot.app.dispatcher.submit(bot.message("slowish"))
    await until(lambda: asking(fake), what="the answer in flight")
    await bot.close()
    assert bot.outbox.shown == ["echo: slowish"]
    db = await open_database(tmp_path / "switchboard.db")
    try:
        (run,) = await all_runs(db)
        assert run["status"] == "completed"
    finally:
        await db.close()


async def test_runs_left_by_a_crash_are_marked_interrupted_at_start(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    db = await open_database(tmp_path / "switchboard.db")
    run_id = await runs.create_run(db, KEY, user_id="U1", event_id="e1", kind="chat")
    await db.close()
    bot = await Harness.start(make_settings(fake.base_url, tmp_path))
    try:
        record = await runs.get_run(bot.app.db, run_id)
        assert record is not None and record.status == "interrupted"
    finally:
        await bot.close()


async def test_a_message_waiting_for_its_lane_is_on_record_as_queued(
    bot: Harness, fake: FakeOpenAI
) -> None:
    go_on = asyncio.Event()

    async def held(turn: FakeTurn) -> str:
        await go_on.wait()
        return default_answer(turn)

    fake.answer = held
    await bot.app.dispatcher.submit(bot.message("first"))
    await bot.app.dispatcher.submit(bot.message("second"))
    await until(lambda: fake.turns, what="the first answer asked for")
    statuses = [run["status"] for run in await all_runs(bot.app.db)]
    assert statuses == ["in_progress", "queued"]
    go_on.set()
    await bot.app.dispatcher.wait_idle()
    statuses = [run["status"] for run in await all_runs(bot.app.db)]
    assert statuses == ["completed", "completed"]
