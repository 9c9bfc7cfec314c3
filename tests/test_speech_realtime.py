"""The Realtime speech engine with the real openai SDK against the fake's Realtime WebSocket:
the events it sends, audio and usage, every output format, faults through the one retry policy,
and the engine chosen by the model."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from bot.backends.errors import explain_error
from bot.backends.factory import make_speech_engine
from bot.backends.realtime_speech import (
    READ_ALOUD,
    REALTIME_VOICES,
    RealtimeSpeechEngine,
    similarity,
    split_for_speech,
)
from bot.backends.retry import RetryPolicy
from bot.backends.speech import AudioSpeechEngine, engine_kind
from bot.core.config import MODEL_DEFAULTS
from bot.core.errors import UserError
from bot.core.types import CommandCall
from testing.fakes.openai_fake import FakeOpenAI
from testing.fakes.openai_realtime import REALTIME_VOICES as FAKE_VOICES
from tests.harness import KEY, USER, Harness, make_settings
from tests.speech_helpers import SECONDS_PER_CHAR, decoded_seconds, expected_seconds, long_text

MODEL = MODEL_DEFAULTS["speech"]


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0, timeout=2)
    yield sdk
    await sdk.close()


def engine(
    client: openai.AsyncOpenAI, attempts: int = 2, model: str = MODEL
) -> RealtimeSpeechEngine:
    return RealtimeSpeechEngine(client, model, RetryPolicy(attempts=attempts, max_wait=0.01))


# ----------------------------------------------------------------------------- pure


def test_texts_are_cut_into_whole_sentences() -> None:
    assert split_for_speech("One. Two!  Three?\nFour") == ["One. Two! Three? Four"]
    text = long_text(1500)
    chunks = split_for_speech(text)
    assert all(len(c) <= 300 for c in chunks) and " ".join(chunks) == text
    assert all(c.endswith(".") for c in chunks)
    endless = "word " * 200
    pieces = split_for_speech(endless)
    assert all(len(p) <= 300 for p in pieces) and " ".join(pieces).split() == endless.split()


def test_transcripts_are_compared_word_by_word() -> None:
    assert similarity("Hello, World!", "hello world") == 1.0
    assert 0.5 < similarity("the cat sat on the mat", "the cat sat on a mat") < 1.0


def test_the_engine_is_chosen_by_the_model() -> None:
    assert engine_kind("auto", "gpt-realtime-2.1-mini") == "realtime"
    assert engine_kind("auto", "gpt-4o-mini-tts") == "audio_speech"
    assert engine_kind("audio_speech", "gpt-realtime-2.1-mini") == "realtime"
    assert engine_kind("audio_speech", "tts-1") == "audio_speech"
    assert engine_kind("realtime", "my-voice-model") == "realtime"
    with pytest.raises(UserError, match="not available in this build"):
        engine_kind("gramophone", "tts-1")
    assert REALTIME_VOICES == FAKE_VOICES


# ----------------------------------------------------------------------------- the wire


async def test_one_session_with_out_of_band_responses(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    text = long_text(700)
    speech = await engine(client).synthesize(text, voice="marin", fmt="wav")
    assert (speech.mime, speech.extension, speech.model) == ("audio/wav", "wav", MODEL)
    assert decoded_seconds(speech.data) == pytest.approx(expected_seconds(text), abs=0.01)

    (connection,) = fake.realtime.connections
    request = next(r for r in fake.requests if r.path == "/v1/realtime")
    assert request.query["model"] == MODEL
    assert request.headers["Authorization"] == "Bearer sk-test"
    update, *creates = connection.client_events
    assert update["type"] == "session.update"
    assert update["session"]["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24_000},
        "voice": "marin",
    }
    assert [c["type"] for c in creates] == ["response.create"] * len(split_for_speech(text))
    first = creates[0]["response"]
    assert first["conversation"] == "none" and first["output_modalities"] == ["audio"]
    assert first["instructions"] == READ_ALOUD and "word for word" in READ_ALOUD
    assert first["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": split_for_speech(text)[0]}],
        }
    ]

    usage = speech.usage
    assert usage is not None and usage.model == MODEL and usage.characters == len(text)
    assert usage.audio_output_tokens > 0 and usage.input_tokens > 0
    assert usage.output_tokens > usage.audio_output_tokens  # the transcript's text tokens


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav"])
async def test_every_format_decodes_to_the_texts_length(
    client: openai.AsyncOpenAI, fmt: str
) -> None:
    text = "Formats matter. Each one should decode."
    speech = await engine(client).synthesize(text, voice="alloy", fmt=fmt)
    assert speech.extension == fmt
    assert decoded_seconds(speech.data) == pytest.approx(expected_seconds(text), abs=0.1)


async def test_a_reworded_reading_is_logged_without_the_text(
    fake: FakeOpenAI, client: openai.AsyncOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    fake.realtime.reword = lambda text: text.replace("secret plan", "secret plans")
    with caplog.at_level(logging.WARNING, logger="bot.backends.realtime_speech"):
        await engine(client).synthesize("Our secret plan works.", voice="ash", fmt="mp3")
    (record,) = caplog.records
    assert "differ from the text" in record.getMessage() and "75% alike" in record.getMessage()
    assert "secret" not in record.getMessage()


async def test_the_fake_checks_client_events_against_the_sdk_types() -> None:
    async with FakeOpenAI() as fake:
        sdk = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
        async with sdk.realtime.connect(model=MODEL) as connection:
            await connection.send({"type": "response.create", "response": {"modalities": ["x"]}})  # type: ignore[arg-type, typeddict-unknown-key]
            event = await connection.recv()
            while event.type != "response.done":
                event = await connection.recv()
        await sdk.close()
        assert any("$.response.modalities is not a field" in p for p in fake.spec_problems), (
            fake.spec_problems
        )


# ----------------------------------------------------------------------------- faults


async def test_error_events_are_sdk_errors_retried_by_the_policy(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.realtime.error_next()  # server_error: retried on a new connection
    fake.realtime.error_next("rate_limit_exceeded", "tokens", "Rate limit reached.")
    speech = await engine(client, attempts=2).synthesize(
        "Third time lucky.", voice="echo", fmt="mp3"
    )
    assert speech.data and len(fake.realtime.connections) == 3

    fake.realtime.error_next("insufficient_quota", "insufficient_quota", "You exceeded your quota.")
    with pytest.raises(openai.RateLimitError) as quota:
        await engine(client).synthesize("No credit.", voice="echo", fmt="mp3")
    assert quota.value.code == "insufficient_quota"
    assert len(fake.realtime.connections) == 4  # quota is never retried
    friendly = explain_error(quota.value, model=MODEL, role="speech")
    assert friendly is not None and "run out of credit" in friendly.message


async def test_a_resumed_text_is_not_said_twice(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    text = long_text(900)
    chunks = split_for_speech(text)
    first_chunk_deltas = math.ceil(
        len(chunks[0]) * SECONDS_PER_CHAR * 1000 / fake.realtime.delta_ms
    )
    fake.realtime.drop_next(after_deltas=first_chunk_deltas + 2)  # during the second chunk
    speech = await engine(client).synthesize(text, voice="sage", fmt="flac")
    first, second = fake.realtime.connections
    assert first.dropped and not second.dropped
    assert first.texts == chunks[:2] and second.texts == chunks[1:]
    assert decoded_seconds(speech.data) == pytest.approx(expected_seconds(text), abs=0.01)


async def test_a_refused_handshake_and_silence(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.fail_next("rate_limit", endpoint="realtime")
    speech = await engine(client).synthesize("After the wait.", voice="coral", fmt="mp3")
    assert speech.data

    fake.realtime.delay = 3.0  # beyond the client's 2 s timeout
    with pytest.raises(openai.APITimeoutError):
        await engine(client, attempts=0).synthesize("Too slow.", voice="coral", fmt="mp3")


async def test_an_unknown_model_names_its_setting(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await engine(client, model="gpt-realtime-nope").synthesize("x", voice="ash", fmt="mp3")
    assert missing.value.code == "model_not_found"
    friendly = explain_error(missing.value, model="gpt-realtime-nope", role="speech")
    assert friendly is not None and "SWITCHBOARD_SPEECH_MODEL" in friendly.message


# ----------------------------------------------------------------------------- pinned old models


async def test_a_pinned_audio_speech_model_works_until_its_shutdown(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    h = await Harness.start(
        make_settings(fake.base_url, tmp_path, SWITCHBOARD_SPEECH_MODEL="gpt-4o-mini-tts")
    )
    try:
        said = await _speak(h, "Good morning voice=nova")  # an /audio/speech voice
        assert said.files and said.files[0].data == fake.speech_audio
        assert fake.requests[-1].path == "/v1/audio/speech"
        assert fake.realtime.connections == []

        fake.today = dt.date(2027, 1, 7)
        gone = await _speak(h, "Good morning")
        assert "The model `gpt-4o-mini-tts` is not available" in gone.text
        assert "SWITCHBOARD_SPEECH_MODEL" in gone.text
    finally:
        await h.close()


def test_make_speech_engine_builds_the_chosen_engine(client: openai.AsyncOpenAI) -> None:
    retry = RetryPolicy()
    assert isinstance(make_speech_engine("auto", client, MODEL, retry), RealtimeSpeechEngine)
    assert isinstance(make_speech_engine("auto", client, "tts-1", retry), AudioSpeechEngine)


async def _speak(h: Harness, text: str):  # type: ignore[no-untyped-def]
    before = len(h.outbox.replies)
    call = CommandCall(KEY, USER, "speak", f"speak-{before}", text=text)
    assert await h.app.dispatcher.submit(call)
    await h.app.dispatcher.wait_idle()
    (reply,) = h.outbox.replies[before:]
    return reply
