"""Speech on Slack, at the wire, with the default speech model (gpt-realtime-2.1-mini through
the Realtime API): the real slack-bolt app against FakeSlack, the real core behind it, the
loopback OpenAI fake's Realtime WebSocket answering with real PCM. Files posted to Slack are
decoded with PyAV."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.config import MODEL_DEFAULTS
from bot.core.types import ConversationKey
from storage.configs import save_overrides
from testing.fakes import slack_payloads as P
from tests.media_fixtures import OGG
from tests.speech_helpers import decoded_seconds, expected_seconds, long_text
from tests.test_slack_adapter import Env, slack_running, until

CHANNEL = ConversationKey("slack", P.TEAM_ID, P.CHANNEL_ID)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with slack_running(tmp_path, slack_clean=True, openai_clean=True) as environment:
        yield environment


async def speak(env: Env, text: str) -> None:
    before = len(env.submitted)
    await env.slack.send_slash_command("/speak", text)
    await env.settle(before + 1, seconds=20)


async def speech_runs(env: Env) -> list[tuple[str, str, float | None]]:
    rows = await env.app.db.fetch_all(
        "SELECT r.status, r.model, u.cost_usd FROM runs r LEFT JOIN usage u ON u.run_id = r.id "
        "WHERE r.kind = 'speech' ORDER BY r.id"
    )
    return [(r["status"], r["model"], r["cost_usd"]) for r in rows]


async def test_speak_posts_an_audio_file_as_long_as_the_text(env: Env) -> None:
    await speak(env, "Good morning, team! voice=marin")
    await until(lambda: env.slack.uploads)
    (upload,) = env.slack.uploads
    assert upload.filename == "speech.mp3" and upload.data
    said = "Good morning, team!"
    assert decoded_seconds(upload.data) == pytest.approx(expected_seconds(said), abs=0.1)
    (session,) = env.openai.realtime.connections
    assert (session.model, session.voice, session.texts) == (
        MODEL_DEFAULTS["speech"],
        "marin",
        [said],
    )
    assert not [r for r in env.openai.requests if r.path == "/v1/audio/speech"]
    ((status, model, cost),) = await speech_runs(env)
    assert (status, model) == ("completed", MODEL_DEFAULTS["speech"]) and cost and cost > 0


async def test_a_1500_character_text_is_said_whole_on_one_connection(env: Env) -> None:
    text = long_text(1500)
    assert 1400 <= len(text) <= 1500
    await speak(env, text)
    await until(lambda: env.slack.uploads)
    (upload,) = env.slack.uploads
    assert decoded_seconds(upload.data) == pytest.approx(expected_seconds(text), rel=0.02)
    (session,) = env.openai.realtime.connections  # several responses, one socket
    assert len(session.texts) > 1
    assert " ".join(session.texts) == text


async def test_an_unsupported_voice_is_refused_naming_the_voices(env: Env) -> None:
    await speak(env, "hello voice=nova")
    await speak(env, "hello voice=robot")
    notes = [n["text"] for n in env.slack.ephemeral]
    assert any(
        "“nova” is not available with the speech model gpt-realtime-2.1-mini" in n
        and "alloy, ash, ballad, coral, echo, sage, shimmer, verse, marin, cedar" in n
        for n in notes
    ), notes
    assert any("Unknown voice “robot”" in n for n in notes), notes
    assert env.openai.realtime.connections == [] and env.slack.uploads == []


async def test_voice_replies_come_back_as_audio(env: Env) -> None:
    await save_overrides(
        env.app.db, CHANNEL, {"voice_replies": True, "voice": "cedar"}, updated_by="admin"
    )
    mention = P.app_mention("read me the news")
    await env.slack.send_event(mention)
    await env.settle(1, seconds=20)
    await until(lambda: env.slack.uploads)
    assert env.bot_texts(P.CHANNEL_ID, mention["ts"])[0] == "echo: read me the news"
    (upload,) = env.slack.uploads
    assert upload.filename == "speech.mp3" and upload.thread_ts == mention["ts"]
    answer = "echo: read me the news"
    assert decoded_seconds(upload.data) == pytest.approx(expected_seconds(answer), abs=0.1)
    assert env.openai.realtime.connections[-1].voice == "cedar"


@pytest.mark.parametrize("today", [dt.date(2027, 1, 7), dt.date(2027, 2, 27)])
async def test_after_the_2027_shutdowns_nothing_changes_for_users(env: Env, today: dt.date) -> None:
    """The endpoint as it will be: every /audio/speech model (and, after 2027-02-26, every
    transcription model but gpt-transcribe and /audio/translations' whisper-1) answers 404."""
    env.openai.today = today
    await speak(env, "Still speaking. voice=coral")
    await until(lambda: env.slack.uploads)
    assert env.slack.uploads[-1].filename == "speech.mp3"

    env.openai.transcript = lambda name, data: "bonjour tout le monde"
    memo = env.slack.add_file("memo.ogg", OGG, "audio/ogg")
    mention = P.app_mention("/translate", files=[memo])
    await env.slack.send_event(mention)
    await env.settle(2, seconds=20)
    (translated,) = env.bot_texts(P.CHANNEL_ID, mention["ts"])
    assert translated.startswith("English translation of “memo.ogg”:\n> echo: bonjour")

    clip = env.slack.add_file("note.ogg", OGG, "audio/ogg", subtype="slack_audio")
    await env.slack.send_event(P.im_message("", files=[clip]))
    await env.settle(3, seconds=20)
    assert env.bot_texts(P.DM_CHANNEL_ID)[-1].endswith("echo: bonjour tout le monde")

    paths = {r.path for r in env.openai.requests}
    assert "/v1/audio/speech" not in paths and "/v1/audio/translations" not in paths
    assert all(status == "completed" for status, _, _ in await speech_runs(env))


async def test_a_dropped_realtime_socket_is_retried(env: Env) -> None:
    env.openai.realtime.drop_next(after_deltas=1)
    await speak(env, "Try again after the drop.")
    await until(lambda: env.slack.uploads)
    assert decoded_seconds(env.slack.uploads[-1].data) == pytest.approx(
        expected_seconds("Try again after the drop."), abs=0.1
    )
    assert [c.dropped for c in env.openai.realtime.connections] == [True, False]


async def test_a_socket_that_keeps_dropping_is_told(env: Env) -> None:
    env.openai.realtime.drop_next(after_deltas=1, times=10)
    await speak(env, "This will not get through.")
    notes = [n["text"] for n in env.slack.ephemeral]
    assert any("I lost the connection to OpenAI" in n for n in notes), notes
    assert env.slack.uploads == []
    ((status, _model, _cost),) = await speech_runs(env)
    assert status == "failed"
    # the default 2 retries: three connections, each dropped
    assert [c.dropped for c in env.openai.realtime.connections] == [True, True, True]
