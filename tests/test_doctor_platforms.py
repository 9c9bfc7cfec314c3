"""`doctor` against the loopback Slack and Discord fakes: tokens accepted or rejected, intents."""

from __future__ import annotations

import io
from pathlib import Path

from bot.doctor import run_doctor
from testing.fakes.openai_fake import FakeOpenAI
from testing.fakes.slack_fake import FakeSlack
from tests.harness import make_settings
from tests.test_discord_adapter import fake_discord


async def doctor(tmp_path: Path, openai: FakeOpenAI, **settings: object) -> tuple[int, str]:
    out = io.StringIO()
    code = await run_doctor(make_settings(openai.base_url, tmp_path, **settings), out)
    return code, out.getvalue()


async def test_doctor_checks_slack_and_discord_tokens_and_intents(tmp_path: Path) -> None:
    async with (
        FakeOpenAI() as openai,
        FakeSlack() as slack,
        fake_discord(message_content=False) as dc,
    ):
        code, out = await doctor(
            tmp_path, openai,
            SLACK_BOT_TOKEN=slack.bot_token, SLACK_APP_TOKEN=slack.app_token, SLACK_API_URL=slack.api_url,
            DISCORD_TOKEN=dc.token, DISCORD_API_URL=dc.api_url,
        )  # fmt: skip
        assert "ok    Slack bot token accepted" in out
        assert "ok    Slack app token accepted (Socket Mode)" in out
        assert "ok    Discord token accepted" in out
        assert "WARN  Discord message content intent is off" in out
        assert slack.bot_token not in out and dc.token not in out

        code, out = await doctor(
            tmp_path, openai,
            SLACK_BOT_TOKEN="xoxb-wrong", SLACK_APP_TOKEN=slack.app_token, SLACK_API_URL=slack.api_url,
            DISCORD_TOKEN="wrong", DISCORD_API_URL=dc.api_url,
        )  # fmt: skip
        assert code == 2
        assert "ERROR Slack rejected SLACK_BOT_TOKEN" in out
        assert "ERROR Discord rejected DISCORD_TOKEN (401)" in out
