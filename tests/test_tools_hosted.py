"""Hosted tools (code interpreter, file search, web search, image generation), background
mode with cancel and recover, and the observer, through the real core and the real openai SDK
against the loopback fake OpenAI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.backends.base import Turn
from bot.backends.factory import make_backend
from bot.core.errors import UserError
from bot.core.ledger import Emit, ResponseStarted, RunEvent, ToolRound, ToolRoundDone
from bot.tools import Tool, ToolContext
from storage import conversations
from testing.fakes.openai_fake import (
    CodeRun,
    FakeOpenAI,
    FakeTurn,
    FileSearch,
    FunctionCall,
    ImageGen,
    ModelOutput,
    WebSearch,
)
from tests.harness import KEY, USER, Harness
from tests.media_fixtures import attachment, png
from tests.test_tools_core import ask, start, tool_requests
from tests.test_tools_core import configure as configure_with_builtins


async def configure(bot: Harness, **overrides: Any) -> None:
    """These tests are about hosted tools: the safe built-in functions are left out."""
    await configure_with_builtins(bot, builtins=False, **overrides)


PLOT = png((32, 24), (200, 30, 30))
CSV = b"month,sales\njan,10\nfeb,12\n"


@pytest.fixture
async def bot(fake: FakeOpenAI, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await start(fake, tmp_path, "responses")
    yield harness
    await harness.close()


async def usage_rows(bot: Harness) -> list[dict[str, Any]]:
    rows = await bot.app.db.fetch_all("SELECT * FROM usage ORDER BY run_id")
    return [dict(r) for r in rows]


def container_creates(fake: FakeOpenAI) -> int:
    return sum(r.path == "/v1/containers" and r.method == "POST" for r in fake.requests)


async def test_code_interpreter_plot_is_posted_and_the_container_reused(
    bot: Harness, fake: FakeOpenAI
) -> None:
    await configure(bot, tools=["code_interpreter"])
    fake.answer = lambda turn: ModelOutput(
        text="Here is the chart.",
        hosted=[CodeRun("import matplotlib\nplot()", logs="saved", files=(("chart.png", PLOT),))],
    )
    answer, _ = await ask(bot, "plot sales")
    assert answer == "Here is the chart."
    (posted,) = bot.outbox.replies[-1].files
    assert (posted.name, posted.mime, posted.data) == ("chart.png", "image/png", PLOT)
    body = tool_requests(fake)[0]
    (tool,) = body["tools"]
    assert tool["type"] == "code_interpreter" and tool["container"] in fake.containers
    assert body["include"] == ["code_interpreter_call.outputs"]

    fake.answer = lambda turn: "no code this time"
    assert await ask(bot, "thanks") == ["no code this time"]
    assert container_creates(fake) == 1  # reused across turns
    assert tool_requests(fake)[-1]["tools"][0]["container"] == tool["container"]

    fake.expire_container(tool["container"])
    assert await ask(bot, "again") == ["no code this time"]
    assert container_creates(fake) == 2  # the expired one was replaced
    assert tool_requests(fake)[-1]["tools"][0]["container"] != tool["container"]
    assert [row["container_sessions"] for row in await usage_rows(bot)] == [1, 0, 1]


async def test_a_failed_first_answer_keeps_its_conversation_and_container(
    bot: Harness, fake: FakeOpenAI
) -> None:
    await configure(bot, tools=["code_interpreter"])
    fake.fail_next("failed", endpoint="responses")
    (refusal,) = await ask(bot, "plot sales")
    assert "could not finish" in refusal
    fake.answer = lambda turn: "second try"
    assert await ask(bot, "plot sales") == ["second try"]
    assert container_creates(fake) == 1
    made = [r for r in fake.requests if r.path == "/v1/conversations" and r.method == "POST"]
    assert len(made) == 1
    first, second = tool_requests(fake)
    assert first["conversation"] == second["conversation"]
    assert first["tools"][0]["container"] == second["tools"][0]["container"]


async def test_a_container_expiring_mid_turn_is_replaced(bot: Harness, fake: FakeOpenAI) -> None:
    async def expire(args: dict[str, Any], context: ToolContext) -> str:
        (container_id,) = fake.containers
        fake.expire_container(container_id)
        return "slept 20 minutes"

    bot.app.tools.add(Tool("slow", "takes long", {"type": "object"}, expire, in_process=True))
    await configure(bot, tools=["code_interpreter", "functions:slow"])
    fake.answer = lambda turn: (
        ModelOutput(calls=[FunctionCall("slow", {})]) if not turn.tool_outputs else "awake"
    )
    sheet = attachment("sales.csv", CSV, "text/csv", kind="document")
    assert await bot.app.dispatcher.submit(bot.message("wait", attachments=(sheet,)))
    await bot.app.dispatcher.wait_idle()
    assert bot.outbox.shown[-1] == "awake"
    assert container_creates(fake) == 2
    old, new = fake.containers
    assert [len(fake.container_files[c]) for c in (old, new)] == [0, 1]  # the file re-uploaded
    assert (await usage_rows(bot))[-1]["container_sessions"] == 2


async def test_documents_go_into_the_container(bot: Harness, fake: FakeOpenAI) -> None:
    await configure(bot, tools=["code_interpreter"])
    sheet = attachment("sales.csv", CSV, "text/csv", kind="document")
    before = len(bot.outbox.shown)
    assert await bot.app.dispatcher.submit(bot.message("sum it", attachments=(sheet,)))
    await bot.app.dispatcher.wait_idle()
    assert bot.outbox.shown[before:] == [
        "echo: sum it\n\n(Files attached for code interpreter: /mnt/data/sales.csv)"
    ]
    (container,) = fake.container_files.values()
    (record,) = container.values()
    assert record["data"] == CSV and record["meta"]["source"] == "user"


async def test_documents_without_code_interpreter_get_a_plain_note(
    bot: Harness, fake: FakeOpenAI
) -> None:
    sheet = attachment("sales.csv", CSV, "text/csv", kind="document")
    before = len(bot.outbox.shown)
    assert await bot.app.dispatcher.submit(bot.message("sum it", attachments=(sheet,)))
    await bot.app.dispatcher.wait_idle()
    (shown,) = bot.outbox.shown[before:]
    assert shown.startswith("(I did not read “sales.csv”: documents need an admin to enable")
    assert shown.endswith("echo: sum it")
    assert not fake.containers

    await configure(bot, tools=["code_interpreter"])
    program = attachment("setup.exe", b"MZ", "application/octet-stream", kind="document")
    assert await bot.app.dispatcher.submit(bot.message("run", attachments=(program,)))
    await bot.app.dispatcher.wait_idle()
    assert "I can't give “setup.exe” to code interpreter" in bot.outbox.shown[-1]


async def test_file_search_cites_sources_or_says_knowledge_is_missing(
    bot: Harness, fake: FakeOpenAI
) -> None:
    await configure(bot, tools=["file_search"])
    (answer,) = await ask(bot, "what is our leave policy?")
    assert answer.startswith("echo: what is our leave policy?")
    assert "an admin must add documents with `/assistant knowledge add`" in answer
    assert "tools" not in tool_requests(fake)[0]

    await configure(bot, tools=["file_search"], vector_store_id="vs_123")
    fake.answer = lambda turn: ModelOutput(
        text="25 days.", hosted=[FileSearch(("leave policy",), cite=("handbook.pdf",))]
    )
    (answer,) = await ask(bot, "what is our leave policy?")
    assert answer == "25 days.\n\nSources: handbook.pdf"
    assert tool_requests(fake)[-1]["tools"] == [
        {"type": "file_search", "vector_store_ids": ["vs_123"]}
    ]
    assert (await usage_rows(bot))[-1]["file_search_calls"] == 1


async def test_web_search_and_image_generation(bot: Harness, fake: FakeOpenAI) -> None:
    await configure(bot, tools=["web_search", "image_generation"])
    fake.answer = lambda turn: ModelOutput(
        text="Drawn from today's news.",
        hosted=[WebSearch("news today"), ImageGen("a newspaper")],
    )
    answer, _ = await ask(bot, "draw today's news")
    assert answer == "Drawn from today's news."
    (image,) = bot.outbox.replies[-1].files
    assert image.name == "image-1.png" and image.data.startswith(b"\x89PNG")
    types = [t["type"] for t in tool_requests(fake)[0]["tools"]]
    assert types == ["web_search", "image_generation"]
    assert (await usage_rows(bot))[-1]["web_search_calls"] == 1


async def test_hosted_tools_on_the_chat_backend_are_reported_unavailable(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    bot = await start(fake, tmp_path, "chat")
    try:
        await configure(bot, tools=["web_search", "code_interpreter", "functions:calculate"])
        (answer,) = await ask(bot, "hi")
        assert answer == (
            "echo: hi\n\n(code_interpreter, web_search are not available with the chat backend "
            "(Chat Completions); I answered without them.)"
        )
        assert [t["function"]["name"] for t in tool_requests(fake)[0]["tools"]] == ["calculate"]
    finally:
        await bot.close()


class Observer:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.started = asyncio.Event()

    async def __call__(self, event: RunEvent) -> None:
        """The backend's event sink (`Turn.emit`), as the run ledger receives them."""
        if isinstance(event, ResponseStarted):
            self.events.append(("started", event.response_id))
            self.started.set()
        elif isinstance(event, ToolRound):
            self.events.append(("tools", list(event.names)))
        elif isinstance(event, ToolRoundDone):
            self.events.append(("done", None))


async def make_turn(bot: Harness, text: str, observer: Emit, **config: Any) -> Turn:
    from bot.core.assistant_config import resolve_assistant

    await configure(bot, **config)
    assistant = await resolve_assistant(bot.app.db, bot.app.settings, KEY)
    record = await conversations.ensure_active(bot.app.db, KEY, bot.app.settings.backend)
    return Turn(
        key=KEY,
        user_id=USER.id,
        text=text,
        config=assistant,
        conversation_id=record.id,
        backend_conversation_id=record.backend_conversation_id,
        emit=observer,
    )


async def test_observer_steps_and_background_mode(bot: Harness, fake: FakeOpenAI) -> None:
    backend = make_backend(bot.app.settings, bot.app.client, bot.app.db, bot.app.tools)
    observer = Observer()

    def answer(turn: FakeTurn) -> ModelOutput | str:
        if turn.tool_outputs:
            return "done"
        return ModelOutput(
            text="Let me compute.",
            calls=[FunctionCall("calculate", {"expression": "6 * 7"})],
            hosted=[CodeRun("print(6 * 7)", logs="42")],
        )

    fake.answer = answer
    turn = await make_turn(bot, "6*7", observer, tools=["code_interpreter", "functions:calculate"])
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    result = await backend.reply(turn, on_delta)
    assert result.text == "Let me compute.\n\ndone" == "".join(deltas)
    kinds = [e[0] for e in observer.events]
    assert kinds == ["started", "tools", "done", "started"]
    assert observer.events[1] == ("tools", ["calculate"])
    assert observer.events[-1] == ("started", result.response_id)
    assert [(s.kind, s.title) for s in result.steps] == [
        ("code_interpreter_call", "ran code"),
        ("function_call", 'calculate({"expression":"6 * 7"})'),
    ]
    assert result.steps[0].detail == "print(6 * 7)\n--- output\n42"
    assert result.steps[1].detail == "42"
    assert all(r["background"] is True for r in tool_requests(fake))

    # recover: a finished response is picked up; unknown ones are None
    recovered = await backend.recover(result.response_id)
    assert recovered is not None and recovered.text == "done"
    assert await backend.recover("resp_unknown") is None


async def test_cancel_stops_a_background_response(bot: Harness, fake: FakeOpenAI) -> None:
    backend = make_backend(bot.app.settings, bot.app.client, bot.app.db, bot.app.tools)
    observer = Observer()
    fake.delta_delay = 0.05
    fake.answer = lambda turn: " ".join(f"w{i}" for i in range(400))
    turn = await make_turn(bot, "a long story", observer)

    async def on_delta(text: str) -> None:
        return None

    task = asyncio.create_task(backend.reply(turn, on_delta))
    await asyncio.wait_for(observer.started.wait(), 10)
    (_, response_id) = observer.events[0]
    assert await backend.recover(response_id) is None  # still running
    await backend.cancel(response_id)
    with pytest.raises(UserError, match="The answer was cancelled"):
        await asyncio.wait_for(task, 10)
    assert fake.responses[response_id]["status"] == "cancelled"
    assert await backend.recover(response_id) is None
    await backend.cancel(response_id)  # again: already finished, no error
    await backend.cancel("resp_unknown")  # unknown: no error


async def test_a_tool_call_left_pending_does_not_block_the_conversation(
    bot: Harness, fake: FakeOpenAI
) -> None:
    await ask(bot, "hello")
    record = await conversations.get_active(bot.app.db, KEY, "responses")
    assert record is not None and record.backend_conversation_id
    # Another process (or a crash between the tool call and its output) left a call pending.
    fake.answer = lambda turn: ModelOutput(calls=[FunctionCall("calculate", {}, "call_lost")])
    await bot.app.client.responses.create(
        model=bot.app.settings.chat_model, input="x", conversation=record.backend_conversation_id
    )
    fake.answer = lambda turn: "still here"
    assert await ask(bot, "are you there?") == ["still here"]
    items = fake.conversations[record.backend_conversation_id]
    closed = [i for i in items if i.get("type") == "function_call_output"]
    assert [(i["call_id"], i["output"]) for i in closed] == [("call_lost", "Not run: stopped.")]


async def test_an_answer_stopped_while_tools_run_leaves_no_call_pending(
    bot: Harness, fake: FakeOpenAI
) -> None:
    async def hang(args: dict[str, Any], context: ToolContext) -> str:
        await asyncio.Event().wait()
        return "never"

    bot.app.tools.add(Tool("hang", "never returns", {"type": "object"}, hang, in_process=True))
    backend = make_backend(bot.app.settings, bot.app.client, bot.app.db, bot.app.tools)
    fake.answer = lambda turn: ModelOutput(calls=[FunctionCall("hang", {}, "call_h")])
    observer = Observer()
    running = asyncio.Event()

    async def tools_running(event: RunEvent) -> None:
        await observer(event)
        if isinstance(event, ToolRound):
            running.set()

    turn = await make_turn(bot, "hang on", tools_running, tools=["functions:hang"])

    async def on_delta(text: str) -> None:
        return None

    task = asyncio.create_task(backend.reply(turn, on_delta))
    await asyncio.wait_for(running.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    conversation = fake.conversations[tool_requests(fake)[0]["conversation"]]
    assert conversation[-1]["type"] == "function_call_output"
    assert conversation[-1]["output"] == "Not run: the answer was stopped."
    fake.answer = lambda turn: "back"
    assert await ask(bot, "hello") == ["back"]
