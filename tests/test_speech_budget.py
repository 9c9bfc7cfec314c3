"""Audio is priced and moderated: Realtime speech usage costed from the price table so budgets
count `/speak` and voice replies; moderation (when on) screens `/speak` text, `/imagine` and
`/edit` prompts and voice-note transcripts. Core layer, against the loopback OpenAI fake."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.core.config import MODEL_DEFAULTS
from bot.core.types import Actor, Attachment, CommandCall, ConversationKey, Reply, Usage
from bot.spend.pricing import PriceTable
from storage.configs import save_overrides
from testing.fakes.openai_fake import FakeOpenAI
from tests.harness import KEY, USER, Harness, make_settings
from tests.media_fixtures import OGG, attachment, png

SPEECH = MODEL_DEFAULTS["speech"]
TINY = "0.000001"  # any real speech costs more than this
ADMIN = Actor("UADMIN", "root", is_admin=True)
_ids = itertools.count(1)


async def start(fake: FakeOpenAI, tmp_path: Path, **settings: Any) -> Harness:
    return await Harness.start(make_settings(fake.base_url, tmp_path, **settings))


async def command(
    h: Harness, name: str, text: str = "", attachments: tuple[Attachment, ...] = ()
) -> Reply:
    before = len(h.outbox.replies)
    call = CommandCall(KEY, USER, name, f"c{next(_ids)}", text=text, attachments=attachments)
    assert await h.app.dispatcher.submit(call)
    await h.app.dispatcher.wait_idle()
    (reply,) = h.outbox.replies[before:]
    return reply


async def costs(h: Harness, kind: str) -> list[float | None]:
    rows = await h.app.db.fetch_all(
        "SELECT u.cost_usd FROM runs r JOIN usage u ON u.run_id = r.id WHERE r.kind = ? "
        "ORDER BY r.id",
        (kind,),
    )
    return [r["cost_usd"] for r in rows]


def test_realtime_speech_is_priced_by_text_and_audio_tokens() -> None:
    prices = PriceTable.load()
    price = prices.models[SPEECH]
    usage = Usage(
        model=SPEECH,
        input_tokens=120,
        output_tokens=400,
        audio_output_tokens=380,
        characters=300,
    )
    expected = (120 * price.input + 20 * price.output + 380 * price.audio_output) / Decimal(
        1_000_000
    )
    assert prices.cost(usage) == expected and expected > 0
    assert price.audio_output > price.output  # audio is the dear part
    assert prices.cost(Usage(model="whisper-1", audio_seconds=60)) == Decimal("0.006")
    assert prices.cost(Usage(model="tts-1", characters=1_000_000)) == Decimal(15)


async def test_a_daily_budget_counts_speak(fake: FakeOpenAI, tmp_path: Path) -> None:
    h = await start(fake, tmp_path, SWITCHBOARD_BUDGET_USER_DAILY_USD=TINY)
    try:
        first = await command(h, "speak", "Spend a little.")
        assert first.files and first.files[0].name == "speech.mp3"
        (cost,) = await costs(h, "speech")
        assert cost is not None and cost > float(TINY)
        refused = await command(h, "speak", "And a little more.")
        assert "your daily limit" in refused.text and not refused.files
        assert len(fake.realtime.connections) == 1
    finally:
        await h.close()


async def test_voice_replies_are_priced_and_shown_in_usage(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    h = await start(fake, tmp_path)
    try:
        await save_overrides(h.app.db, KEY, {"voice_replies": True}, updated_by="UADMIN")
        assert await h.app.dispatcher.submit(h.message("hello"))
        await h.app.dispatcher.wait_idle()
        assert h.outbox.replies[-1].files[0].name == "speech.mp3"
        (cost,) = await costs(h, "speech")
        assert cost is not None and cost > 0
        report = await h.command("usage", "me")
        assert SPEECH in report
    finally:
        await h.close()


async def test_moderation_screens_speech_image_prompts_and_voice_notes(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    h = await start(fake, tmp_path)
    try:
        assert "is on in this channel" in await h.command("usage", "moderation on", actor=ADMIN)

        spoken = await command(h, "speak", "Say FLAGME out loud")
        assert "This text was flagged by moderation (violence) and was not spoken" in spoken.text
        imagined = await command(h, "imagine", "a FLAGME scene")
        assert "This prompt was flagged by moderation (violence)" in imagined.text
        photo = attachment("p.png", png(), "image/png")
        edited = await command(h, "edit", "make it FLAGME", attachments=(photo,))
        assert "This prompt was flagged by moderation (violence)" in edited.text
        fake.transcript = lambda name, data: "please FLAGME now"
        heard = await h.say("", attachments=(attachment("v.ogg", OGG, "audio/ogg"),))
        assert "What you said in the recording was flagged by moderation (violence)" in heard

        assert fake.realtime.connections == [] and fake.turns == []
        assert not [r for r in fake.requests if r.path.startswith("/v1/images")]
        rows = await h.app.db.fetch_all("SELECT excerpt FROM moderation_flags ORDER BY id")
        assert [r["excerpt"] for r in rows] == [
            "Say FLAGME out loud",
            "a FLAGME scene",
            "make it FLAGME",
            "please FLAGME now",
        ]

        fine = await command(h, "speak", "A fine sentence.")
        assert fine.files
        other = ConversationKey(KEY.platform, KEY.workspace, "C-unmoderated")
        call = CommandCall(other, USER, "speak", "c-other", text="FLAGME elsewhere")
        assert await h.app.dispatcher.submit(call)
        await h.app.dispatcher.wait_idle()
        assert h.outbox.replies[-1].files  # moderation is per channel
    finally:
        await h.close()
