"""Media on Slack, at the wire: the real slack-bolt app against FakeSlack, the real core behind
it, the loopback OpenAI fake serving images and audio. Fixtures are made in the tests (Pillow
images, a 1 s tone encoded with PyAV)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from testing.fakes import slack_payloads as P
from tests.media_fixtures import CORRUPT_PNG, OGG, WAV, bw_mask, png
from tests.test_slack_adapter import Env, slack_running, until


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with slack_running(tmp_path, slack_clean=True, openai_clean=True) as environment:
        yield environment


async def answer_in_thread(env: Env, event: dict, count: int) -> list[str]:
    await env.slack.send_event(event)
    await env.settle(count)
    return env.bot_texts(event["channel"], event["ts"])


async def test_an_image_on_a_mention_goes_to_the_model_as_a_data_url(env: Env) -> None:
    image = env.slack.add_file("fox.png", png(), "image/png")
    mention = P.app_mention("what is this?", files=[image])
    assert await answer_in_thread(env, mention, 1) == ["echo: what is this?"]
    (turn,) = env.openai.turns
    assert turn.images[0].startswith("data:image/png;base64,")  # never Slack's private URL
    part = env.openai.requests[-1].json["input"][0]["content"][-1]
    assert part["type"] == "input_image" and part["detail"] == "auto"


async def test_a_voice_note_is_transcribed_then_answered(env: Env) -> None:
    clip = env.slack.add_file(
        "audio_message.webm", OGG, "audio/ogg", subtype="slack_audio", media_display_type="audio"
    )
    env.openai.transcript = lambda name, data: "what time is it"
    await env.slack.send_event(P.im_message("", files=[clip]))
    await env.settle(1)
    (text,) = env.bot_texts(P.DM_CHANNEL_ID)
    assert text == "> what time is it\n\necho: what time is it"


async def test_bad_files_are_explained_and_the_bot_keeps_serving(env: Env) -> None:
    broken = env.slack.add_file("broken.png", CORRUPT_PNG, "image/png")
    exe = env.slack.add_file("setup.exe", b"MZ\x90\x00", "application/x-msdownload")
    huge = env.slack.add_file("long.wav", WAV, "audio/wav", declared_size=30 * 1024 * 1024)
    await env.slack.send_event(P.im_message("look", files=[broken]))
    await env.slack.send_event(P.im_message("run it", files=[exe]))
    await env.slack.send_event(P.im_message("listen", files=[huge]))
    await env.slack.send_event(P.im_message("still there?"))
    await env.settle(4)
    texts = env.bot_texts(P.DM_CHANNEL_ID)
    # Socket Mode hands the four events to bolt's listeners concurrently, so their order of
    # arrival at the dispatcher (and of the answers) is not fixed: check each is answered.
    assert len(texts) == 4
    assert sum("looks damaged" in t for t in texts) == 1
    assert sum("I can read images (png, jpg, webp, gif" in t for t in texts) == 1
    assert sum("30.0 MB" in t for t in texts) == 1
    assert "echo: still there?" in texts


async def test_imagine_and_speak_post_files(env: Env) -> None:
    env.openai.revise = lambda prompt: "A fluffy cat, watercolour"
    await env.slack.send_slash_command("/imagine", "a cat size=1536x1024 quality=high count=2")
    await env.settle(1)
    await until(lambda: len(env.slack.uploads) == 2)
    assert [u.filename for u in env.slack.uploads] == ["image-1.png", "image-2.png"]
    assert all(u.data and u.data.startswith(b"\x89PNG") for u in env.slack.uploads)
    body = env.openai.requests[-1].json
    assert (body["size"], body["quality"], body["n"]) == ("1536x1024", "high", 2)
    assert any("Revised prompt: A fluffy cat" in t for t in env.bot_texts(P.CHANNEL_ID))

    await env.slack.send_slash_command("/speak", "Good morning voice=coral")
    await env.settle(2)
    await until(lambda: len(env.slack.uploads) == 3)
    assert env.slack.uploads[-1].filename == "speech.mp3"

    await env.slack.send_slash_command("/speak", "hi voice=robot")
    await env.slack.send_slash_command("/imagine", "")
    await env.settle(4)
    notes = [n["text"] for n in env.slack.ephemeral]
    assert any("Unknown voice “robot”" in n for n in notes)
    assert any("Tell me what to draw" in n for n in notes)


async def test_transcribe_without_a_file_says_how(env: Env) -> None:
    await env.slack.send_slash_command("/transcribe", "")
    await env.settle(1)
    (note,) = env.slack.ephemeral
    assert "needs an audio file" in note["text"] and "mention me with `/transcribe`" in note["text"]


async def test_a_mention_spelling_a_command_runs_it_with_the_files(env: Env) -> None:
    memo = env.slack.add_file("memo.wav", WAV, "audio/wav")
    mention = P.app_mention("/transcribe fr", files=[memo])
    texts = await answer_in_thread(env, mention, 1)
    assert texts == ["Transcript of “memo.wav”:\n> hello from memo.wav"]
    request = next(r for r in env.openai.requests if r.path == "/v1/audio/transcriptions")
    assert request.json["language"] == "fr"

    photo = env.slack.add_file("cat.png", png(), "image/png")
    mention = P.app_mention("/variation count=2", files=[photo])
    await env.slack.send_event(mention)
    await env.settle(2)
    await until(lambda: len(env.slack.uploads) == 2)
    assert [u.filename for u in env.slack.uploads] == ["variation-1.png", "variation-2.png"]


async def test_edit_shortcut_with_a_mask(env: Env) -> None:
    async def submit(mask_bytes: bytes) -> None:
        image = env.slack.add_file("sky.png", png((64, 48)), "image/png")
        message = P.message("my photo", files=[image])
        env.slack.record_event(message)
        await env.slack.wait_ack(
            await env.slack.send_interactive(P.message_shortcut("edit_image", message)),
            timeout=3,
        )
        await until(lambda: env.slack.views)
        view = env.slack.views.popitem()[1]
        mask = env.slack.add_file("mask.png", mask_bytes, "image/png")
        values = {
            "prompt": {"value": {"type": "plain_text_input", "value": "make it a sunset"}},
            "mask": {"value": {"type": "file_input", "files": [mask]}},
        }
        submission = P.view_submission(
            "edit_image_modal", values, private_metadata=view["private_metadata"]
        )
        await env.slack.wait_ack(await env.slack.send_interactive(submission), timeout=3)

    await submit(bw_mask((64, 48)))
    await env.settle(1)
    await until(lambda: env.slack.uploads)
    assert env.slack.uploads[-1].filename == "edited-1.png"
    (edit,) = [r for r in env.openai.requests if r.path == "/v1/images/edits"]
    assert edit.json["mask"]["content_type"] == "image/png"

    await submit(bw_mask((10, 10)))
    await env.settle(2)
    assert any("must be the same size" in n["text"] for n in env.slack.ephemeral)
