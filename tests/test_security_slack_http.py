"""Issue 19, item 3 and the malformed timestamp of item 12: Slack's HTTP mode, attacked by
strangers. The real slack-bolt app on aiohttp, a real HTTP client sending forged requests, the
bot's own logging set-up (`configure_logging`) writing the lines an operator reads."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.logs import MAX_LOG_CHARS, configure_logging
from testing.fakes import slack_payloads as P
from tests.test_slack_adapter import Env, slack_running, until

FORGED_MARK = "FORGED-BODY-MARK"


@pytest.fixture
async def http_env(tmp_path: Path) -> AsyncIterator[Env]:
    async with slack_running(tmp_path, socket_mode=False, slack_clean=True) as environment:
        yield environment


def forged_body() -> bytes:
    """Just under aiohttp's 1 MiB limit, with a line break that would forge a log record."""
    event = P.event_callback(P.im_message("x"), event_id="Ev0FORGED")
    event["junk"] = (FORGED_MARK + "\n2026-11-24 00:00:00 ERROR bot: fake line\n") * 20_000
    body = json.dumps(event).encode()
    return body[: 1024 * 1024 - 10] if len(body) > 1024 * 1024 else body


async def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status


async def test_forged_requests_are_refused_quietly_and_the_bot_keeps_answering(
    http_env: Env,
) -> None:
    env = http_env
    configure_logging("INFO", [])
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)

    body = forged_body()
    forged = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
    }
    statuses = asyncio.gather(*(post(env.url, body, forged) for _ in range(20)))
    # meanwhile, a real event is answered
    mention = P.app_mention("over http")
    status, _ = await env.slack.deliver_http(env.url, P.event_callback(mention))
    assert status == 200
    assert await statuses == [401] * 20
    await until(lambda: env.bot_texts(P.CHANNEL_ID, mention["ts"]) == ["echo: over http"], 10)

    # a timestamp that is not a number: 401, not a 500 with a traceback
    for bad in ("not-a-number", "1e9", "", "９９"):
        headers = dict(forged, **{"X-Slack-Request-Timestamp": bad})
        assert await post(env.url, b"{}", headers) == 401
    assert await post(env.url, b"\xff\xfe not utf-8", forged) == 401

    logged = stream.getvalue()
    assert FORGED_MARK not in logged  # no unauthenticated body reaches the log
    assert "fake line" not in logged
    assert "Traceback" not in logged
    lines = logged.splitlines()
    assert all(len(line) < MAX_LOG_CHARS + 200 for line in lines)
    refused = [line for line in lines if "refused" in line and "not signed by Slack" in line]
    assert len(refused) == 1  # one rate-limited line for the whole flood


def test_every_log_line_is_capped_and_cannot_forge_another(tmp_path: Path) -> None:
    configure_logging("INFO", ["sk-secret-value-0123456789"])
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    log = logging.getLogger("bot.test")
    huge = "a" * 3_990 + "sk-secret-value-0123456789" + "b" * 1_000_000
    log.info("user said: %s", huge)
    log.warning("name=%s", "eve\n2026-11-24 00:00:00 ERROR bot: you were hacked\r")
    try:
        raise ValueError("bad\ninput")
    except ValueError:
        log.exception("failed")
    lines = stream.getvalue().splitlines()
    assert len(lines[0]) < MAX_LOG_CHARS + 200 and "more characters" in lines[0]
    assert "sk-secret" not in stream.getvalue()
    assert lines[1].endswith("name=eve\\n2026-11-24 00:00:00 ERROR bot: you were hacked\\r")
    # a traceback keeps its lines, each indented under its record
    assert lines[2].endswith("failed") and all(line.startswith("    ") for line in lines[3:])
