"""Wire layer for the CLI: `python -m bot …` as a real subprocess against the loopback fake
OpenAI (which runs in the test's event loop, so the subprocess is driven asynchronously)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from testing.fakes.openai_fake import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-test-SECRET-never-printed-0123456789"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def bot_env(fake: FakeOpenAI, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "SLACK_", "DISCORD_", "SWITCHBOARD_"))
    }
    env.update(
        OPENAI_API_KEY=SECRET,
        OPENAI_BASE_URL=fake.base_url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        SWITCHBOARD_OPENAI_TIMEOUT="3",
        SWITCHBOARD_OPENAI_RETRY_MAX_WAIT="0.05",
        PYTHONPATH=str(ROOT),
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


async def run_bot(
    *args: str, env: dict[str, str], stdin: bytes = b"", cwd: Path, limit: float = 30
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), limit)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_piped_console_answers_each_line_whole_and_exits(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.delta_delay = 0.001
    code, out, err = await run_bot(
        "console", env=bot_env(fake, tmp_path), stdin=b"hello world\nsecond line\n", cwd=tmp_path
    )
    assert code == 0, err
    assert out == "echo: hello world\necho: second line\n"
    assert SECRET not in out + err


async def test_piped_console_keeps_the_conversation(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.answer = lambda turn: f"{len(turn.messages)} messages"
    env = bot_env(fake, tmp_path)
    code, out, _ = await run_bot("console", env=env, stdin=b"a\nb\n", cwd=tmp_path)
    assert out.splitlines() == ["1 messages", "3 messages"]
    code, out, _ = await run_bot("console", env=env, stdin=b"c\n/reset\nd\n", cwd=tmp_path)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "5 messages" and "new conversation" in lines[1] and lines[2] == "1 messages"


async def test_console_faults_are_explained_and_the_next_line_answered(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.fail_next("unauthorized", endpoint="responses")
    code, out, err = await run_bot(
        "console", env=bot_env(fake, tmp_path), stdin=b"first\n\nthird\n", cwd=tmp_path
    )
    lines = out.splitlines()
    assert "OPENAI_API_KEY" in lines[0]
    assert "empty message" in lines[1]
    assert lines[2] == "echo: third"
    assert SECRET not in out + err
    # Piped, a line without an answer makes the exit status 1; each error is shown once (as
    # the answer, not again as a log line), and one summary line says so.
    assert code == 1, err
    assert "OPENAI_API_KEY" not in err and "empty message" not in err
    assert err.strip().splitlines()[-1] == (
        "switchboard: 2 line(s) got no answer (the reason is shown above)"
    )


async def test_run_without_a_platform_says_what_to_set(fake: FakeOpenAI, tmp_path: Path) -> None:
    code, _out, err = await run_bot(env=bot_env(fake, tmp_path), cwd=tmp_path)
    assert code != 0
    assert "SLACK_BOT_TOKEN" in err and "DISCORD_TOKEN" in err
    assert len(err.strip().splitlines()) == 1


async def test_missing_key_is_one_line_and_bad_config_too(fake: FakeOpenAI, tmp_path: Path) -> None:
    env = bot_env(fake, tmp_path)
    del env["OPENAI_API_KEY"]
    code, _, err = await run_bot("console", env=env, cwd=tmp_path)
    assert code == 2 and "OPENAI_API_KEY" in err and len(err.strip().splitlines()) == 1
    env = bot_env(fake, tmp_path, SWITCHBOARD_BACKEND="assistants")
    code, _, err = await run_bot("console", env=env, cwd=tmp_path)
    assert code == 2 and "SWITCHBOARD_BACKEND" in err and SECRET not in err


async def test_doctor_checks_models_against_the_endpoint(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.models.append(
        {
            "id": "old-model",
            "object": "model",
            "created": 0,
            "owned_by": "openai",
            "shutdown_date": "2020-01-01",
        }
    )
    env = bot_env(
        fake,
        tmp_path,
        SWITCHBOARD_CHAT_MODEL="old-model",
        SWITCHBOARD_IMAGE_MODEL="no-such-image-model",
    )
    code, out, err = await run_bot("doctor", env=env, cwd=tmp_path)
    assert code == 1, out + err
    assert "OpenAI reachable" in out
    assert "old-model was shut down on 2020-01-01" in out
    assert "no-such-image-model is not offered" in out
    assert SECRET not in out + err


async def test_doctor_checks_the_translation_model_only_when_its_endpoint_is_used(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    env = bot_env(fake, tmp_path, SWITCHBOARD_TRANSLATION_MODEL="no-such-translator")
    _, out, _ = await run_bot("doctor", env=env, cwd=tmp_path)
    assert "no-such-translator" not in out
    env["SWITCHBOARD_TRANSLATION"] = "endpoint"
    code, out, _ = await run_bot("doctor", env=env, cwd=tmp_path)
    assert code == 1 and "translation model no-such-translator is not offered" in out


async def test_doctor_reports_a_rejected_key(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.fail_next("unauthorized")
    code, out, _ = await run_bot("doctor", env=bot_env(fake, tmp_path), cwd=tmp_path)
    assert code == 2 and "OPENAI_API_KEY" in out


@pytest.mark.parametrize(("grace", "status"), [("10", "completed"), ("0.2", "interrupted")])
async def test_sigterm_finishes_or_interrupts_the_answer_in_flight(
    fake: FakeOpenAI, tmp_path: Path, grace: str, status: str
) -> None:
    fake.latency = 1.0 if status == "completed" else 20
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=bot_env(fake, tmp_path, SWITCHBOARD_SHUTDOWN_GRACE=grace),
        cwd=tmp_path,
    )
    assert proc.stdin is not None
    proc.stdin.write(b"please answer\n")
    await proc.stdin.drain()
    for _ in range(200):
        if any(r.path.endswith("/responses") for r in fake.requests):
            break
        await asyncio.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    with sqlite3.connect(tmp_path / "bot.db") as db:
        statuses = [row[0] for row in db.execute("SELECT status FROM runs")]
    assert statuses == [status]
    if status == "completed":
        assert out.decode() == "echo: please answer\n"


async def test_interactive_console_streams_with_a_prompt(fake: FakeOpenAI, tmp_path: Path) -> None:
    import pty

    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        stdin=slave,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=bot_env(fake, tmp_path),
        cwd=tmp_path,
    )
    os.close(slave)
    assert proc.stdout is not None
    try:
        os.write(master, b"hi there\n")
        shown = b""
        while b"echo: hi there\nyou> " not in shown:  # the answer and the next prompt
            chunk = await asyncio.wait_for(proc.stdout.read(1024), 30)
            assert chunk, shown
            shown += chunk
        proc.send_signal(signal.SIGINT)
        rest, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        os.close(master)
    assert proc.returncode == 0, err.decode()
    text = (shown + rest).decode()
    banner, rest_of_it = text.split("\n", 1)
    assert banner.startswith("Switchboard: chat model gpt-6.1-terra, backend responses")
    assert banner.endswith("/help lists the commands; Ctrl-D quits.")
    assert rest_of_it.startswith("you> assistant> echo: hi there\nyou> ")


def test_log_lines_never_show_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    from bot.logs import configure_logging

    configure_logging("DEBUG", [SECRET])
    log = logging.getLogger("switchboard.test")
    log.info("calling with key %s", SECRET)
    log.debug(
        "a slack token " + "xoxb-" + "1234567890-abcdefghij and a stray sk-abcdefghijklmnopqrstuvwx"
    )
    try:
        raise RuntimeError(f"boom {SECRET}")
    except RuntimeError:
        log.exception("failed")
    err = capsys.readouterr().err
    assert SECRET not in err and "xoxb-1234567890" not in err and "sk-abcdefghij" not in err
    assert err.count("[redacted]") >= 4
    logging.getLogger().handlers.clear()


async def test_doctor_checks_channel_models_too(fake: FakeOpenAI, tmp_path: Path) -> None:
    from bot.core.types import ConversationKey
    from storage.configs import save_overrides
    from storage.connect import open_database

    db = await open_database(tmp_path / "bot.db")
    await save_overrides(
        db, ConversationKey("slack", "T1", "C1"), {"model": "gpt-5-mini"}, updated_by="U1"
    )
    await db.close()
    code, out, _ = await run_bot("doctor", env=bot_env(fake, tmp_path), cwd=tmp_path)
    assert code == 1
    assert "channel slack:T1:C1 chat model gpt-5-mini shuts down on 2026-12-11" in out or (
        "gpt-5-mini was shut down" in out
    )
