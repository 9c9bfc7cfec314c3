"""Core layer of the media capabilities: dispatcher + capabilities + storage with the loopback
OpenAI fake and a recording adapter."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from bot.core.types import Attachment, CommandCall, Reply
from bot.files.recordings import duration_seconds
from storage import runs
from testing.fakes.openai_fake import FakeOpenAI
from tests.harness import KEY, USER, Harness, make_settings
from tests.media_fixtures import CORRUPT_PNG, OGG, WAV, attachment, bw_mask, png

_ids = itertools.count(1)


async def harness(fake: FakeOpenAI, tmp_path: Path, **overrides: Any) -> Harness:
    return await Harness.start(make_settings(fake.base_url, tmp_path, **overrides))


async def command(
    h: Harness,
    name: str,
    text: str = "",
    *,
    options: dict[str, str] | None = None,
    attachments: tuple[Attachment, ...] = (),
) -> Reply:
    before = len(h.outbox.replies)
    call = CommandCall(
        KEY,
        USER,
        name,
        f"cmd{next(_ids)}",
        text=text,
        options=options or {},
        attachments=attachments,
    )
    assert await h.app.dispatcher.submit(call)
    await h.app.dispatcher.wait_idle()
    (reply,) = h.outbox.replies[before:]
    return reply


async def media_runs(h: Harness) -> list[dict[str, Any]]:
    rows = await h.app.db.fetch_all(
        "SELECT r.kind, r.status, r.model, u.images, u.image_output_tokens, u.audio_seconds, "
        "u.characters, u.cost_usd FROM runs r LEFT JOIN usage u ON u.run_id = r.id "
        "WHERE r.kind != 'chat' ORDER BY r.id"
    )
    return [dict(row) for row in rows]


async def test_imagine_posts_images_and_records_the_run(fake: FakeOpenAI, tmp_path: Path) -> None:
    h = await harness(fake, tmp_path)
    fake.revise = lambda prompt: f"A detailed {prompt}"
    try:
        reply = await command(h, "imagine", "a red fox size=1536x1024 quality=high count=2")
        assert [f.name for f in reply.files] == ["image-1.png", "image-2.png"]
        assert reply.files[0].data.startswith(b"\x89PNG")
        assert "Revised prompt: A detailed a red fox" in reply.text
        (request,) = [r for r in fake.requests if r.path == "/v1/images/generations"]
        assert request.json["n"] == 2 and request.json["size"] == "1536x1024"
        assert request.json["model"] == h.app.settings.image_model
        (run,) = await media_runs(h)
        assert (run["kind"], run["status"], run["images"]) == ("image", "completed", 2)
        assert run["image_output_tokens"] == 544 and run["cost_usd"] > 0

        bad = await command(h, "imagine", "a fox size=7x7")
        assert "Unknown size “7x7”" in bad.text and bad.ephemeral
        empty = await command(h, "imagine", "   ")
        assert "Tell me what to draw" in empty.text
        fake.refuse = lambda prompt: "forbidden" in prompt
        refused = await command(h, "imagine", "something forbidden")
        assert "safety system declined" in refused.text
        assert (await media_runs(h))[-1]["status"] == "failed"
        again = await command(h, "imagine", "a calm lake")
        assert len(again.files) == 1
    finally:
        await h.close()


async def test_edit_converts_a_black_and_white_mask_and_refuses_a_wrong_size(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    h = await harness(fake, tmp_path)
    try:
        source = attachment("photo.png", png((64, 48)), "image/png")
        mask = attachment("mask.png", bw_mask((64, 48)), "image/png")
        reply = await command(
            h,
            "edit",
            "add a hat",
            options={"prompt": "add a hat", "image": "photo.png", "mask": "mask.png"},
            attachments=(source, mask),
        )
        assert [f.name for f in reply.files] == ["edited-1.png"]
        (request,) = [r for r in fake.requests if r.path == "/v1/images/edits"]
        assert request.json["prompt"] == "add a hat" and request.json["mask"]["size"] > 0
        wrong = attachment("mask.png", bw_mask((32, 32)), "image/png")
        refused = await command(h, "edit", "add a hat", attachments=(source, wrong))
        assert "must be the same size" in refused.text
        broken = attachment("broken.png", CORRUPT_PNG, "image/png")
        corrupt = await command(h, "edit", "fix it", attachments=(broken,))
        assert "looks damaged" in corrupt.text
        none = await command(h, "edit", "fix it")
        assert "needs an image" in none.text
        kinds = [r["kind"] for r in await media_runs(h)]
        assert kinds == ["edit"]
    finally:
        await h.close()


async def test_variation_is_always_an_edit_and_is_priced(fake: FakeOpenAI, tmp_path: Path) -> None:
    """The retired variations endpoint is never called, even with the old opt-in set; the run
    is priced from the edit's token usage (it used to be recorded at $0)."""
    h = await harness(fake, tmp_path, SWITCHBOARD_IMAGE_VARIATIONS_ENDPOINT="true")
    try:
        source = attachment("cat.jpg", png((40, 40)), "image/jpeg")
        reply = await command(h, "variation", "count=2", attachments=(source,))
        assert len(reply.files) == 2 and "2 variations" in reply.text
        assert [r.path for r in fake.requests if "images" in r.path] == ["/v1/images/edits"]
        (run,) = await media_runs(h)
        assert (run["kind"], run["status"], run["images"]) == ("variation", "completed", 2)
        assert run["image_output_tokens"] == 544 and run["cost_usd"] > 0
    finally:
        await h.close()


async def test_transcribe_translate_and_speak(fake: FakeOpenAI, tmp_path: Path) -> None:
    h = await harness(fake, tmp_path)
    try:
        voice = attachment("voice.ogg", OGG, "audio/ogg")
        reply = await command(h, "transcribe", "fr", attachments=(voice,))
        assert reply.text == "Transcript of “voice.ogg”:\n> hello from voice.ogg"
        request = [r for r in fake.requests if r.path == "/v1/audio/transcriptions"][-1]
        assert request.json["language"] == "fr" and request.json["file"]["data"] == OGG

        fake.transcript = lambda name, data: "bonjour " * 300
        long = await command(h, "translate", attachments=(attachment("a.wav", WAV, "audio/wav"),))
        assert long.files[0].name == "translation.txt"
        assert [r.path for r in fake.requests if r.path.startswith("/v1/audio")][-1] == (
            "/v1/audio/transcriptions"
        )
        assert "Translate the user's text into English" in fake.turns[-1].instructions

        spoken = await command(h, "speak", "Good morning voice=coral")
        (audio,) = spoken.files
        assert (audio.name, audio.mime) == ("speech.mp3", "audio/mpeg")
        assert duration_seconds(audio.data, audio.name) == pytest.approx(
            len("Good morning") * 0.06, abs=0.1
        )
        session = fake.realtime.connections[-1]  # the default speech model: the Realtime API
        assert (session.voice, session.texts) == ("coral", ["Good morning"])
        unknown = await command(h, "speak", "hi voice=robot")
        assert "Unknown voice “robot”" in unknown.text
        exe = await command(
            h, "transcribe", attachments=(attachment("x.exe", b"MZ", "application/octet-stream"),)
        )
        assert "I can read images (png, jpg, webp, gif" in exe.text

        kinds = [(r["kind"], r["status"]) for r in await media_runs(h)]
        assert kinds == [
            ("transcription", "completed"),
            ("transcription", "completed"),
            ("translation", "completed"),
            ("speech", "completed"),
        ]
        rows = await media_runs(h)
        assert rows[0]["audio_seconds"] == pytest.approx(1.0, abs=0.05)
        assert rows[0]["cost_usd"] > 0 and rows[3]["characters"] == len("Good morning")
    finally:
        await h.close()


async def test_translation_through_the_endpoint_when_configured(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.models.append({"id": "whisper-1", "object": "model", "created": 0, "owned_by": "system"})
    h = await harness(fake, tmp_path, SWITCHBOARD_TRANSLATION="endpoint")
    try:
        reply = await command(h, "translate", attachments=(attachment("v.ogg", OGG, "audio/ogg"),))
        assert "(English) hello from v.ogg" in reply.text
        assert fake.requests[-1].path == "/v1/audio/translations"
    finally:
        await h.close()


async def test_messages_with_images_and_voice_notes(fake: FakeOpenAI, tmp_path: Path) -> None:
    h = await harness(fake, tmp_path)
    try:
        photo = attachment("a.png", png(), "image/png")
        answer = await h.say("what is this?", attachments=(photo, photo))
        assert answer == "echo: what is this?"
        turn = fake.turns[-1]
        assert len(turn.images) == 2 and turn.images[0].startswith("data:image/png;base64,")
        parts = fake.requests[-1].json["input"][0]["content"]
        assert parts[1] == {"type": "input_image", "image_url": turn.images[0], "detail": "auto"}

        voice = attachment("voice.ogg", OGG, "audio/ogg")
        answer = await h.say("", attachments=(voice,))
        assert answer == "> hello from voice.ogg\n\necho: hello from voice.ogg"

        broken = await h.say("look", attachments=(attachment("b.png", CORRUPT_PNG, "image/png"),))
        assert "looks damaged" in broken
        exe = await h.say(
            "run this", attachments=(attachment("setup.exe", b"MZ", "application/x-msdownload"),)
        )
        assert "I can read images (png, jpg, webp, gif" in exe
        assert await h.say("still there?") == "echo: still there?"
        statuses = [r.status for r in [await runs.get_run(h.app.db, i) for i in range(1, 9)] if r]
        assert "queued" not in statuses and "in_progress" not in statuses
    finally:
        await h.close()


async def test_chat_backend_sends_image_parts_and_keeps_text_history(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    h = await harness(fake, tmp_path, SWITCHBOARD_BACKEND="chat")
    try:
        photo = attachment("a.png", png(), "image/png")
        assert await h.say("describe", attachments=(photo,)) == "echo: describe"
        last = fake.requests[-1].json["messages"][-1]
        assert last["content"][0] == {"type": "text", "text": "describe"}
        assert last["content"][1]["type"] == "image_url"
        assert last["content"][1]["image_url"]["detail"] == "auto"
        assert await h.say("and now?") == "echo: and now?"
        history = fake.requests[-1].json["messages"]
        assert history[-3] == {"role": "user", "content": "describe"}  # text only in history
    finally:
        await h.close()


async def test_voice_replies_add_an_audio_file(fake: FakeOpenAI, tmp_path: Path) -> None:
    from storage.configs import save_overrides

    h = await harness(fake, tmp_path)
    try:
        settings = {"voice_replies": True, "voice": "sage"}
        await save_overrides(h.app.db, KEY, settings, updated_by="U1")
        await h.app.dispatcher.submit(h.message("hello"))
        await h.app.dispatcher.wait_idle()
        assert h.outbox.streams[-1].final == "echo: hello"
        voice_reply = h.outbox.replies[-1]
        assert voice_reply.files[0].name == "speech.mp3"
        session = fake.realtime.connections[-1]
        assert (session.voice, session.texts) == ("sage", ["echo: hello"])
    finally:
        await h.close()


async def test_an_unknown_image_model_names_its_setting(fake: FakeOpenAI, tmp_path: Path) -> None:
    h = await harness(fake, tmp_path, SWITCHBOARD_IMAGE_MODEL="no-such-image-model")
    try:
        reply = await command(h, "imagine", "a boat")
        assert "`no-such-image-model` is not available" in reply.text
        assert "SWITCHBOARD_IMAGE_MODEL" in reply.text
    finally:
        await h.close()


def test_a_bad_speech_format_is_a_config_error() -> None:
    from bot.core.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="SWITCHBOARD_SPEECH_FORMAT"):
        load_settings(SWITCHBOARD_SPEECH_FORMAT="midi")


async def test_the_fake_refuses_what_the_api_refuses(fake: FakeOpenAI) -> None:
    """The fake's media endpoints, driven by the real SDK: what the real API would refuse."""
    import openai

    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
    try:
        with pytest.raises(openai.BadRequestError) as bad_mask:
            await client.images.edit(
                model="gpt-image-2.6-sunburst",
                prompt="x",
                image=("a.png", png((64, 48)), "image/png"),
                mask=("m.png", bw_mask((64, 48)), "image/png"),  # no alpha channel
            )
        assert bad_mask.value.code == "invalid_mask"
        with pytest.raises(openai.BadRequestError) as bad_image:
            await client.images.edit(
                model="gpt-image-2.6-sunburst",
                prompt="x",
                image=("a.png", CORRUPT_PNG, "image/png"),
            )
        assert bad_image.value.code == "invalid_image_format"
        with pytest.raises(openai.BadRequestError):
            await client.audio.transcriptions.create(
                model="gpt-transcribe", file=("a.exe", b"MZ", "application/octet-stream")
            )
        with pytest.raises(openai.APIStatusError) as too_big:
            await client.audio.transcriptions.create(
                model="gpt-transcribe", file=("a.wav", b"\0" * (25 * 1024 * 1024 + 1), "audio/wav")
            )
        assert too_big.value.status_code == 413
        speech = await client.audio.speech.create(model="gpt-4o-mini-tts", voice="nova", input="hi")
        assert speech.content == fake.speech_audio
    finally:
        await client.close()


async def test_a_30_mb_recording_is_converted_before_upload(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    """Over the endpoint's 25 MB: re-encoded (mono 16 kHz mp3) instead of refused, when the
    platform let it through (the adapters' own download limits are tested at the wire)."""
    import array
    import io
    import math
    import wave

    rate = 48_000
    second = array.array(
        "h", (int(math.sin(2 * math.pi * 440 * i / rate) * 9000) for i in range(rate))
    ).tobytes()
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(second * 330)
    big = out.getvalue()
    assert len(big) > 30 * 1024 * 1024
    h = await harness(fake, tmp_path)
    try:
        answer = await h.say("", attachments=(attachment("meeting.wav", big, "audio/wav"),))
        assert answer == "> hello from meeting.mp3\n\necho: hello from meeting.mp3"
        upload = next(r for r in fake.requests if r.path == "/v1/audio/transcriptions")
        assert upload.json["file"]["content_type"] == "audio/mpeg"
        assert upload.json["file"]["size"] < 25 * 1024 * 1024
        (run,) = await media_runs(h)
        assert run["audio_seconds"] == pytest.approx(330, abs=1)
    finally:
        await h.close()


async def test_images_over_the_limit_are_left_out_with_a_note(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    h = await harness(fake, tmp_path, SWITCHBOARD_MAX_IMAGES=1)
    try:
        photo = attachment("a.png", png(), "image/png")
        answer = await h.say("compare", attachments=(photo, photo))
        assert answer == "(I looked at the first 1 of your 2 images.)\n\necho: compare"
        assert len(fake.turns[-1].images) == 1
    finally:
        await h.close()
