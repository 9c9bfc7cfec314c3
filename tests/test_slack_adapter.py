"""Wire layer of the Slack adapter: the real slack-bolt `AsyncApp` inside `SlackAdapter`, on
Socket Mode and on the HTTP Events API, against the loopback FakeSlack, with the real core
(`App`: dispatcher, lanes, storage, backend) behind it talking to the loopback FakeOpenAI."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adapters.slack import SlackAdapter
from adapters.slack.stream import UPDATE_INTERVAL
from adapters.slack.write_allowance import APPEND, UPDATE, WriteAllowance
from bot.app import App
from bot.core.commands import CommandTable
from bot.core.errors import UserError
from bot.core.types import CommandCall, ConversationKey, Event, Inbound, OutFile, Reply
from bot.text.split import SLACK
from testing.fakes import slack_payloads as P
from testing.fakes.openai_fake import FakeOpenAI
from testing.fakes.slack_fake import FakeSlack
from tests.harness import make_settings

BOT_TOKEN = (
    "xoxb-" + "1111111111-2222222222-SeCrEtBoTtOkEn"
)  # built, so no scanner takes it for real
APP_TOKEN = "xapp-1-A1-3333333333-SeCrEtApPtOkEn"
SECRET = "signing-secret-0123456789"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64


@dataclass
class Env:
    slack: FakeSlack
    openai: FakeOpenAI
    app: App
    adapter: SlackAdapter
    submitted: list[Event] = field(default_factory=list)
    refused: list[Event] = field(default_factory=list)  # submitted, and turned away by the core

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.adapter.http_port}/slack/events"

    async def settle(self, submitted: int, seconds: float = 5.0) -> None:
        """Wait until `submitted` events reached the dispatcher and every answer is done."""
        await until(lambda: len(self.submitted) >= submitted, seconds)
        await asyncio.wait_for(self.app.dispatcher.wait_idle(), seconds)

    def bot_texts(self, channel: str, thread: str | None = None) -> list[str]:
        if thread is None:
            messages = [m for m in self.slack.messages.get(channel, []) if "thread_ts" not in m]
        else:
            messages = self.slack.thread(channel, thread)
        return [m["text"] for m in messages if m.get("bot_id") == self.slack.bot_id]


async def until(predicate: Callable[[], Any], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def start_env(tmp_path: Path, *, socket_mode: bool = True, **overrides: Any) -> Env:
    slack = FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN, signing_secret=SECRET)
    await slack.start()
    openai = await FakeOpenAI().start()
    settings = make_settings(
        openai.base_url,
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN if socket_mode else None,
        SLACK_SIGNING_SECRET=None if socket_mode else SECRET,
        SLACK_API_URL=slack.api_url,
        SLACK_PORT=0,
        **overrides,
    )
    app = await App.create(settings)
    adapter = SlackAdapter(settings, app.dispatcher, http_host="127.0.0.1")
    env = Env(slack, openai, app, adapter)
    real_submit = app.dispatcher.submit

    async def recording_submit(event: Event) -> bool:
        accepted = await real_submit(event)
        if not accepted:
            env.refused.append(event)
        env.submitted.append(event)  # after submit: the job is queued once this is seen
        return accepted

    app.dispatcher.submit = recording_submit  # type: ignore[method-assign]
    await adapter.start()
    if socket_mode:
        await slack.wait_connected()
    return env


async def stop_env(env: Env) -> None:
    await env.app.drain()
    await env.adapter.close()
    await env.app.close()
    await env.openai.close()
    await env.slack.stop()


@contextlib.asynccontextmanager
async def slack_running(
    tmp_path: Path, *, slack_clean: bool = False, openai_clean: bool = False, **overrides: Any
) -> AsyncIterator[Env]:
    """A started environment (`start_env`), stopped on the way out; with `slack_clean` /
    `openai_clean`, the fake Slack then reports no internal error / the fake OpenAI no request
    or answer off its spec."""
    environment = await start_env(tmp_path, **overrides)
    yield environment
    await stop_env(environment)
    if slack_clean:
        assert environment.slack.internal_errors == []
    if openai_clean:
        assert environment.openai.spec_problems == []


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with slack_running(tmp_path, slack_clean=True) as environment:
        yield environment


@pytest.fixture
async def http_env(tmp_path: Path) -> AsyncIterator[Env]:
    environment = await start_env(tmp_path, socket_mode=False)
    yield environment
    await stop_env(environment)


# --------------------------------------------------------------------------- conversations


async def test_mention_gets_a_threaded_streamed_answer(env: Env) -> None:
    answer = " ".join(f"word{i}" for i in range(120))
    env.openai.answer = lambda turn: answer
    env.openai.delta_delay = 0.02  # ~2.4 s of streaming: flushes once a second
    mention = P.app_mention("tell me a story")
    envelope = await env.slack.send_event(mention)
    assert await env.slack.wait_ack(envelope, timeout=3) == {"envelope_id": envelope}
    await env.settle(1)

    (stream,) = env.slack.streams.values()
    assert stream.thread_ts == mention["ts"] and stream.channel == P.CHANNEL_ID
    assert (stream.recipient_user_id, stream.recipient_team_id) == (P.USER_ID, "T1")
    assert stream.state == "stopped" and stream.final_text == answer
    assert stream.calls[0] == "start" and stream.calls[-1] == "stop"
    assert "append" in stream.calls  # shown progressively, not all at the end
    assert env.bot_texts(P.CHANNEL_ID, mention["ts"]) == [answer]
    assert env.slack.statuses == []  # the first words came at once: no status flashed first
    # the model is told who asked, in a text part of its own
    assert env.openai.turns[-1].messages[-1] == ("user", "alice (<@UALICE>):\ntell me a story")
    assert len(env.slack.calls_to("auth.test")) == 1  # at start only: nothing before the ack
    (event,) = env.submitted
    assert isinstance(event, Inbound)
    assert event.key == ConversationKey("slack", "T1", P.CHANNEL_ID, mention["ts"])


async def test_a_slow_first_word_shows_the_thinking_status_first(env: Env) -> None:
    env.openai.latency = 1.3  # longer than STATUS_AFTER before the first words
    mention = P.app_mention("think hard")
    await env.slack.send_event(mention)
    await env.settle(1)
    (status,) = env.slack.statuses
    assert (status["channel_id"], status["thread_ts"], status["status"]) == (
        P.CHANNEL_ID,
        mention["ts"],
        "is thinking…",
    )
    status_call = env.slack.calls_to("assistant.threads.setStatus")[0]
    assert status_call.at < env.slack.calls_to("chat.startStream")[0].at
    (answer,) = env.bot_texts(P.CHANNEL_ID, mention["ts"])
    assert answer.startswith("echo: ") and answer.endswith("think hard")


async def test_a_thread_follow_up_keeps_its_context_without_a_mention(env: Env) -> None:
    # each message's last line (its words, after the line naming its author)
    env.openai.answer = lambda turn: " | ".join(text.splitlines()[-1] for _, text in turn.messages)
    mention = P.app_mention("first")
    await env.slack.send_event(mention)
    await env.settle(1)
    await env.slack.send_event(P.thread_reply("second", thread_ts=mention["ts"]))
    await env.settle(2)
    texts = env.bot_texts(P.CHANNEL_ID, mention["ts"])
    assert texts == ["first", "first | first | second"]

    # a reply in a thread the bot has no part in is not answered, nor a top-level message:
    # the adapter hands both over, the core turns them away
    other = P.message("a thread without the bot")
    env.slack.record_event(other)
    await env.slack.send_event(P.thread_reply("hello?", thread_ts=other["ts"]))
    await env.slack.send_event(P.message("nobody asked the bot"))
    await env.settle(4)
    await asyncio.sleep(0.3)
    assert len(env.submitted) == 4
    assert sorted(e.text for e in env.refused) == ["hello?", "nobody asked the bot"]
    assert env.bot_texts(P.CHANNEL_ID, other["ts"]) == []
    assert len(env.openai.turns) == 2


async def test_dm_is_one_conversation_answered_at_the_top_level(env: Env) -> None:
    env.openai.answer = lambda turn: f"{len(turn.messages)} messages so far"
    await env.slack.send_event(P.im_message("hi"))
    await env.settle(1)
    await env.slack.send_event(P.im_message("again"))
    await env.settle(2)
    assert env.bot_texts(P.DM_CHANNEL_ID) == ["1 messages so far", "3 messages so far"]
    assert all(e.key == ConversationKey("slack", "T1", P.DM_CHANNEL_ID, "") for e in env.submitted)
    assert env.slack.streams == {}  # top-level DM: posted and edited, not chat-streamed


async def test_ai_app_thread_gets_prompts_and_a_streamed_answer(env: Env) -> None:
    started = P.assistant_thread_started()
    thread_ts = started["assistant_thread"]["thread_ts"]
    env.slack.add_message(P.DM_CHANNEL_ID, "(assistant thread)", ts=thread_ts)
    await env.slack.wait_ack(await env.slack.send_event(started), timeout=3)
    await until(lambda: env.slack.suggested_prompts)
    prompts = env.slack.suggested_prompts[0]
    assert prompts["channel_id"] == P.DM_CHANNEL_ID and prompts["thread_ts"] == thread_ts
    assert len(prompts["prompts"]) >= 2

    await env.slack.send_event(P.im_message("what can you do?", thread_ts=thread_ts))
    await env.settle(1)
    (stream,) = env.slack.streams.values()
    assert stream.thread_ts == thread_ts and stream.final_text == "echo: what can you do?"
    assert env.submitted[0].key.thread == thread_ts


async def test_three_deliveries_of_one_event_and_the_mention_twin_give_one_answer(
    env: Env,
) -> None:
    mention = P.app_mention("only once please")
    for attempt in range(3):
        envelope = await env.slack.send_event(
            mention,
            event_id="Ev0REDELIVER",
            retry_attempt=attempt,
            retry_reason="timeout" if attempt else "",
        )
        await env.slack.wait_ack(envelope, timeout=3)
    # Slack also sends the same mention as a `message` event, with another event id
    await env.slack.send_event(P.message(mention["text"], ts=mention["ts"]))
    await env.settle(3)
    await asyncio.sleep(0.2)
    assert env.bot_texts(P.CHANNEL_ID, mention["ts"]) == ["echo: only once please"]
    assert len(env.slack.streams) == 1
    assert len(env.openai.turns) == 1


async def test_a_429_on_posting_is_retried(env: Env) -> None:
    env.slack.rate_limit_next("chat.postMessage", times=1, retry_after=0)
    await env.slack.send_event(P.im_message("are you there?"))
    await env.settle(1, seconds=8)
    assert env.bot_texts(P.DM_CHANNEL_ID) == ["echo: are you there?"]
    assert [c.status for c in env.slack.calls_to("chat.postMessage")] == [429, 200]


async def test_a_socket_disconnect_reconnects_and_keeps_serving(env: Env) -> None:
    await env.slack.disconnect_socket("refresh_requested")
    await env.slack.wait_connected(connections=2)
    first = P.app_mention("after a refresh")
    await env.slack.wait_ack(await env.slack.send_event(first), timeout=3)
    await env.settle(1)
    await env.slack.disconnect_socket(send_message=False)  # dropped without notice
    await env.slack.wait_connected(connections=3)
    second = P.app_mention("after a drop")
    await env.slack.wait_ack(await env.slack.send_event(second), timeout=3)
    await env.settle(2)
    assert env.bot_texts(P.CHANNEL_ID, first["ts"]) == ["echo: after a refresh"]
    assert env.bot_texts(P.CHANNEL_ID, second["ts"]) == ["echo: after a drop"]
    assert len(env.slack.calls_to("apps.connections.open")) == 3


def long_answer(length: int = 10_000) -> str:
    paragraphs, size, n = [], 0, 0
    while size < length:
        lines = "\n".join(f"Line {n}.{j}: " + "lorem ipsum dolor sit amet " * 3 for j in range(5))
        paragraphs.append(f"## Part {n}\n{lines}")
        size += len(paragraphs[-1]) + 2
        n += 1
    return "\n\n".join(paragraphs)[:length]


async def test_a_10000_character_answer_arrives_whole_and_in_order(env: Env) -> None:
    text = long_answer()
    assert len(text) == 10_000
    env.openai.answer = lambda turn: text
    env.openai.delta_delay = 0.0005  # ~1 s: parts are cut while the answer is still streaming
    mention = P.app_mention("write a lot")
    await env.slack.send_event(mention)
    await env.settle(1, seconds=15)
    parts = env.bot_texts(P.CHANNEL_ID, mention["ts"])
    assert len(parts) >= 3
    assert "".join(parts) == text
    assert all(len(p) <= SLACK.limit for p in parts)
    assert all(s.state == "stopped" for s in env.slack.streams.values())
    assert not [c for c in env.slack.calls if c.error == "msg_too_long"]
    assert env.slack.calls_to("chat.update") == []  # streaming never had to take text back
    # One stream per part, in the order of the parts, each started, appended to, stopped, and
    # closed before the next one starts. How many appends there are depends on timing: not asserted.
    assert [s.final_text for s in env.slack.streams.values()] == parts
    assert all(s.calls[0] == "start" and s.calls[-1] == "stop" for s in env.slack.streams.values())
    stream_of_call = [
        c.response["ts"] if c.method == "chat.startStream" else c.args["ts"]
        for c in env.slack.calls
        if c.method.endswith("Stream")
    ]
    runs = [ts for ts, _ in itertools.groupby(stream_of_call)]
    assert runs == list(env.slack.streams)


async def test_an_answer_broken_midway_keeps_what_was_shown_and_says_why(env: Env) -> None:
    env.openai.answer = lambda turn: "one two three four five six seven eight nine ten"
    attempts = env.app.settings.openai_max_retries + 1  # a drop is retried (resumed)
    env.openai.fail_next("break", times=attempts)
    mention = P.app_mention("go")
    await env.slack.send_event(mention)
    await env.settle(1)
    shown, error = env.bot_texts(P.CHANNEL_ID, mention["ts"])
    assert shown.startswith("one ") and shown.endswith("…(interrupted)")
    assert "lost the connection" in error
    assert all(s.state == "stopped" for s in env.slack.streams.values())


async def test_without_chat_streaming_edits_are_throttled_and_the_text_is_whole(
    env: Env,
) -> None:
    env.slack.fail_next("chat.startStream", "not_allowed")  # e.g. not an AI app here
    text = long_answer(6_000)
    env.openai.answer = lambda turn: text
    env.openai.delta_delay = 0.002  # ~2.5 s of streaming
    mention = P.app_mention("no streaming here")
    await env.slack.send_event(mention)
    await env.settle(1, seconds=20)
    parts = env.bot_texts(P.CHANNEL_ID, mention["ts"])
    assert "".join(parts) == text and len(parts) == 2
    assert [c.error for c in env.slack.calls_to("chat.startStream")] == ["not_allowed"]
    updates = env.slack.calls_to("chat.update")
    assert updates, "the first message should have been edited as text arrived"
    by_message: dict[str, list[float]] = {}
    for call in updates:
        by_message.setdefault(call.args["ts"], []).append(call.at)
    for times in by_message.values():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap >= UPDATE_INTERVAL - 0.05 for gap in gaps), gaps


async def test_answers_streaming_at_once_share_the_workspace_append_budget(env: Env) -> None:
    """Five answers stream at once in one workspace whose chat.appendStream limit is 6 a
    minute: progressive appends stay within it (no 429) and every answer arrives whole."""
    env.slack.enable_rate_limits(post_burst=10, append_per_minute=6, append_burst=6)
    env.adapter.outbox.budget = WriteAllowance({APPEND: (6, 0), UPDATE: (50, 10)})
    answer = " ".join(f"word{i}" for i in range(100))
    env.openai.answer = lambda turn: answer
    env.openai.delta_delay = 0.03  # ~3 s of streaming each: ~15 appends wanted in all
    mentions = [P.app_mention(f"question {i}") for i in range(5)]
    for mention in mentions:
        await env.slack.send_event(mention)
    await env.settle(5, seconds=30)
    assert env.slack.rate_limited_count == 0
    assert len(env.slack.calls_to("chat.appendStream")) <= 6
    for mention in mentions:
        assert env.bot_texts(P.CHANNEL_ID, mention["ts"]) == [answer]


# --------------------------------------------------------------------------- files


async def test_attachments_reach_the_core_with_a_working_fetch(env: Env) -> None:
    """The attachments reach the core and their `fetch` downloads with the token (the core's
    use of them is covered in tests/test_media_slack.py)."""
    image = env.slack.add_file("fox.png", PNG, "image/png")
    clip = env.slack.add_file(
        "audio_message.webm",
        b"\x1aE\xdf\xa3 audio clip",
        "audio/webm",
        subtype="slack_audio",
        media_display_type="audio",
    )
    await env.slack.send_event(P.app_mention("what is this?", files=[image]))
    await env.slack.send_event(P.im_message("", files=[clip]))
    await env.settle(2)
    by_kind = {a.kind: a for e in env.submitted if isinstance(e, Inbound) for a in e.attachments}
    assert by_kind["image"].name == "fox.png" and by_kind["image"].mime == "image/png"
    assert by_kind["image"].size == len(PNG)
    assert await by_kind["image"].fetch() == PNG
    assert await by_kind["audio"].fetch() == b"\x1aE\xdf\xa3 audio clip"
    requests = env.slack.file_requests
    assert len(requests) >= 2 and all(r["authorized"] for r in requests)  # the core fetches too
    assert all("/download/" in r["path"] for r in requests)


async def test_file_download_refusals_are_friendly(env: Env) -> None:
    image = env.slack.add_file("fox.png", PNG, "image/png")
    moved = env.slack.add_file("moved.png", PNG, "image/png", redirect_to=True)
    huge = env.slack.add_file("huge.wav", b"RIFF", "audio/wav", declared_size=30 * 1024 * 1024)
    await env.slack.send_event(P.im_message("files", files=[image, moved, huge]))
    await env.settle(1)
    fox, moved_att, huge_att = env.submitted[0].attachments  # type: ignore[union-attr]

    env.slack.bot_token = "xoxb-rotated"  # our token no longer works: Slack's sign-in page
    with pytest.raises(UserError, match="sign-in page"):
        await fox.fetch()
    env.slack.bot_token = BOT_TOKEN
    assert env.slack.file_requests[-1]["status"] == 200  # a 200 … with HTML

    with pytest.raises(UserError, match="not stored on this Slack workspace"):
        await moved_att.fetch()
    assert env.slack.file_requests[-1]["status"] == 302
    assert all(r["host"].startswith("127.0.0.1") for r in env.slack.file_requests)

    before = len(env.slack.file_requests)
    with pytest.raises(UserError, match=r"30\.0 MB; I can take files up to 25 MB"):
        await huge_att.fetch()
    assert len(env.slack.file_requests) == before  # refused before downloading anything


async def test_a_file_reply_is_uploaded_into_the_thread(env: Env) -> None:
    parent = env.slack.add_message(P.CHANNEL_ID, "draw me a fox")
    key = ConversationKey("slack", "T1", P.CHANNEL_ID, parent["ts"])
    reply = Reply(
        key=key,
        text="Here it is",
        files=(
            OutFile("fox.png", "image/png", PNG),
            OutFile("data.csv", "text/csv", b"a,b\n1,2\n"),
        ),
        actor_id=P.USER_ID,
    )
    await env.adapter.outbox.send(reply)
    assert env.bot_texts(P.CHANNEL_ID, parent["ts"])[0] == "Here it is"
    assert [(u.filename, u.data, u.thread_ts, u.channel) for u in env.slack.uploads] == [
        ("fox.png", PNG, parent["ts"], P.CHANNEL_ID),
        ("data.csv", b"a,b\n1,2\n", parent["ts"], P.CHANNEL_ID),
    ]
    assert env.slack.calls_to("files.upload") == []


# --------------------------------------------------------------------------- commands


async def test_slash_commands_are_acknowledged_and_answered(env: Env) -> None:
    envelope = await env.slack.send_slash_command("/reset", "", user_id=P.USER_ID)
    await env.slack.wait_ack(envelope, timeout=3)
    assert env.slack.ack_latency[envelope] < 3
    await env.settle(1)
    (call,) = env.submitted
    assert isinstance(call, CommandCall) and call.name == "reset"
    assert call.key == ConversationKey("slack", "T1", P.CHANNEL_ID, "")
    assert call.event_id.startswith("cmd-") and not call.actor.is_admin
    assert env.bot_texts(P.CHANNEL_ID) == [
        "There was no conversation here yet; the next message starts one."
    ]

    # a contract command this build has no handler for: answered privately, to the one who asked
    env.app.dispatcher._commands = without(env.app.dispatcher._commands, "imagine")
    await env.slack.send_slash_command("/imagine", "a red fox", user_id="UADMIN")
    await env.settle(2)
    assert env.submitted[-1].actor.is_admin  # users.info: is_admin
    (note,) = env.slack.ephemeral
    assert (note["via"], note["user"]) == ("chat.postEphemeral", "UADMIN")
    assert "not available in this version" in note["text"]
    assert len(env.slack.calls_to("users.info")) == 2

    await env.slack.send_slash_command("/usage", "me", user_id="UADMIN")
    await env.settle(3)
    assert len(env.slack.calls_to("users.info")) == 2  # cached


async def test_edit_image_shortcut_opens_a_modal_and_submits_an_edit(env: Env) -> None:
    env.app.dispatcher._commands = without(
        env.app.dispatcher._commands, "edit"
    )  # the core's /edit has its own tests
    image = env.slack.add_file("sky.png", PNG, "image/png")
    message = P.message("my photo", files=[image])
    env.slack.record_event(message)
    await env.slack.wait_ack(
        await env.slack.send_interactive(P.message_shortcut("edit_image", message)), timeout=3
    )
    await until(lambda: env.slack.views)
    (view,) = env.slack.views.values()
    assert view["callback_id"] == "edit_image_modal"

    empty = P.view_submission(
        "edit_image_modal",
        {"prompt": {"value": {"type": "plain_text_input", "value": ""}}},
        private_metadata=view["private_metadata"],
    )
    ack = await env.slack.wait_ack(await env.slack.send_interactive(empty), timeout=3)
    assert ack["payload"]["response_action"] == "errors"

    mask = env.slack.add_file("mask.png", PNG, "image/png")
    values = {
        "prompt": {"value": {"type": "plain_text_input", "value": "make it a sunset"}},
        "mask": {"value": {"type": "file_input", "files": [mask]}},
    }
    submission = P.view_submission(
        "edit_image_modal", values, private_metadata=view["private_metadata"]
    )
    await env.slack.wait_ack(await env.slack.send_interactive(submission), timeout=3)
    await env.settle(1)
    (call,) = env.submitted
    assert isinstance(call, CommandCall)
    assert (call.name, call.text) == ("edit", "make it a sunset")
    assert call.key == ConversationKey("slack", "T1", P.CHANNEL_ID, message["ts"])
    assert [a.name for a in call.attachments] == ["sky.png", "mask.png"]
    assert await call.attachments[0].fetch() == PNG
    (note,) = env.slack.ephemeral
    assert note["thread_ts"] == message["ts"] and "/edit is not available" in note["text"]


# --------------------------------------------------------------------------- HTTP mode


async def test_http_mode_verifies_signatures_and_acks_at_once(http_env: Env) -> None:
    env = http_env
    env.openai.latency = 1.5  # the answer takes a while; the ack must not wait for it
    mention = P.app_mention("over http")
    status, _ = await env.slack.deliver_http(env.url, P.event_callback(mention, event_id="Ev0HTTP"))
    assert status == 200
    assert env.slack.http_deliveries[-1]["latency"] < 1.0
    for attempt in (1, 2):  # Slack's redeliveries of the same event
        status, _ = await env.slack.deliver_http(
            env.url,
            P.event_callback(mention, event_id="Ev0HTTP"),
            retry_num=attempt,
            retry_reason="http_timeout",
        )
        assert status == 200

    forged = await env.slack.deliver_http(env.url, P.im_message("forged"), bad_signature=True)
    stale = await env.slack.deliver_http(
        env.url, P.im_message("replayed"), timestamp=time.time() - 301
    )
    unsigned = await env.slack.deliver_http(env.url, P.im_message("unsigned"), sign=False)
    assert [forged[0], stale[0], unsigned[0]] == [401, 401, 401]

    await env.settle(3, seconds=10)
    await asyncio.sleep(0.2)
    assert env.bot_texts(P.CHANNEL_ID, mention["ts"]) == ["echo: over http"]
    assert len(env.openai.turns) == 1
    assert len(env.submitted) == 3  # three deliveries reached the dispatcher, none forged
    assert env.bot_texts(P.DM_CHANNEL_ID) == []

    status, _ = await env.slack.deliver_http(env.url, env.slack.build_slash_command("/reset"))
    assert status == 200
    await env.settle(4)
    assert env.bot_texts(P.CHANNEL_ID)[-1].startswith("There was no conversation here yet")


# --------------------------------------------------------------------------- hygiene


async def test_start_logs_one_line_and_tokens_never_reach_the_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env = await start_env(tmp_path)
    try:
        ready = [r for r in caplog.records if r.levelno >= logging.INFO and "connected" in r.msg]
        assert len(ready) == 1
        assert ready[0].getMessage() == (
            "slack: connected (Socket Mode) as @switchboard in Switchboard Test (T1)"
        )
        image = env.slack.add_file("x.png", PNG, "image/png")
        await env.slack.send_event(P.app_mention("hello", files=[image]))
        await env.slack.send_slash_command("/reset")
        await env.settle(2)
        (inbound,) = [e for e in env.submitted if isinstance(e, Inbound)]
        assert await inbound.attachments[0].fetch() == PNG
    finally:
        await stop_env(env)
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    for secret in (BOT_TOKEN, APP_TOKEN, SECRET):
        assert secret not in text
    rows = await _all_text_in_database(tmp_path / "switchboard.db")
    for secret in (BOT_TOKEN, APP_TOKEN, SECRET):
        assert secret not in rows


async def _all_text_in_database(path: Path) -> str:
    import sqlite3

    def dump() -> str:
        with sqlite3.connect(path) as conn:
            return "\n".join(conn.iterdump())

    return await asyncio.to_thread(dump)


async def test_a_rejected_bot_token_is_a_clear_config_error(tmp_path: Path) -> None:
    from bot.core.config import ConfigError

    async with FakeSlack(bot_token="xoxb-other", app_token=APP_TOKEN) as slack:
        settings = make_settings(
            "http://127.0.0.1:9/v1",
            tmp_path,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_APP_TOKEN=APP_TOKEN,
            SLACK_API_URL=slack.api_url,
        )
        app = await App.create(settings)
        adapter = SlackAdapter(settings, app.dispatcher)
        try:
            with pytest.raises(ConfigError, match=r"rejected SLACK_BOT_TOKEN \(invalid_auth\)"):
                await adapter.start()
        finally:
            await adapter.close()
            await app.shutdown()


async def test_a_command_in_a_channel_the_bot_is_not_in_is_answered_by_response_url(
    env: Env,
) -> None:
    env.slack.fail_next("chat.postMessage", "not_in_channel")
    await env.slack.send_slash_command("/reset", channel_id="C0ELSEWHERE")
    await env.settle(1)
    (post,) = env.slack.response_url_posts
    assert post["status"] == 200 and post["body"]["response_type"] == "in_channel"
    assert env.bot_texts("C0ELSEWHERE") == [
        "There was no conversation here yet; the next message starts one."
    ]


async def test_constructing_the_adapter_touches_no_network(tmp_path: Path) -> None:
    settings = make_settings(
        "http://127.0.0.1:9/v1", tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN
    )
    app = await App.create(settings)
    try:
        adapter = SlackAdapter(settings, app.dispatcher)  # default https://slack.com/api/
        await asyncio.sleep(0.05)  # any background call would hit the loopback-only guard
        assert adapter.socket_mode and adapter.app is not None
        await adapter.close()
    finally:
        await app.shutdown()


def without(table: CommandTable, name: str) -> CommandTable:
    """The table less one command (as a build without that feature has it)."""
    return CommandTable({n: h for n, h in table.handlers().items() if n != name})
