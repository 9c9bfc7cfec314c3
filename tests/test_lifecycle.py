"""Core layer: the run lifecycle (/cancel, expiry, /steps, /reset, statuses on the run row) and the
durable inbox replayed after a stop, with the real openai SDK against the loopback fake OpenAI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from bot.core.ledger import ResponseStarted, ToolRound, ToolRoundDone
from bot.core.recovery import INTERRUPTED
from bot.core.types import Actor, Attachment, CommandCall, ConversationKey, Inbound
from bot.features.control import render_steps
from storage import inbox, runs
from storage.connect import open_database
from storage.db import Database
from storage.events import claim_event
from storage.steps import load_steps, save_steps
from testing.fakes.openai_fake import FakeOpenAI
from tests.harness import KEY, USER, Harness, make_settings

LONG = " ".join(f"word{n}" for n in range(60))


async def until(predicate: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def run_rows(db: Database) -> list[dict]:
    return [dict(r) for r in await db.fetch_all("SELECT * FROM runs ORDER BY id")]


async def pending_ids(db: Database) -> list[str]:
    return [entry.event.event_id for entry in await inbox.pending(db)]


def inbound(text: str, event_id: str, **fields: Any) -> Inbound:
    return Inbound(KEY, USER, text, event_id, message_id=event_id, **fields)


def call(name: str, key: ConversationKey = KEY, actor: Actor = USER, text: str = "") -> CommandCall:
    return CommandCall(key, actor, name, f"cmd-{name}-{time.monotonic_ns()}", text=text)


async def test_cancel_stops_the_answer_mid_stream(bot: Harness, fake: FakeOpenAI) -> None:
    fake.answer = lambda turn: LONG
    fake.delta_delay = 0.05
    dispatcher = bot.app.dispatcher
    assert await dispatcher.submit(bot.message("talk a lot", event_id="EvLong"))
    await until(lambda: bool(bot.outbox.streams) and len(bot.outbox.streams[-1].deltas) >= 3)
    assert await dispatcher.submit(call("cancel"))
    await dispatcher.wait_idle()

    stream = bot.outbox.streams[-1]
    shown = "".join(stream.deltas)
    assert stream.final is not None and stream.final.endswith("(cancelled by @alice)")
    assert stream.final.startswith(shown.rstrip()) and LONG not in stream.final
    assert bot.outbox.replies[-1].text == "Stopped the answer in progress."
    assert bot.outbox.replies[-1].ephemeral
    (run,) = await run_rows(bot.app.db)
    assert run["status"] == "cancelled" and "alice" in run["error"]
    if bot.app.settings.backend == "responses":  # a background response: stopped at OpenAI too
        assert run["response_id"]  # recorded when the backend reported it, before the end
        assert fake.cancelled == {run["response_id"]}
    else:  # a chat completion can be neither cancelled nor recovered: its id is not written
        assert run["response_id"] is None
    assert await pending_ids(bot.app.db) == []
    assert len(bot.app.dispatcher._running) == 0
    fake.delta_delay = 0
    assert await bot.say("and now?") == LONG


async def test_cancel_with_nothing_running_says_so(bot: Harness) -> None:
    reply = await bot.command("cancel")
    assert "Nothing is being answered here" in reply
    assert await run_rows(bot.app.db) == []


async def test_cancel_from_channel_level_finds_the_callers_answer_in_a_thread(
    bot: Harness, fake: FakeOpenAI
) -> None:
    """Slack slash commands carry no thread: /cancel in the channel stops the caller's answer in
    a thread of that channel."""
    fake.answer = lambda turn: LONG
    fake.delta_delay = 0.05
    thread = ConversationKey(KEY.platform, KEY.workspace, KEY.channel, "1700000000.000100")
    assert await bot.app.dispatcher.submit(bot.message("in a thread", key=thread))
    await until(lambda: bool(bot.outbox.streams) and bool(bot.outbox.streams[-1].deltas))
    assert await bot.app.dispatcher.submit(call("cancel", key=KEY))
    await bot.app.dispatcher.wait_idle()
    (run,) = await run_rows(bot.app.db)
    assert run["status"] == "cancelled" and run["thread"] == thread.thread


async def test_an_answer_over_the_time_limit_is_stopped_and_marked_expired(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    bot = await Harness.start(
        make_settings(fake.base_url, tmp_path, SWITCHBOARD_RUN_TIMEOUT_SECONDS=0.5)
    )
    try:
        fake.latency = 1.5
        await bot.app.dispatcher.submit(bot.message("slow one"))
        await bot.app.dispatcher.submit(bot.message("waits behind it"))
        await bot.app.dispatcher.wait_idle()
        first, second = await run_rows(bot.app.db)
        assert first["status"] == "expired" and second["status"] == "expired"
        stream = bot.outbox.streams[0]
        assert stream.final == "(This answer took longer than 0.5 s and was stopped.)"
        waited = bot.outbox.replies[-1].text
        assert "waited longer than 0.5 s" in waited and "send it again" in waited
        assert await pending_ids(bot.app.db) == []
        fake.latency = 0
        assert await bot.say("quick") == "echo: quick"
    finally:
        await bot.close()


async def test_the_run_row_follows_the_lifecycle(bot: Harness, fake: FakeOpenAI) -> None:
    """queued → in_progress → requires_action (tools) → in_progress → completed, with the
    response id recorded as soon as the backend reports it."""
    db = bot.app.db
    run = await bot.app.ledger.open(KEY, user_id="U1", event_id="e-life", kind="chat")
    run_id = run.id
    assert (await runs.get_run(db, run_id)).status == "queued"  # type: ignore[union-attr]
    await run.start(backend="responses", model="m", conversation_id=None)
    await run.emit(ResponseStarted("resp_123"))
    await run.emit(ToolRound(("lookup",)))
    record = await runs.get_run(db, run_id)
    assert record is not None
    assert (record.status, record.response_id) == ("requires_action", "resp_123")
    await run.emit(ToolRoundDone())
    assert (await runs.get_run(db, run_id)).status == "in_progress"  # type: ignore[union-attr]
    await runs.close_run(db, run_id, "completed")
    await run.emit(ToolRoundDone())  # a late report never reopens a finished run
    assert (await runs.get_run(db, run_id)).status == "completed"  # type: ignore[union-attr]


async def test_steps_shows_what_the_last_answer_did(bot: Harness) -> None:
    assert "no steps" in await bot.command("steps")
    await bot.say("plain question")
    assert "answered directly" in await bot.command("steps")
    (run,) = await run_rows(bot.app.db)
    code = "import pandas as pd\nprint(pd.read_csv('data.csv').describe())"
    async with bot.app.db.transaction() as tx:
        await save_steps(
            tx,
            run["id"],
            [
                ("code_interpreter_call", "python", code),
                ("function_call", 'get_weather({"city": "Paris"})', "x" * 5000),
                ("web_search_call", "search: weather Paris today", ""),
            ],
        )
    shown = await bot.command("steps")
    assert shown.startswith("What I did for the last answer here:")
    assert "1. *Ran code*: python\n```\nimport pandas as pd" in shown
    assert '2. *Called a tool*: get_weather({"city": "Paris"})' in shown
    assert "3,500 more characters" in shown and "3. *Searched the web*" in shown
    assert shown.count("```") % 2 == 0
    assert len(await load_steps(bot.app.db, run["id"])) == 3


def test_steps_rendering_keeps_code_blocks_closed_and_bounded() -> None:
    steps = [("code_interpreter_call", "python", "```\n" + "y = 1\n" * 400)] * 20
    text = render_steps("completed", steps)
    assert len(text) < 12_200 and text.count("```") % 2 == 0
    assert text.endswith("…(more steps left out)")
    assert render_steps("cancelled", []).endswith("none.")


async def test_reset_archives_and_deletes_the_openai_conversation(
    bot: Harness, fake: FakeOpenAI
) -> None:
    fake.answer = lambda turn: f"{len(turn.messages)} messages"
    await bot.say("one")
    assert await bot.say("two") == "3 messages"
    server_ids = list(fake.conversations)
    assert "new conversation" in await bot.command("reset")
    if bot.app.settings.backend == "responses":
        assert len(server_ids) == 1 and fake.conversations == {}
        assert any(r.method == "DELETE" for r in fake.requests)
    assert await bot.say("three") == "1 messages"
    rows = await bot.app.db.fetch_all("SELECT archived_at FROM conversations ORDER BY id")
    assert [r["archived_at"] is not None for r in rows] == [True, False]


async def test_reset_cancels_the_answer_in_progress_first(bot: Harness, fake: FakeOpenAI) -> None:
    fake.answer = lambda turn: LONG
    fake.delta_delay = 0.05
    await bot.app.dispatcher.submit(bot.message("long one"))
    await until(lambda: bool(bot.outbox.streams) and bool(bot.outbox.streams[-1].deltas))
    await bot.app.dispatcher.submit(call("reset"))
    await bot.app.dispatcher.wait_idle()
    assert bot.outbox.streams[-1].final.endswith("(cancelled by @alice)")  # type: ignore[union-attr]
    assert "new conversation" in bot.outbox.shown[-1]
    (run,) = await run_rows(bot.app.db)
    assert run["status"] == "cancelled"


async def test_a_failing_openai_delete_does_not_undo_the_reset(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    bot = await Harness.start(make_settings(fake.base_url, tmp_path))
    try:
        await bot.say("one")
        fake.fail_next("server_error", endpoint="conversations")
        assert "new conversation" in await bot.command("reset")
        assert await bot.say("two") == "echo: two"
    finally:
        await bot.close()


# -- the durable inbox ----------------------------------------------------------------------


async def test_events_are_in_the_inbox_until_handled(bot: Harness, fake: FakeOpenAI) -> None:
    fake.latency = 0.5
    await bot.app.dispatcher.submit(bot.message("hello", event_id="EvIn"))
    await bot.app.dispatcher.submit(bot.message("   ", event_id="EvEmpty"))
    assert await pending_ids(bot.app.db) == ["EvIn", "EvEmpty"]
    await bot.app.dispatcher.wait_idle()
    assert await pending_ids(bot.app.db) == []
    assert bot.outbox.shown[0] == "echo: hello" and "empty message" in bot.outbox.shown[1]


async def test_after_a_stop_unfinished_events_are_answered_or_explained_in_order(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    """A stop in the middle: the answer that had shown text is explained, the ones never started
    are answered by the next process, in order per conversation; nothing is answered twice.
    (Chat backend: nothing runs on at the server; for the responses backend's recovery see
    the next test.)"""
    settings = make_settings(
        fake.base_url, tmp_path, SWITCHBOARD_SHUTDOWN_GRACE=0.1, SWITCHBOARD_BACKEND="chat"
    )
    other = ConversationKey(KEY.platform, KEY.workspace, "C2")
    first = await Harness.start(settings)
    fake.answer = lambda turn: LONG
    fake.delta_delay = 0.2
    dispatcher = first.app.dispatcher
    await dispatcher.submit(first.message("started", event_id="Ev1"))
    await dispatcher.submit(first.message("queued a", event_id="Ev2"))
    await dispatcher.submit(first.message("queued b", event_id="Ev3"))
    await until(lambda: bool(first.outbox.streams) and bool(first.outbox.streams[0].deltas))
    fake.latency, fake.delta_delay = 30, 0  # the other conversation never gets an answer
    await dispatcher.submit(first.message("elsewhere", key=other, event_id="Ev4"))
    await until(lambda: len(fake.requests) >= 2)
    await first.close()

    fake.latency = 0
    fake.answer = lambda turn: "echo: " + turn.messages[-1][1]
    second = await Harness.start(settings)
    try:
        await second.app.dispatcher.wait_idle()
        (told,) = second.outbox.replies
        assert told.text == INTERRUPTED and told.in_reply_to == "Ev1" and told.key == KEY
        assert second.outbox.shown[0] == INTERRUPTED  # before the answers queued behind it
        finals = sorted(s.final or "" for s in second.outbox.streams)
        assert finals == ["echo: elsewhere", "echo: queued a", "echo: queued b"]
        in_key = [s.final for s in second.outbox.streams if s.key == KEY]
        assert in_key == ["echo: queued a", "echo: queued b"]
        assert await pending_ids(second.app.db) == []
        # A redelivery of an event handled across the restart is still a duplicate.
        assert not await second.app.dispatcher.submit(second.message("x", event_id="Ev2"))
        statuses = {r["event_id"]: r["status"] for r in await run_rows(second.app.db)}
        assert statuses == {
            "Ev1": "interrupted",
            "Ev2": "completed",
            "Ev3": "completed",
            "Ev4": "completed",
        }
    finally:
        await second.close()


async def test_recovery_skips_answered_events_and_asks_for_lost_files(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    """What a crash can leave: an event whose answer completed but was not marked done (not
    answered again), a /cancel (dropped), and a message with a file (its bytes are gone: the
    user is asked to resend)."""
    settings = make_settings(fake.base_url, tmp_path)
    db = await open_database(settings.database_path)
    answered = inbound("answered already", event_id="EvDone")
    run_id = await runs.create_run(db, KEY, user_id="U1", event_id="EvDone", kind="chat")
    await runs.close_run(db, run_id, "completed")

    async def never() -> bytes:
        raise AssertionError("not fetched")

    with_file = inbound(
        "look at this",
        event_id="EvFile",
        attachments=(Attachment("image", "image/png", "chart.png", 10, never),),
    )
    for event in (answered, call("cancel"), with_file):
        assert await claim_event(db, event.key.platform, event.event_id, inbox.encode_event(event))
    await db.close()

    bot = await Harness.start(settings)
    try:
        await bot.app.dispatcher.wait_idle()
        assert [r.text for r in bot.outbox.replies] == [
            "I was restarted before I could finish with your message and its files (chart.png); "
            "files are not kept across a restart, so please send it again."
        ]
        assert fake.requests == [] and await pending_ids(bot.app.db) == []
    finally:
        await bot.close()


def test_events_survive_the_round_trip_through_the_inbox() -> None:
    async def fetch() -> bytes:
        return b""

    message = inbound(
        "héllo", event_id="E1", attachments=(Attachment("audio", "audio/ogg", "v.ogg", 3, fetch),)
    )
    decoded = inbox.decode_event(inbox.encode_event(message))
    assert decoded == message and decoded.received_at == message.received_at
    command = CommandCall(KEY, USER, "imagine", "E2", text="a cat", options={"size": "auto"})
    assert inbox.decode_event(inbox.encode_event(command)) == command


async def test_an_answer_the_server_finished_meanwhile_is_delivered_after_a_restart(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    """Responses backend, background mode: the process stops mid-answer, the response runs on
    at OpenAI; the next process recovers it by its id and delivers it instead of a notice."""
    settings = make_settings(fake.base_url, tmp_path, SWITCHBOARD_SHUTDOWN_GRACE=0.1)
    first = await Harness.start(settings)
    fake.answer = lambda turn: LONG
    fake.delta_delay = 0.1
    await first.app.dispatcher.submit(first.message("tell me everything", event_id="EvBg"))
    await until(lambda: bool(first.outbox.streams) and bool(first.outbox.streams[0].deltas))
    await first.close()
    fake.delta_delay = 0
    (response_id,) = [r for r, obj in fake.responses.items() if obj.get("background")]
    await until(lambda: fake.responses[response_id]["status"] == "completed")

    second = await Harness.start(settings)
    try:
        await second.app.dispatcher.wait_idle()
        (delivered,) = second.outbox.replies
        assert delivered.text == LONG and delivered.in_reply_to == "EvBg"
        assert second.outbox.streams == []  # not generated a second time
        (run,) = await run_rows(second.app.db)
        assert run["status"] == "completed" and run["response_id"] == response_id
        usage = await second.app.db.fetch_one("SELECT output_tokens FROM usage")
        assert usage is not None and usage["output_tokens"] > 0
        assert await pending_ids(second.app.db) == []
    finally:
        await second.close()


async def test_after_a_restart_a_response_still_running_is_cancelled_and_the_user_told(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    """Responses backend: the answer had shown text and is still running at OpenAI when the
    next process starts: it is cancelled there (no answer runs on unseen) and the user told."""
    settings = make_settings(fake.base_url, tmp_path, SWITCHBOARD_SHUTDOWN_GRACE=0.1)
    first = await Harness.start(settings)
    fake.answer = lambda turn: LONG
    fake.delta_delay = 0.5
    await first.app.dispatcher.submit(first.message("a long one", event_id="EvRun"))
    await until(lambda: bool(first.outbox.streams) and bool(first.outbox.streams[0].deltas))
    await first.close()
    (response_id,) = list(fake.responses)

    second = await Harness.start(settings)
    try:
        await second.app.dispatcher.wait_idle()
        assert [r.text for r in second.outbox.replies] == [INTERRUPTED]
        assert fake.responses[response_id]["status"] == "cancelled"
    finally:
        await second.close()


async def test_a_message_too_old_by_the_restart_is_not_answered_but_explained(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    settings = make_settings(fake.base_url, tmp_path, SWITCHBOARD_RUN_TIMEOUT_SECONDS=60)
    db = await open_database(settings.database_path)
    old = Inbound(
        KEY, USER, "from before", "EvOld", message_id="EvOld", received_at=time.time() - 3600
    )
    assert await claim_event(db, KEY.platform, "EvOld", inbox.encode_event(old))
    await db.close()
    bot = await Harness.start(settings)
    try:
        await bot.app.dispatcher.wait_idle()
        (reply,) = bot.outbox.replies
        assert "waited longer than 60 s" in reply.text and reply.in_reply_to == "EvOld"
        assert fake.requests == []
        (run,) = await run_rows(bot.app.db)
        assert run["status"] == "expired"
    finally:
        await bot.close()


async def test_running_answers_stop_and_lookup() -> None:
    """Stopping: before the work starts, during it, and too late; and which answer a command at
    channel level finds among those running in the channel's threads."""
    from bot.core.ledger import Run, RunLedger
    from bot.core.running import AnswerStopped, RunningAnswer, RunningAnswers

    def answering(key: ConversationKey, run_id: int, actor: Actor) -> RunningAnswer:
        """A running answer whose run is never written to (stopping is all in memory)."""
        return RunningAnswer(key, Run(cast(RunLedger, None), run_id, key, "chat"), actor)

    def thread(ts: str) -> ConversationKey:
        return ConversationKey(KEY.platform, KEY.workspace, KEY.channel, ts)

    early = answering(thread("1"), 1, USER)
    assert early.stop("cancelled", by="bob") and not early.stop("expired")
    work = asyncio.sleep(10)
    with pytest.raises(AnswerStopped) as stopped:
        await early.run(work)
    assert stopped.value.cause == "cancelled" and early.stopped_by == "bob"

    during = answering(thread("2"), 2, USER)
    task = asyncio.ensure_future(during.run(asyncio.sleep(10)))
    await asyncio.sleep(0)
    assert during.stop("expired")
    with pytest.raises(AnswerStopped):
        await task

    late = answering(thread("3"), 3, USER)
    assert await late.run(asyncio.sleep(0, "done")) == "done"
    late.settled = True
    assert not late.stop("cancelled")

    registry = RunningAnswers()
    bob = Actor("U2", "bob")
    mine, theirs = answering(thread("4"), 4, USER), answering(thread("5"), 5, bob)
    registry.add(mine)
    registry.add(theirs)
    assert registry.find(thread("5"), USER.id) is theirs  # the exact conversation first
    assert registry.find(KEY, USER.id) is mine  # channel level: the caller's own
    assert registry.find(KEY, "U3") is None  # two others running: ambiguous, none
    registry.remove(mine)
    assert registry.find(KEY, "U3") is theirs  # the only one there
    assert registry.find(thread("6"), USER.id) is None  # another thread: never a fallback
