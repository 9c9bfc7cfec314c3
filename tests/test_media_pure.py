"""Pure tests of the media helpers: the option parser, the supported-files table, the Pillow
and PyAV helpers."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.core.errors import UserError
from bot.features.media_options import Option, parse
from bot.files import pictures as images
from bot.files import recordings as audio
from bot.files.supported import Limits, check_attachment, media_kind
from tests.media_fixtures import (
    CORRUPT_PNG,
    OGG,
    WAV,
    alpha_mask,
    attachment,
    bw_mask,
    image_bytes,
    png,
)

SPECS = (
    Option("size", ("auto", "1024x1024", "1536x1024")),
    Option("quality", ("low", "high")),
    Option("count", low=1, high=4),
)


def test_slack_text_and_discord_options_parse_the_same() -> None:
    slack = parse("a cat size=1536x1024 quality=HIGH count=2", {}, SPECS, text_option="prompt")
    discord = parse(
        "a cat",
        {"prompt": "a cat", "size": "1536x1024", "quality": "high", "count": "2"},
        SPECS,
        text_option="prompt",
    )
    assert slack == discord
    assert slack.text == "a cat" and slack.values == {
        "size": "1536x1024",
        "quality": "high",
        "count": 2,
    }


def test_unknown_keys_stay_in_the_text_and_bad_values_are_explained() -> None:
    assert parse("x=1 a dog", {}, SPECS).text == "x=1 a dog"
    with pytest.raises(UserError, match=r"Unknown size “7x7”\. Choose one of: auto, 1024x1024"):
        parse("a dog size=7x7", {}, SPECS)
    with pytest.raises(UserError, match="count must be a whole number from 1 to 4"):
        parse("a dog count=9", {}, SPECS)


def test_supported_files_table() -> None:
    assert media_kind("a.png", "image/png") == "image"
    assert media_kind("voice.ogg", "audio/ogg") == "audio"
    assert media_kind("clip", "audio/webm") == "audio"
    assert media_kind("a.png", "audio/ogg") is None  # extension and type disagree
    assert media_kind("setup.exe", "application/x-msdownload") is None
    with pytest.raises(UserError, match=r"I can read images \(png, jpg, webp, gif"):
        check_attachment(attachment("setup.exe", b"MZ", "application/octet-stream"))
    big = attachment("big.wav", b"RIFF" * 1024 * 1024, "audio/wav")
    with pytest.raises(UserError, match=r"is 4\.0 MB; I take audio files up to 1 MB"):
        check_attachment(big, "audio", Limits(audio_bytes=1024 * 1024))
    with pytest.raises(UserError, match="not an image"):
        check_attachment(attachment("a.wav", b"RIFF", "audio/wav"), "image")


def test_vision_passes_small_pngs_through_and_reencodes_the_rest() -> None:
    small = png()
    same = images.prepare_for_vision(small, "a.png")
    assert same.data == small and same.mime == "image/png"
    assert same.data_url().startswith("data:image/png;base64,")
    huge = images.prepare_for_vision(png((4000, 1000)), "wide.png", max_side=2048)
    assert (huge.width, huge.height) == (2048, 512)
    bmp = images.prepare_for_vision(image_bytes("BMP"), "old.bmp")
    assert bmp.mime == "image/jpeg" and bmp.name == "old.jpg"
    with pytest.raises(UserError, match="looks damaged"):
        images.prepare_for_vision(CORRUPT_PNG, "broken.png")


def test_edit_source_and_masks() -> None:
    gif = images.prepare_for_edit(image_bytes("GIF"), "anim.gif")
    assert gif.mime == "image/png" and gif.name == "anim.png"
    converted = images.prepare_mask(bw_mask(), "mask.png", (64, 48))
    with Image.open(io.BytesIO(converted.data)) as mask:
        assert mask.mode == "RGBA"
        assert mask.getpixel((10, 10))[3] == 0  # white -> transparent: change here
        assert mask.getpixel((40, 40))[3] == 255  # black -> opaque: keep
    kept = images.prepare_mask(alpha_mask(), "alpha.png", (64, 48))
    with Image.open(io.BytesIO(kept.data)) as mask:
        assert mask.getpixel((10, 10))[3] == 0 and mask.getpixel((40, 40))[3] == 255
    with pytest.raises(UserError, match="is 32×32 but the image is 64×48"):
        images.prepare_mask(bw_mask((32, 32)), "small.png", (64, 48))


def test_audio_helpers_measure_convert_and_split() -> None:
    assert audio.duration_seconds(WAV, "a.wav") == pytest.approx(1.0, abs=0.05)
    assert audio.duration_seconds(OGG, "a.ogg") == pytest.approx(1.0, abs=0.05)
    (same,) = audio.prepare_for_transcription(OGG, "voice.ogg")
    assert same.data == OGG and same.mime == "audio/ogg"
    (converted,) = audio.prepare_for_transcription(OGG, "voice.opus")  # not a container it takes
    assert converted.name == "voice.mp3" and converted.mime == "audio/mpeg"
    assert audio.duration_seconds(converted.data, "voice.mp3") == pytest.approx(1.0, abs=0.1)
    long = audio.tone(5.0)
    parts = audio.prepare_for_transcription(long, "long.wav", upload_limit=10_000)
    assert len(parts) > 1 and all(len(p.data) <= 10_000 for p in parts)
    assert sum(p.seconds for p in parts) == pytest.approx(5.0, abs=0.1)
    with pytest.raises(UserError, match=r"couldn't read “junk\.ogg” as audio"):
        audio.duration_seconds(b"OggS not really", "junk.ogg")
