"""Tools through the real platform clients: slack-bolt (Socket Mode) against FakeSlack and
discord.py against FakeDiscord, the real core behind them, the loopback OpenAI fake playing a
model that calls functions and runs code. A plot made by code interpreter arrives as a file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.core.types import ConversationKey
from storage.configs import save_overrides
from testing.fakes import slack_payloads as P
from testing.fakes.openai_fake import CodeRun, FakeOpenAI, FakeTurn, FunctionCall, ModelOutput
from tests.media_fixtures import png
from tests.test_discord_adapter import (  # noqa: F401 (fixtures)
    discord_seams,
    fake_discord,
    mention,
    openai_fake,
    running_bot,
)
from tests.test_slack_adapter import Env, slack_running, until

PLOT = png((40, 30), (30, 160, 60))
TOOLS = ["code_interpreter", "functions:calculate,current_time"]


def plot_after_tools(turn: FakeTurn) -> str | ModelOutput:
    """Two function calls at once, then code that saves a plot, cited in the answer."""
    if not turn.tool_outputs:
        return ModelOutput(
            calls=[
                FunctionCall("calculate", {"expression": "12 * 12"}),
                FunctionCall("current_time", {"timezone": "Europe/Paris"}),
            ]
        )
    total = turn.tool_outputs[0][1]
    return ModelOutput(
        text=f"The total is {total}; here is the plot.",
        hosted=[CodeRun("plt.savefig('/mnt/data/plot.png')", files=(("plot.png", PLOT),))],
    )


@pytest.fixture
async def slack_env(tmp_path: Path) -> AsyncIterator[Env]:
    async with slack_running(tmp_path, slack_clean=True, openai_clean=True) as environment:
        yield environment


async def test_slack_tools_and_a_plot_posted_as_a_file(slack_env: Env) -> None:
    env = slack_env
    key = ConversationKey("slack", P.TEAM_ID, P.CHANNEL_ID)
    await save_overrides(env.app.db, key, {"tools": TOOLS}, updated_by="admin")
    env.openai.answer = plot_after_tools
    event = P.app_mention("chart 12 dozen")
    await env.slack.send_event(event)
    await env.settle(1)
    await until(lambda: len(env.slack.uploads) == 1)
    assert env.bot_texts(P.CHANNEL_ID, event["ts"])[0] == "The total is 144; here is the plot."
    (upload,) = env.slack.uploads
    assert upload.filename == "plot.png" and upload.data == PLOT
    outputs = dict(env.openai.turns[-1].tool_outputs)
    assert len(outputs) == 2 and "Europe/Paris" in list(outputs.values())[1]


async def test_discord_tools_and_a_plot_posted_as_a_file(
    discord_seams: None,  # noqa: F811
    openai_fake: FakeOpenAI,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with fake_discord() as dc, running_bot(dc, openai_fake, tmp_path) as bot:
        cid = dc.text_channel["id"]
        key = ConversationKey("discord", dc.guild["id"], cid)
        await save_overrides(bot.app.db, key, {"tools": TOOLS}, updated_by="admin")
        openai_fake.answer = plot_after_tools
        incoming = await dc.send_message_create(cid, dc.member, mention(dc, "chart 12 dozen"))
        answer = await bot.answer_to(incoming)
        assert answer["content"] == "The total is 144; here is the plot."

        def with_files() -> list[dict[str, Any]]:
            return [m for m in bot.bot_messages(cid) if m.get("attachments")]

        await dc.wait_for(lambda: with_files(), 5, "the plot")
        (message,) = with_files()
        assert [a["filename"] for a in message["attachments"]] == ["plot.png"]
        dc.assert_spec_clean()
        assert dc.internal_errors == []


async def test_slack_documents_go_to_code_interpreter_or_get_a_note(slack_env: Env) -> None:
    env = slack_env
    csv = b"month,sales\njan,10\n"
    sheet = env.slack.add_file("sales.csv", csv, "text/csv")
    await env.slack.send_event(P.im_message("sum it", files=[sheet]))
    await env.settle(1)
    (note,) = env.bot_texts(P.DM_CHANNEL_ID)
    assert note.startswith("(I did not read “sales.csv”: documents need an admin")

    key = ConversationKey("slack", P.TEAM_ID, P.DM_CHANNEL_ID)
    await save_overrides(env.app.db, key, {"tools": ["code_interpreter"]}, updated_by="admin")
    sheet = env.slack.add_file("sales.csv", csv, "text/csv")
    await env.slack.send_event(P.im_message("sum it", files=[sheet]))
    await env.settle(2)
    (container,) = env.openai.container_files.values()
    assert [r["data"] for r in container.values()] == [csv]
    assert "/mnt/data/sales.csv" in env.openai.turns[-1].messages[-1][1]


async def test_discord_documents_go_to_code_interpreter(
    discord_seams: None,  # noqa: F811
    openai_fake: FakeOpenAI,  # noqa: F811
    tmp_path: Path,
) -> None:
    csv = b"month,sales\njan,10\n"
    async with fake_discord() as dc, running_bot(dc, openai_fake, tmp_path) as bot:
        cid = dc.text_channel["id"]
        key = ConversationKey("discord", dc.guild["id"], cid)
        await save_overrides(bot.app.db, key, {"tools": ["code_interpreter"]}, updated_by="admin")
        sheet = dc.add_attachment("sales.csv", csv, "text/csv")
        incoming = await dc.send_message_create(
            cid, dc.member, mention(dc, "sum it"), attachments=[sheet]
        )
        answer = await bot.answer_to(incoming)
        assert "/mnt/data/sales.csv" in answer["content"]
        (container,) = openai_fake.container_files.values()
        assert [r["data"] for r in container.values()] == [csv]
        assert dc.internal_errors == []
