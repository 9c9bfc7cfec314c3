"""Speech on Discord, at the wire, with the default speech model (gpt-realtime-2.1-mini through
the Realtime API): the real discord.py client against FakeDiscord, the real core behind it,
the loopback OpenAI fake's Realtime WebSocket answering with real PCM. Posted files are decoded
with PyAV."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import discord
import discord.gateway
import discord.http
import pytest

from bot.core.config import MODEL_DEFAULTS
from bot.core.types import ConversationKey
from storage.configs import save_overrides
from testing.fakes.discord_payloads import MsgFlag
from testing.fakes.openai_fake import FakeOpenAI
from tests.media_fixtures import OGG
from tests.speech_helpers import decoded_seconds, expected_seconds, long_text
from tests.test_discord_adapter import Bot, fake_discord, mention, running_bot, wait_followup


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake
    assert fake.spec_problems == []


@pytest.fixture
def discord_seams() -> Iterator[None]:
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


@pytest.fixture
async def bot(discord_seams: None, openai_fake: FakeOpenAI, tmp_path: Path) -> AsyncIterator[Bot]:
    async with fake_discord() as dc, running_bot(dc, openai_fake, tmp_path) as running:
        yield running
        dc.assert_spec_clean()
        assert dc.internal_errors == []


async def speak(bot: Bot, options: dict[str, Any]) -> dict[str, Any]:
    dc = bot.dc
    interaction = await dc.send_interaction("speak", options, user=dc.member)
    return await wait_followup(dc, interaction)


def audio_of(bot: Bot, message: dict[str, Any]) -> tuple[str, bytes]:
    (attachment,) = message["attachments"]
    return attachment["filename"], bot.dc.cdn[attachment["id"]].data


async def test_speak_posts_an_audio_file_as_long_as_the_text(
    bot: Bot, openai_fake: FakeOpenAI
) -> None:
    said = "Good evening, everyone."
    followup = await speak(bot, {"text": said, "voice": "ash"})
    name, data = audio_of(bot, followup)
    assert name == "speech.mp3"
    assert decoded_seconds(data) == pytest.approx(expected_seconds(said), abs=0.1)
    (session,) = openai_fake.realtime.connections
    assert (session.model, session.voice, session.texts) == (
        MODEL_DEFAULTS["speech"],
        "ash",
        [said],
    )


async def test_a_1500_character_text_is_said_whole(bot: Bot, openai_fake: FakeOpenAI) -> None:
    text = long_text(1500)
    followup = await speak(bot, {"text": text})
    _name, data = audio_of(bot, followup)
    assert decoded_seconds(data) == pytest.approx(expected_seconds(text), rel=0.02)
    (session,) = openai_fake.realtime.connections
    assert len(session.texts) > 1 and " ".join(session.texts) == text
    assert session.voice == "alloy"  # SWITCHBOARD_SPEECH_VOICE's default


async def test_an_unsupported_voice_is_refused_naming_the_voices(
    bot: Bot, openai_fake: FakeOpenAI
) -> None:
    refused = await speak(bot, {"text": "hello", "voice": "onyx"})
    assert (
        "“onyx” is not available with the speech model gpt-realtime-2.1-mini"
        in (refused["content"])
    )
    assert "marin, cedar" in refused["content"] and refused["flags"] & MsgFlag.EPHEMERAL
    assert not refused["attachments"] and openai_fake.realtime.connections == []


async def test_voice_replies_come_back_as_audio(bot: Bot, openai_fake: FakeOpenAI) -> None:
    dc = bot.dc
    cid = dc.text_channel["id"]
    key = ConversationKey("discord", dc.guild["id"], cid, "")
    await save_overrides(
        bot.app.db, key, {"voice_replies": True, "voice": "shimmer"}, updated_by="admin"
    )
    incoming = await dc.send_message_create(cid, dc.member, mention(dc, "summarise"))
    assert (await bot.answer_to(incoming))["content"] == "echo: summarise"
    await dc.wait_for(
        lambda: any(m.get("attachments") for m in bot.bot_messages(cid)), 10, "the voice reply"
    )
    reply = next(m for m in bot.bot_messages(cid) if m.get("attachments"))
    name, data = audio_of(bot, reply)
    assert name == "speech.mp3"
    assert decoded_seconds(data) == pytest.approx(expected_seconds("echo: summarise"), abs=0.1)
    assert openai_fake.realtime.connections[-1].voice == "shimmer"


async def test_a_failed_voice_reply_is_said_once(bot: Bot, openai_fake: FakeOpenAI) -> None:
    dc = bot.dc
    cid = dc.text_channel["id"]
    key = ConversationKey("discord", dc.guild["id"], cid, "")
    await save_overrides(bot.app.db, key, {"voice_replies": True}, updated_by="admin")
    openai_fake.realtime.drop_next(after_deltas=1, times=10)
    incoming = await dc.send_message_create(cid, dc.member, mention(dc, "hello"))
    assert (await bot.answer_to(incoming))["content"] == "echo: hello"
    await dc.wait_for(
        lambda: any("No voice reply" in m["content"] for m in bot.bot_messages(cid)), 10, "note"
    )
    await bot.idle()
    notes = [m["content"] for m in bot.bot_messages(cid) if "No voice reply" in m["content"]]
    assert notes == [
        "(No voice reply: I lost the connection to OpenAI while answering. Please try again.)"
    ]
    rows = await bot.app.db.fetch_all("SELECT kind, status FROM runs ORDER BY id")
    assert [(r["kind"], r["status"]) for r in rows] == [("chat", "completed"), ("speech", "failed")]


async def test_after_the_speech_shutdown_nothing_changes_for_users(
    bot: Bot, openai_fake: FakeOpenAI
) -> None:
    openai_fake.today = dt.date(2027, 1, 7)
    followup = await speak(bot, {"text": "Still here.", "voice": "verse"})
    assert audio_of(bot, followup)[0] == "speech.mp3"
    dc = bot.dc
    audio = dc.add_attachment("memo.ogg", OGG, "audio/ogg")
    interaction = await dc.send_interaction("translate", {"audio": audio}, user=dc.member)
    translated = await wait_followup(dc, interaction)
    assert translated["content"].startswith("English translation of “memo.ogg”:\n> echo:")
    paths = {r.path for r in openai_fake.requests}
    assert "/v1/audio/speech" not in paths and "/v1/audio/translations" not in paths


async def test_a_dropped_realtime_socket_is_retried(bot: Bot, openai_fake: FakeOpenAI) -> None:
    openai_fake.realtime.drop_next(after_deltas=2)
    followup = await speak(bot, {"text": "Once more, with feeling."})
    _name, data = audio_of(bot, followup)
    assert decoded_seconds(data) == pytest.approx(
        expected_seconds("Once more, with feeling."), abs=0.1
    )
    assert [c.dropped for c in openai_fake.realtime.connections] == [True, False]
