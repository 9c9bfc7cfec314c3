"""The first hour with Switchboard (issue 18), through the real command line: `python -m bot …`
as a subprocess against the loopback fakes. Misspelt variables, the start-up line, what the
doctor says on a fresh set-up, the console's banner, /help, logs and exit status, and the
Discord invite URL without a network call."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.commands import COMMANDS
from testing.fakes.openai_fake import FakeOpenAI, FakeTurn, FunctionCall, ModelOutput
from testing.fakes.slack_fake import FakeSlack
from tests.test_cli import SECRET, bot_env, run_bot
from tests.test_discord_adapter import fake_discord

pytestmark = pytest.mark.slow


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def warnings_in(err: str) -> list[str]:
    return [line for line in err.splitlines() if " WARNING bot: " in line]


async def test_misspelt_variables_get_one_warning_each_naming_the_closest(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("# a comment\nexport OPENAI_API_BASE=http://localhost:4000\n")
    env = bot_env(fake, tmp_path, SWITCHBOARD_BACKENDS="chat", SLACK_BOT_TOKN="xoxb-1")
    code, out, err = await run_bot("console", env=env, stdin=b"hello\n", cwd=tmp_path)
    assert code == 0, err
    assert out == "echo: hello\n"  # still answered, with the settings that are spelt right
    found = warnings_in(err)
    assert len(found) == 3, err
    assert any(
        "SWITCHBOARD_BACKENDS (in the environment)" in w
        and "did you mean SWITCHBOARD_BACKEND?" in w
        for w in found
    )
    assert any("OPENAI_API_BASE (in .env)" in w and "OPENAI_BASE_URL" in w for w in found)
    assert any("SLACK_BOT_TOKN" in w and "did you mean SLACK_BOT_TOKEN?" in w for w in found)
    assert "xoxb-1" not in err


async def test_the_doctor_reports_misspelt_variables_too(fake: FakeOpenAI, tmp_path: Path) -> None:
    env = bot_env(fake, tmp_path, SWITCHBOARD_CHATMODEL="gpt-6.1-sol")
    code, out, err = await run_bot("doctor", env=env, cwd=tmp_path)
    assert code == 1, out + err
    assert (
        "WARN  SWITCHBOARD_CHATMODEL (in the environment) is not a Switchboard setting and is "
        "ignored: did you mean SWITCHBOARD_CHAT_MODEL?"
    ) in out
    assert "WARNING" not in err  # said once, among the checks


async def test_the_start_up_line_names_the_endpoint_backend_and_model(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    env = bot_env(fake, tmp_path, SWITCHBOARD_BACKEND="chat", SWITCHBOARD_CHAT_MODEL="gpt-6.1-sol")
    code, out, err = await run_bot("console", env=env, stdin=b"hi\n", cwd=tmp_path)
    assert code == 0, err
    assert out == "echo: hi\n"  # piped: stdout holds the answers only
    host = fake.base_url.split("://", 1)[1]
    assert err.splitlines()[0] == (
        f"Switchboard: chat model gpt-6.1-sol, backend chat, OpenAI endpoint {host}. "
        "/help lists the commands; Ctrl-D quits."
    )


async def test_the_doctor_without_a_key_says_it_is_not_set(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    env = bot_env(fake, tmp_path)
    del env["OPENAI_API_KEY"]
    code, out, err = await run_bot("doctor", env=env, cwd=tmp_path)
    assert code == 2, out + err
    assert "ERROR OPENAI_API_KEY is not set: set it in the environment or in .env" in out
    assert "ok    OPENAI_API_KEY" not in out
    assert "Traceback" not in err
    assert fake.requests == []  # nothing to ask OpenAI without a key


async def test_a_fresh_set_up_with_valid_credentials_passes_the_doctor(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    async with FakeSlack() as slack, fake_discord(message_content=True) as dc:
        env = bot_env(
            fake,
            tmp_path,
            SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_APP_TOKEN=slack.app_token,
            SLACK_API_URL=slack.api_url,
            DISCORD_TOKEN=dc.token,
            DISCORD_API_URL=dc.api_url,
        )
        code, out, err = await run_bot("doctor", env=env, cwd=tmp_path)
    assert code == 0, out + err
    assert not [line for line in out.splitlines() if line.startswith(("WARN", "ERROR"))]
    assert "ok    the endpoint serves /v1/responses, /v1/conversations, /v1/chat/completions" in out
    assert "ok    SWITCHBOARD_BACKEND=responses works with this endpoint" in out
    assert "ok    speech: gpt-realtime-2.1-mini through the Realtime API" in out
    assert not (tmp_path / "bot.db").exists()  # the doctor creates nothing
    assert fake.conversations == {}  # the probe's conversation was deleted again


async def test_the_doctor_still_warns_about_a_chosen_model_shutting_down(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    env = bot_env(fake, tmp_path, SWITCHBOARD_SPEECH_MODEL="gpt-4o-mini-tts")
    code, out, _ = await run_bot("doctor", env=env, cwd=tmp_path)
    assert code == 1
    assert "WARN  speech model gpt-4o-mini-tts shuts down on 2027-01-06" in out


async def test_piped_console_exits_1_when_every_answer_failed(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.fail_next("unauthorized", times=2, endpoint="responses")
    env = bot_env(fake, tmp_path)
    code, out, err = await run_bot("console", env=env, stdin=b"one\ntwo\n", cwd=tmp_path)
    assert code == 1
    assert (
        out.splitlines()
        == [
            "OpenAI rejected the API key. An admin should check OPENAI_API_KEY.",
        ]
        * 2
    )
    assert "OPENAI_API_KEY" not in err.replace("got no answer", "")  # shown once: the answers
    assert SECRET not in out + err


async def test_console_help_lists_the_command_table(fake: FakeOpenAI, tmp_path: Path) -> None:
    code, out, _ = await run_bot(
        "console", env=bot_env(fake, tmp_path), stdin=b"/help\n", cwd=tmp_path
    )
    assert code == 0
    listed = re.findall(r"^  /(\w+)", out, re.MULTILINE)
    assert listed == [spec.name for spec in COMMANDS] + ["help"]
    assert "/edit prompt image [mask] - Edit an image (needs a file" in out
    assert not [r for r in fake.requests if r.path in ("/v1/responses", "/v1/chat/completions")]


async def test_logs_never_land_inside_a_streamed_answer(fake: FakeOpenAI, tmp_path: Path) -> None:
    """A tool round logs ("running tools") between the first words of an answer and the rest;
    on one terminal (stdout and stderr on the same pty) that line comes after the answer."""
    import pty

    def answer(turn: FakeTurn) -> str | ModelOutput:
        if turn.tool_outputs:
            return "and the result is 4"
        return ModelOutput("let me compute", [FunctionCall("calculate", {"expression": "2+2"})])

    fake.answer = answer
    fake.delta_delay = 0.01
    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=bot_env(fake, tmp_path),
        cwd=tmp_path,
    )
    os.close(slave)
    loop = asyncio.get_running_loop()
    shown = b""

    async def read_until(marker: bytes) -> None:
        nonlocal shown
        while marker not in shown:
            chunk = await asyncio.wait_for(loop.run_in_executor(None, os.read, master, 4096), 30)
            assert chunk, shown
            shown += chunk

    try:
        await read_until(b"you> ")
        os.write(master, b"what is 2+2\n")
        await read_until(b"running tools")
        await read_until(b"you> ")
        proc.send_signal(2)  # SIGINT
        await asyncio.wait_for(proc.wait(), 30)
    finally:
        os.close(master)
    text = shown.decode().replace("\r\n", "\n")
    start = text.index("assistant> let me compute")
    end = text.index("and the result is 4\n")
    assert "running tools" not in text[start:end], text
    assert text.index("running tools calculate") > end


async def test_invite_discord_makes_no_network_call_and_a_bad_token_is_one_line(
    tmp_path: Path,
) -> None:
    async with FakeOpenAI() as fake:
        env = bot_env(fake, tmp_path, DISCORD_TOKEN="not-a-discord-token")
        env["DISCORD_API_URL"] = "http://127.0.0.1:9/api"  # nothing listens there
        code, out, err = await run_bot("invite", "discord", env=env, cwd=tmp_path)
        assert code == 2 and out == ""
        assert len(err.strip().splitlines()) == 1, err
        assert "DISCORD_TOKEN" in err and "--client-id" in err and "not-a-discord-token" not in err
        code, out, err = await run_bot(
            "invite", "discord", "--client-id", "123456789012345678", env=env, cwd=tmp_path
        )
        assert code == 0, err
        assert out.startswith("https://discord.com/oauth2/authorize?client_id=123456789012345678")
