"""Issue 19, items 4 and 5: files that cost far more than their size, and files that make FFmpeg
reach outside them. Crafted in the test with real Pillow and PyAV, sent through slack-bolt
against the Slack fake, decoded by the real helpers."""

from __future__ import annotations

import asyncio
import io
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from bot.core.types import Attachment, ConversationKey
from bot.files import pictures
from bot.files.recordings import tone
from testing.fakes import slack_payloads as P
from tests.harness import Harness, make_settings
from tests.test_slack_adapter import Env, slack_running


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with slack_running(tmp_path, slack_clean=True, openai_clean=True) as environment:
        yield environment


def encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


async def test_image_bombs_and_formats_the_bot_does_not_need_are_refused(env: Env) -> None:
    # 64 megapixels in a few KiB: under the old cap, decoded at up to half a GiB
    bomb = encoded(Image.new("1", (8000, 8000)), "PNG")
    assert len(bomb) < 300 * 1024
    # a PPM (Pillow reads it; the bot has no use for it) dressed up as a PNG
    ppm = encoded(Image.new("RGB", (64, 64), "red"), "PPM")
    files = [
        env.slack.add_file("bomb.png", bomb, "image/png"),
        env.slack.add_file("photo.png", ppm, "image/png"),
    ]
    for index, file in enumerate(files):
        await env.slack.send_event(P.im_message(f"look {index}", files=[file]))
        await env.settle(index + 1)
    texts = env.bot_texts(P.DM_CHANNEL_ID)
    assert "“bomb.png” has too many pixels for me to open (8000×8000)" in texts[0]
    assert "I couldn't read “photo.png” as an image" in texts[1]
    assert env.openai.turns == []  # nothing went to the model

    # A big phone photo is still taken: decoded at a reduced size by the JPEG decoder.
    photo = encoded(Image.new("L", (7000, 6000), 200), "JPEG")
    file = env.slack.add_file("phone.jpg", photo, "image/jpeg")
    await env.slack.send_event(P.im_message("and this?", files=[file]))
    await env.settle(3)
    assert env.bot_texts(P.DM_CHANNEL_ID)[-1] == "echo: and this?"
    (turn,) = env.openai.turns
    sent = Image.open(io.BytesIO(_data_url_bytes(turn.images[0])))
    assert max(sent.size) == 2048


def _data_url_bytes(url: str) -> bytes:
    import base64

    return base64.b64decode(url.split(",", 1)[1])


async def test_at_most_a_few_images_are_decoded_at_once(
    fake: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six conversations send big images at the same moment; Pillow's decoder is watched (not
    replaced) to count how many decode at once."""
    active = 0
    most = 0
    lock = threading.Lock()
    real_load = ImageFile.ImageFile.load

    def watched_load(self: ImageFile.ImageFile) -> object:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        try:
            threading.Event().wait(0.05)  # long enough for the others to pile up
            return real_load(self)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(ImageFile.ImageFile, "load", watched_load)
    bot = await Harness.start(make_settings(fake.base_url, tmp_path))  # type: ignore[attr-defined]
    try:
        data = encoded(Image.new("RGB", (3000, 3000), "blue"), "PNG")

        async def fetch() -> bytes:
            return data

        for n in range(6):
            image = Attachment("image", "image/png", f"big{n}.png", len(data), fetch)
            key = ConversationKey("test", "W1", f"C{n}")
            assert await bot.app.dispatcher.submit(
                bot.message("what is it?", key=key, attachments=(image,))
            )
        await bot.app.dispatcher.wait_idle()
        assert len(bot.outbox.shown) == 6
        assert 1 <= most <= pictures.MAX_DECODES
    finally:
        await bot.close()


async def test_an_ffconcat_voice_note_cannot_read_a_local_file(env: Env, tmp_path: Path) -> None:
    # A recording on the bot's disk, and a 40-byte "voice note" naming it.
    secret = tmp_path / "secret.wav"
    secret.write_bytes(tone(1.0))
    os.chdir(tmp_path)
    playlist = b"ffconcat version 1.0\nfile secret.wav\n"
    heard: list[bytes] = []
    env.openai.transcript = lambda name, data: heard.append(data) or "the secret recording"
    for name, mime in (("audio_message.ogg", "audio/ogg"), ("note.opus", "audio/opus")):
        clip = env.slack.add_file(name, playlist, mime, subtype="slack_audio")
        await env.slack.send_event(P.im_message("", files=[clip]))
    await env.settle(2)
    texts = env.bot_texts(P.DM_CHANNEL_ID)
    assert len(texts) == 2
    assert all("couldn't read" in t and "as audio" in t for t in texts), texts
    assert heard == []  # nothing was transcribed
    assert not any("secret recording" in t for t in texts)
    await asyncio.sleep(0)


def test_decoded_sound_is_capped_whatever_the_header_says(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.core.errors import UserError
    from bot.files import recordings

    monkeypatch.setattr(recordings, "MAX_SECONDS", 1)
    clip = tone(2.0, fmt="ogg")
    with pytest.raises(UserError, match="longer than I take"):
        recordings.transcode(clip, "long.opus")
    with pytest.raises(UserError, match="longer than I take"):
        recordings.duration_seconds(clip, "long.opus")
