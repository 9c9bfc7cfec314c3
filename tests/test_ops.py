"""Operations: /metrics, /healthz and /readyz of the ops server over real HTTP, fed by a real app
answering through the fake OpenAI (both backends); /status; JSON logs; connection failures that
name the host and cause."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.backends.errors import explain_error
from bot.core import log_context
from bot.core.types import Actor
from bot.logs import configure_logging
from bot.ops.http import OpsServer
from testing.fakes.openai_fake import FakeOpenAI
from tests.harness import KEY, Harness

ADMIN = Actor("U9", "root", is_admin=True)


@pytest.fixture
async def ops(bot: Harness) -> AsyncIterator[str]:
    server = OpsServer(
        0, bot.app.metrics, bot.app.readiness, bot.app.refresh_gauges, host="127.0.0.1"
    )
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


async def scrape(base: str) -> dict[str, float]:
    """Every sample of /metrics, parsed by prometheus-client's own parser: name{labels} → value."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


async def test_metrics_count_runs_tokens_and_every_failed_openai_attempt(
    bot: Harness, fake: FakeOpenAI, ops: str
) -> None:
    before = await scrape(ops)
    assert before["switchboard_runs_total{status=completed}"] == 0
    assert before["switchboard_breaker_open{}"] == 0
    assert await bot.say("first") == "echo: first"
    endpoint = "responses" if bot.app.settings.backend == "responses" else "chat"
    fake.fail_next("server_error", times=2, endpoint=endpoint)  # retried twice, then answered
    assert await bot.say("second") == "echo: second"
    fake.fail_next("unauthorized", endpoint=endpoint)  # never retried: told
    assert "OPENAI_API_KEY" in await bot.say("third")
    after = await scrape(ops)
    assert after["switchboard_runs_total{status=completed}"] == 2
    assert after["switchboard_runs_total{status=failed}"] == 1
    assert after["switchboard_openai_errors_total{kind=server}"] == 2
    assert after["switchboard_openai_errors_total{kind=auth}"] == 1
    assert after["switchboard_answer_seconds_count{}"] == 2
    assert after["switchboard_first_text_seconds_count{}"] == 2
    assert after["switchboard_tokens_total{direction=input}"] > 0
    assert after["switchboard_tokens_total{direction=output}"] > 0
    assert after["switchboard_runs_in_flight{}"] == 0
    assert after["switchboard_queued{}"] == 0
    assert after["switchboard_inbox_oldest_seconds{}"] == 0
    assert not any("U1" in name or KEY.channel in name for name in after)  # no ids in labels


async def test_health_and_readiness(bot: Harness, ops: str) -> None:
    presence = bot.app.dispatcher.presence
    presence.expect("Slack")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{ops}/healthz") as response:
            assert response.status == 200
        async with session.get(f"{ops}/readyz") as response:
            assert response.status == 503
            body = json.loads(await response.text())
            assert body["status"] == "not ready" and "Slack" in body["reason"]
        presence.report("Slack", True)
        async with session.get(f"{ops}/readyz") as response:
            assert response.status == 200
        presence.report("Slack", False, "reconnecting")
        async with session.get(f"{ops}/readyz") as response:
            assert response.status == 503
            assert "reconnecting" in json.loads(await response.text())["reason"]
        presence.report("Slack", True)
        async with session.get(f"{ops}/readyz") as response:
            assert response.status == 200


async def test_status_is_for_admins_and_says_what_runs(bot: Harness) -> None:
    assert "for admins" in await bot.command("status")
    await bot.say("hello")
    text = await bot.command("status", actor=ADMIN)
    assert text.startswith("*Switchboard")
    assert f"Backend: `{bot.app.settings.backend}`" in text
    assert "1 completed" in text
    assert f"chat `{bot.app.settings.chat_model}`" in text
    assert "breaker closed" in text
    assert bot.outbox.replies[-1].ephemeral


def test_json_logs_carry_the_context_and_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    secret = "sk-proj-" + "a" * 40
    configure_logging("INFO", [secret], "json")
    log = logging.getLogger("bot.test")
    with log_context.about(KEY, "Ev1"):
        log_context.about_run(7)
        log.warning("calling with %s\nand a second line", secret)
    log.info("outside")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "WARNING" and first["logger"] == "bot.test"
    assert first["conversation"] == str(KEY) and first["event"] == "Ev1" and first["run"] == "7"
    assert secret not in stream.getvalue() and "[redacted]" in first["message"]
    assert "time" in first and "conversation" not in second


async def test_a_refused_connection_names_the_host_and_says_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with openai.AsyncOpenAI(
        base_url="http://127.0.0.1:9/v1", api_key="sk-test", max_retries=0
    ) as client:
        with pytest.raises(openai.APIConnectionError) as raised:
            await client.models.list()
    with caplog.at_level(logging.WARNING):
        friendly = explain_error(raised.value)
    assert friendly is not None
    assert "could not reach OpenAI" in friendly.message and "refused" in friendly.message
    assert "host=127.0.0.1 cause=refused" in caplog.text


async def test_a_base_url_without_v1_is_pointed_out(fake: FakeOpenAI) -> None:
    root = fake.base_url.removesuffix("/v1").removesuffix("/")
    async with openai.AsyncOpenAI(base_url=root, api_key="sk-test", max_retries=0) as client:
        with pytest.raises(openai.NotFoundError) as raised:
            await client.models.list()
    friendly = explain_error(raised.value)
    assert friendly is not None and "`/v1`" in friendly.message
