"""Issue 19, items 2 and 14: function tools run off the event loop with a hard timeout, and
`calculate` bounds every operation's cost; the safe built-ins are on by default. Through
slack-bolt against the Slack fake, the real core and a real tool worker process; the "model"
is the OpenAI fake asking for the calls."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.features.usage import PERIODS
from bot.tools.arithmetic import calculate
from bot.tools.builtins import USAGE_PERIODS
from bot.tools.errors import ToolError
from testing.fakes import slack_payloads as P
from testing.fakes.openai_fake import FakeTurn, FunctionCall, ModelOutput
from tests.test_slack_adapter import Env, start_env, stop_env, until

SPIN = """
import time

from bot.tools import Tool

async def spin(args, context):
    # A plugin that never yields: no await can interrupt it. (It gives up after 20 s, so that
    # without the worker process the test fails instead of hanging.)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pass
    return "spun"

SPIN = Tool("spin", "Spins.", {"type": "object"}, spin, in_process=True)
"""


@pytest.fixture
def spinning_plugin(tmp_path: Path) -> Iterator[None]:
    """An installed plugin (module + dist-info with an entry point) on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sb_spin_plugin.py").write_text(SPIN)
    info = site / "sb_spin_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sb-spin-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """
            [switchboard.tools]
            spin = sb_spin_plugin:SPIN
            """
        )
    )
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    yield
    sys.path.remove(str(site))
    sys.modules.pop("sb_spin_plugin", None)


@pytest.fixture
async def env(tmp_path: Path, spinning_plugin: None) -> AsyncIterator[Env]:
    environment = await start_env(tmp_path, SWITCHBOARD_TOOL_TIMEOUT_SECONDS=3)
    yield environment
    await stop_env(environment)
    assert environment.slack.internal_errors == []
    assert environment.openai.spec_problems == []


def test_calculate_bounds_every_operation() -> None:
    for expression in ("round(1, -10**9)", "round(1, 10**7)", "round(2.5, 99999)"):
        with pytest.raises(ToolError, match="digits"):
            calculate(expression)
    assert calculate("round(123456, -3)") == 123000
    for expression in ("10**10**10", "2**4097", "9**9**9", "(2**4096)*(2**4096)"):
        with pytest.raises(ToolError):
            calculate(expression)
    assert tuple(PERIODS) == USAGE_PERIODS


def answers_in(env: Env, channel: str) -> list[str]:
    """The bot's answers in `channel`, threads included (streamed ones once finished)."""
    streamed = [s.final_text for s in env.slack.streams.values() if s.final_text]
    posted = [
        m["text"]
        for m in env.slack.messages.get(channel, [])
        if m.get("bot_id") == env.slack.bot_id and m.get("text")
    ]
    return posted + streamed


def answers(turn: FakeTurn) -> str | ModelOutput:
    """The "model": one conversation asks for the plugin that spins, the other for a round()
    that would take forever unbounded; everything else is answered at once."""
    asked = turn.messages[-1][1] if turn.messages else ""
    if turn.tool_outputs:
        return "tool said: " + turn.tool_outputs[-1][1]
    if "spin" in asked:
        return ModelOutput(calls=[FunctionCall("spin", {}, "c_spin")])
    if "round" in asked:
        return ModelOutput(calls=[FunctionCall("calculate", {"expression": "round(1, -10**9)"})])
    return "hello back"


async def test_a_tool_that_never_yields_is_killed_and_the_bot_keeps_answering(env: Env) -> None:
    env.openai.answer = answers
    await env.app.db.execute(
        "INSERT INTO channel_configs (platform, workspace, channel, settings, updated_at, "
        "updated_by) VALUES ('slack', 'T1', ?, ?, 0, 'test')",
        (P.CHANNEL_ID, '{"tools": ["functions:spin"]}'),
    )
    await env.slack.send_event(P.app_mention("please spin"))
    spinning = env.app.tools.get("spin")
    assert spinning is not None and not spinning.in_process  # a plugin never runs in process
    await until(lambda: any(r.path == "/v1/responses" for r in env.openai.requests))
    await until(lambda: env.app.workers is not None and env.app.workers.busy, 10)
    (worker,) = env.app.workers.busy

    # While the plugin spins, the event loop is free: a DM is answered meanwhile.
    await env.slack.send_event(P.im_message("hi there"))
    await until(lambda: "hello back" in env.bot_texts(P.DM_CHANNEL_ID), 10)
    assert env.app.workers.busy == (worker,)  # still spinning

    # The spinning call runs out of time: its process is killed, the model told.
    await until(lambda: any("tool said:" in t for t in answers_in(env, P.CHANNEL_ID)), 15)
    assert "the tool did not finish within 3 seconds" in answers_in(env, P.CHANNEL_ID)[-1]
    assert worker.process.poll() is not None  # the process is gone

    # calculate with an unbounded round(): refused at once, in a fresh worker
    await env.slack.send_event(P.im_message("round this"))
    await until(lambda: sum("tool said" in t for t in env.bot_texts(P.DM_CHANNEL_ID)) == 1, 10)
    shown = env.bot_texts(P.DM_CHANNEL_ID)[-1]
    assert "round() takes at most 1,300 digits either way" in shown


async def test_plugins_are_enabled_by_name_by_workspace_admins_only(
    spinning_plugin: None, tmp_path: Path
) -> None:
    from bot.core.types import Actor
    from testing.fakes.openai_fake import FakeOpenAI
    from tests.harness import Harness, make_settings

    async with FakeOpenAI() as fake:
        bot = await Harness.start(make_settings(fake.base_url, tmp_path))
        try:
            manager = Actor("UMANAGER", "manager", channel_admin=True)
            owner = Actor("UOWNER", "owner", is_admin=True)
            said = await bot.command("assistant", "set tools functions:spin", actor=manager)
            assert "Only workspace admins" in said and "plugins" in said
            said = await bot.command(
                "assistant", "set tools functions:channel_usage", actor=manager
            )
            assert "Set tools" in said  # a built-in: the channel admin's call
            said = await bot.command("assistant", "set tools functions:spin", actor=owner)
            assert "Set tools" in said
        finally:
            await bot.close()
