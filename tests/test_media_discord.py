"""Media on Discord, at the wire: the real discord.py client against FakeDiscord, the real core
behind it, the loopback OpenAI fake serving images and audio. Fixtures are made in the tests
(Pillow images, a 1 s tone encoded with PyAV)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import discord
import discord.gateway
import discord.http
import pytest

from testing.fakes.discord_payloads import MsgFlag
from testing.fakes.openai_fake import FakeOpenAI
from tests.media_fixtures import CORRUPT_PNG, OGG, WAV, bw_mask, png
from tests.test_discord_adapter import (
    Bot,
    fake_discord,
    mention,
    running_bot,
    wait_followup,
)


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


async def test_an_image_on_a_mention_goes_to_the_model(bot: Bot, openai_fake: FakeOpenAI) -> None:
    dc = bot.dc
    image = dc.add_attachment("fox.png", png(), "image/png")
    incoming = await dc.send_message_create(
        dc.text_channel["id"], dc.member, mention(dc, "what is this?"), attachments=[image]
    )
    assert (await bot.answer_to(incoming))["content"] == "echo: what is this?"
    (turn,) = openai_fake.turns
    assert turn.images[0].startswith("data:image/png;base64,")  # never the CDN URL


async def test_a_voice_message_is_transcribed_then_answered(
    bot: Bot, openai_fake: FakeOpenAI
) -> None:
    dc = bot.dc
    openai_fake.transcript = lambda name, data: "how are you"
    voice = dc.add_attachment(
        "voice-message.ogg", OGG, "audio/ogg", duration_secs=1.0, waveform=b"\x01\x7f"
    )
    incoming = await dc.send_message_create(dc.dm["id"], dc.member, "", attachments=[voice])
    answer = await bot.answer_to(incoming)
    assert answer["content"] == "> how are you\n\necho: how are you"
    (request,) = [r for r in openai_fake.requests if r.path == "/v1/audio/transcriptions"]
    assert request.json["file"]["data"] == OGG


async def test_bad_files_are_explained_and_the_bot_keeps_serving(bot: Bot) -> None:
    dc = bot.dc
    cid = dc.dm["id"]
    for name, data, mime, extra in (
        ("broken.png", CORRUPT_PNG, "image/png", {}),
        ("setup.exe", b"MZ\x90\x00", "application/x-msdownload", {}),
        ("long.wav", WAV, "audio/wav", {"declared_size": 30 * 1024 * 1024}),
    ):
        att = dc.add_attachment(name, data, mime, **extra)
        incoming = await dc.send_message_create(cid, dc.member, "look", attachments=[att])
        reply = await bot.answer_to(incoming)
        if name == "broken.png":
            assert "looks damaged" in reply["content"]
        elif name == "setup.exe":
            assert "I can read images (png, jpg, webp, gif" in reply["content"]
        else:
            assert "30.0 MB" in reply["content"]
    incoming = await dc.send_message_create(cid, dc.member, "still there?")
    assert (await bot.answer_to(incoming))["content"] == "echo: still there?"


async def test_imagine_with_named_options(bot: Bot, openai_fake: FakeOpenAI) -> None:
    dc = bot.dc
    inter = await dc.send_interaction(
        "imagine",
        {"prompt": "a lighthouse", "size": "1024x1536", "quality": "low", "count": 2},
        user=dc.member,
    )
    followup = await wait_followup(dc, inter)
    assert [a["filename"] for a in followup["attachments"]] == ["image-1.png", "image-2.png"]
    assert not followup["flags"] & MsgFlag.EPHEMERAL
    body = next(r for r in openai_fake.requests if r.path == "/v1/images/generations").json
    assert (body["prompt"], body["size"], body["quality"], body["n"]) == (
        "a lighthouse",
        "1024x1536",
        "low",
        2,
    )


async def test_edit_and_variation_with_attachments(bot: Bot, openai_fake: FakeOpenAI) -> None:
    dc = bot.dc
    image = dc.add_attachment("cat.png", png((64, 48)), "image/png")
    mask = dc.add_attachment("mask.png", bw_mask((64, 48)), "image/png")
    inter = await dc.send_interaction(
        "edit", {"prompt": "add a hat", "image": image, "mask": mask}, user=dc.member
    )
    followup = await wait_followup(dc, inter)
    assert [a["filename"] for a in followup["attachments"]] == ["edited-1.png"]

    small = dc.add_attachment("small.png", bw_mask((8, 8)), "image/png")
    image2 = dc.add_attachment("cat.png", png((64, 48)), "image/png")
    inter = await dc.send_interaction(
        "edit", {"prompt": "add a hat", "image": image2, "mask": small}, user=dc.member
    )
    refused = await wait_followup(dc, inter)
    assert "must be the same size" in refused["content"]
    assert refused["flags"] & MsgFlag.EPHEMERAL

    image3 = dc.add_attachment("cat.png", png((64, 48)), "image/png")
    inter = await dc.send_interaction("variation", {"image": image3, "count": 2}, user=dc.member)
    variations = await wait_followup(dc, inter)
    assert len(variations["attachments"]) == 2
    edits = [r for r in openai_fake.requests if r.path == "/v1/images/edits"]
    assert len(edits) == 2 and edits[-1].json["n"] == 2


async def test_transcribe_translate_and_speak(bot: Bot, openai_fake: FakeOpenAI) -> None:
    dc = bot.dc
    audio = dc.add_attachment("memo.wav", WAV, "audio/wav")
    inter = await dc.send_interaction(
        "transcribe", {"audio": audio, "language": "en"}, user=dc.member
    )
    followup = await wait_followup(dc, inter)
    assert followup["content"] == "Transcript of “memo.wav”:\n> hello from memo.wav"

    audio2 = dc.add_attachment("memo.ogg", OGG, "audio/ogg")
    inter = await dc.send_interaction("translate", {"audio": audio2}, user=dc.member)
    followup = await wait_followup(dc, inter)
    assert followup["content"].startswith("English translation of “memo.ogg”:\n> echo:")

    inter = await dc.send_interaction("speak", {"text": "Hello there", "voice": "coral"})
    followup = await wait_followup(dc, inter)
    assert [a["filename"] for a in followup["attachments"]] == ["speech.mp3"]

    inter = await dc.send_interaction("speak", {"text": "Hello", "voice": "robot"})
    followup = await wait_followup(dc, inter)
    assert "Unknown voice “robot”" in followup["content"]


async def test_channel_settings_vision_detail_and_voice_replies(
    bot: Bot, openai_fake: FakeOpenAI
) -> None:
    from bot.core.types import ConversationKey
    from storage.configs import save_overrides

    dc = bot.dc
    cid = dc.text_channel["id"]
    key = ConversationKey("discord", dc.guild["id"], cid, "")
    overrides = {"vision_detail": "high", "voice_replies": True, "voice": "verse"}
    await save_overrides(bot.app.db, key, overrides, updated_by="admin")
    image = dc.add_attachment("chart.png", png(), "image/png")
    incoming = await dc.send_message_create(
        cid, dc.member, mention(dc, "explain"), attachments=[image]
    )
    assert (await bot.answer_to(incoming))["content"] == "echo: explain"
    parts = next(r for r in openai_fake.requests if r.path == "/v1/responses").json["input"]
    assert parts[0]["content"][-1]["detail"] == "high"
    await dc.wait_for(
        lambda: any(m.get("attachments") for m in bot.bot_messages(cid)), 5, "the voice reply"
    )
    voice = next(m for m in bot.bot_messages(cid) if m.get("attachments"))
    assert [a["filename"] for a in voice["attachments"]] == ["speech.mp3"]
    (session,) = openai_fake.realtime.connections
    assert (session.voice, session.texts) == ("verse", ["echo: explain"])
