"""`doctor` past the 2027 shutdowns: clean with default settings on an endpoint where they
have happened (the fake's date moved), warnings for pinned old models and for the opt-in that
still calls /audio/translations."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest

from bot.doctor import run_doctor
from testing.fakes.openai_fake import FakeOpenAI
from testing.fakes.slack_fake import FakeSlack
from tests.harness import make_settings


async def doctor(
    tmp_path: Path, openai: FakeOpenAI, slack: FakeSlack, today: dt.date, **settings: Any
) -> tuple[int, str]:
    out = io.StringIO()
    values = make_settings(
        openai.base_url,
        tmp_path,
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_APP_TOKEN=slack.app_token,
        SLACK_API_URL=slack.api_url,
        **settings,
    )
    code = await run_doctor(values, out, today=lambda: today)
    return code, out.getvalue()


@pytest.mark.parametrize("today", [dt.date(2027, 1, 7), dt.date(2027, 2, 27)])
async def test_default_settings_are_clean_after_the_shutdowns(
    tmp_path: Path, today: dt.date
) -> None:
    async with FakeOpenAI() as openai, FakeSlack() as slack:
        openai.today = today
        code, out = await doctor(tmp_path, openai, slack, today)
        assert code == 0, out
        assert "WARN" not in out and "ERROR" not in out
        assert "ok    speech: gpt-realtime-2.1-mini through the Realtime API" in out
        assert openai.spec_problems == []


async def test_pinned_old_models_are_warned_about(tmp_path: Path) -> None:
    async with FakeOpenAI() as openai, FakeSlack() as slack:
        pinned = {"SWITCHBOARD_SPEECH_MODEL": "gpt-4o-mini-tts"}
        code, out = await doctor(tmp_path, openai, slack, dt.date(2026, 12, 6), **pinned)
        assert code == 1
        assert "speech model gpt-4o-mini-tts shuts down on 2027-01-06 (in 31 days)" in out
        assert "speech: gpt-4o-mini-tts through /audio/speech" in out

        code, out = await doctor(tmp_path, openai, slack, dt.date(2027, 1, 7), **pinned)
        assert code == 1 and "gpt-4o-mini-tts was shut down on 2027-01-06" in out

        openai.today = dt.date(2027, 1, 7)  # the endpoint no longer lists it
        code, out = await doctor(tmp_path, openai, slack, dt.date(2027, 1, 7), **pinned)
        assert code == 1 and "speech model gpt-4o-mini-tts is not offered" in out

        old_transcriber = {"SWITCHBOARD_TRANSCRIBE_MODEL": "whisper-1"}
        openai.today = None
        code, out = await doctor(tmp_path, openai, slack, dt.date(2027, 1, 2), **old_transcriber)
        assert code == 1
        assert "transcribe model whisper-1 shuts down on 2027-02-26 (in 55 days)" in out


async def test_the_translations_endpoint_opt_in_is_warned_about(tmp_path: Path) -> None:
    async with FakeOpenAI() as openai, FakeSlack() as slack:
        opt_in = {"SWITCHBOARD_TRANSLATION": "endpoint"}
        code, out = await doctor(tmp_path, openai, slack, dt.date(2026, 12, 6), **opt_in)
        assert code == 1
        assert (
            "SWITCHBOARD_TRANSLATION=endpoint: /translate uses /audio/translations, which shuts "
            "down on 2027-02-26 (in 82 days)"
        ) in out
        code, out = await doctor(tmp_path, openai, slack, dt.date(2027, 3, 1), **opt_in)
        assert "/audio/translations, which was shut down on 2027-02-26" in out
        assert "translation model whisper-1 was shut down on 2027-02-26" in out


async def test_the_retired_variations_setting_is_pointed_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWITCHBOARD_IMAGE_VARIATIONS_ENDPOINT", "true")
    async with FakeOpenAI() as openai, FakeSlack() as slack:
        code, out = await doctor(tmp_path, openai, slack, dt.date(2026, 12, 6))
        assert code == 1 and "SWITCHBOARD_IMAGE_VARIATIONS_ENDPOINT is no longer read" in out
