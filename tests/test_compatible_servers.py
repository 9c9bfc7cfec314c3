"""OpenAI-compatible servers (issue 18, point 7): their errors classified by status and text,
the `responses` backend refused at start where `/v1/conversations` is missing, and the doctor
saying which backend works. Against the errors recorded from a real LiteLLM proxy
(`testing.fakes.compatible`), through the fake that answers like it, and, when the proxy is
installed, against the real thing."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import openai
import pytest

from bot.backends.errors import NO_CONVERSATIONS, explain_error, server_message
from testing.fakes.compatible import LITELLM, RECORDED, Recorded
from testing.fakes.openai_fake import FakeOpenAI
from tests.harness import Harness, make_settings
from tests.test_cli import SECRET, bot_env, run_bot

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def litellm_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        server.server = LITELLM
        yield server


def sdk_error(recorded: Recorded) -> openai.APIStatusError:
    """The exception the real SDK raises for this recorded answer."""
    client = openai.OpenAI(api_key="sk-test", base_url="http://127.0.0.1:4000/v1")
    request = httpx2.Request(recorded.method, f"http://127.0.0.1:4000{recorded.path}")
    response = httpx2.Response(recorded.status, json=recorded.body, request=request)
    return client._make_status_error_from_response(response)


@pytest.mark.parametrize("recorded", RECORDED, ids=lambda r: f"{r.method} {r.path} {r.status}")
def test_no_recorded_error_reaches_chat_raw(recorded: Recorded) -> None:
    exc = sdk_error(recorded)
    assert str(exc).startswith("Error code: ")  # what used to be shown
    friendly = explain_error(exc, model="nope", role="chat")
    assert friendly is not None
    assert "Error code" not in friendly.message and "{'error'" not in friendly.message
    said = server_message(exc)
    assert said and not said.startswith(("Error code", "{", "400:"))


def _answer_to(method: str, path: str, request_has: str = "") -> str:
    (recorded,) = [
        r
        for r in RECORDED
        if (r.method, r.path) == (method, path) and request_has in str(r.request) + str(r.body)
    ]
    friendly = explain_error(sdk_error(recorded), model="nope", role="chat")
    assert friendly is not None
    return friendly.message


def test_compatible_errors_are_classified_by_what_they_say() -> None:
    unknown_model = "The model `nope` is not available on this OpenAI endpoint"
    assert _answer_to("POST", "/v1/chat/completions", "Invalid model").startswith(unknown_model)
    assert _answer_to("POST", "/v1/responses", "Invalid model").startswith(unknown_model)
    assert _answer_to("POST", "/v1/images/generations").startswith(unknown_model)
    assert _answer_to("POST", "/v1/audio/speech").startswith(unknown_model)
    rejected = "OpenAI rejected the API key. An admin should check OPENAI_API_KEY."
    assert _answer_to("POST", "/v1/chat/completions", "No connected db") == rejected
    assert _answer_to("GET", "/v1/models") == rejected
    assert _answer_to("POST", "/v1/conversations") == NO_CONVERSATIONS
    assert _answer_to("POST", "/v1/responses", "Missing required") == (
        "OpenAI could not handle this request: /responses: Missing required parameter: 'input'."
    )


async def test_the_responses_backend_stops_at_start_without_conversations(
    litellm_fake: FakeOpenAI, tmp_path: Path
) -> None:
    code, out, err = await run_bot(
        "console", env=bot_env(litellm_fake, tmp_path), stdin=b"hello\n", cwd=tmp_path
    )
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "switchboard: OPENAI_BASE_URL serves no /v1/conversations, which "
        "SWITCHBOARD_BACKEND=responses needs: set SWITCHBOARD_BACKEND=chat for this endpoint "
        "(`scripts/run doctor` shows what it serves)"
    ]
    assert not [r for r in litellm_fake.requests if r.path == "/v1/responses"]


async def test_the_chat_backend_works_and_explains_compatible_errors(
    litellm_fake: FakeOpenAI, tmp_path: Path
) -> None:
    env = bot_env(litellm_fake, tmp_path, SWITCHBOARD_BACKEND="chat")
    code, out, err = await run_bot("console", env=env, stdin=b"hello\n", cwd=tmp_path)
    assert (code, out) == (0, "echo: hello\n"), err

    env["SWITCHBOARD_CHAT_MODEL"] = "nope"
    code, out, _ = await run_bot("console", env=env, stdin=b"hello\n", cwd=tmp_path)
    assert code == 1
    assert out.startswith("The model `nope` is not available on this OpenAI endpoint.")

    del env["SWITCHBOARD_CHAT_MODEL"]
    litellm_fake.fail_next("unauthorized", endpoint="chat")
    code, out, err = await run_bot("console", env=env, stdin=b"hello\n", cwd=tmp_path)
    assert code == 1
    assert out == "OpenAI rejected the API key. An admin should check OPENAI_API_KEY.\n"
    assert "Error code" not in out + err and SECRET not in out + err


async def test_the_doctor_says_which_backend_works(
    litellm_fake: FakeOpenAI, tmp_path: Path
) -> None:
    code, out, _ = await run_bot("doctor", env=bot_env(litellm_fake, tmp_path), cwd=tmp_path)
    assert code == 2
    assert (
        "ok    the endpoint serves /v1/responses, /v1/chat/completions; not /v1/conversations"
        in out
    )
    assert (
        "ERROR SWITCHBOARD_BACKEND=responses needs /v1/conversations, which this endpoint does "
        "not serve: set SWITCHBOARD_BACKEND=chat, which works with it"
    ) in out
    env = bot_env(litellm_fake, tmp_path, SWITCHBOARD_BACKEND="chat")
    code, out, _ = await run_bot("doctor", env=env, cwd=tmp_path)
    assert "ok    SWITCHBOARD_BACKEND=chat works with this endpoint" in out
    assert "ERROR" not in out

    litellm_fake.fail_next("unauthorized", endpoint="models")
    code, out, _ = await run_bot("doctor", env=env, cwd=tmp_path)
    assert code == 2
    assert "ERROR OpenAI rejected OPENAI_API_KEY (HTTP 400: No connected db.): check the key" in out


async def test_without_the_start_check_the_first_answer_says_what_to_set(
    litellm_fake: FakeOpenAI, tmp_path: Path
) -> None:
    """The app itself (no start-up probe): the 404 for creating a conversation is explained."""
    bot = await Harness.start(make_settings(litellm_fake.base_url, tmp_path))
    try:
        assert await bot.say("hello") == NO_CONVERSATIONS
    finally:
        await bot.close()


# -- the real LiteLLM proxy, when installed ------------------------------------------------------

LITELLM_CONFIG = """\
model_list:
  - model_name: mock-gpt
    litellm_params:
      model: openai/mock-gpt
      mock_response: "Hello from the mock"
general_settings:
  master_key: sk-master-test-1234
"""


def _litellm_binary() -> str | None:
    return os.environ.get("LITELLM_BIN") or shutil.which("litellm")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def litellm_proxy(tmp_path: Path) -> AsyncIterator[str]:
    binary = _litellm_binary()
    if binary is None:
        pytest.skip(
            "the LiteLLM proxy is not installed (pip install 'litellm[proxy]' in another "
            "environment and set LITELLM_BIN; not a dependency: about 600 MB installed)"
        )
    config = tmp_path / "litellm.yaml"
    config.write_text(LITELLM_CONFIG)
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        binary,
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "LITELLM_LOG": "ERROR"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx2.AsyncClient() as client:
            for _ in range(600):  # the proxy takes a while to import
                try:
                    if (await client.get(f"{base}/health/liveliness")).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if proc.returncode is not None:
                    pytest.fail("the LiteLLM proxy exited at start")
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the LiteLLM proxy did not start within 60 s")
        yield f"{base}/v1"
    finally:
        proc.terminate()
        await proc.wait()


async def test_against_the_real_litellm_proxy(litellm_proxy: str, tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "SLACK_", "DISCORD_", "SWITCHBOARD_"))
    }
    env.update(
        OPENAI_API_KEY="sk-master-test-1234",
        OPENAI_BASE_URL=litellm_proxy,
        SWITCHBOARD_CHAT_MODEL="mock-gpt",
        DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}",
        PYTHONPATH=str(ROOT),
    )
    code, _, err = await run_bot("console", env=env, stdin=b"hi\n", cwd=tmp_path)
    assert code == 2 and "SWITCHBOARD_BACKEND=chat" in err
    code, out, _ = await run_bot("doctor", env=env, cwd=tmp_path, limit=60)
    assert "not /v1/conversations" in out and "set SWITCHBOARD_BACKEND=chat" in out

    env["SWITCHBOARD_BACKEND"] = "chat"
    code, out, err = await run_bot("console", env=env, stdin=b"hi\n", cwd=tmp_path)
    assert (code, out) == (0, "Hello from the mock\n"), err
    env["SWITCHBOARD_CHAT_MODEL"] = "nope"
    code, out, _ = await run_bot("console", env=env, stdin=b"hi\n", cwd=tmp_path)
    assert code == 1 and out.startswith("The model `nope` is not available")
    env.update(SWITCHBOARD_CHAT_MODEL="mock-gpt", OPENAI_API_KEY="sk-not-the-master-key")
    code, out, _ = await run_bot("console", env=env, stdin=b"hi\n", cwd=tmp_path)
    assert code == 1 and out.startswith("OpenAI rejected the API key")
