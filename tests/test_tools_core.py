"""Function tools, answer formats and seeds through the real core (dispatcher, chat capability,
both backends) and the real openai SDK against the loopback fake OpenAI."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.tools import Tool, ToolContext
from storage import configs
from testing.fakes.openai_fake import FakeOpenAI, FakeTurn, FunctionCall, ModelOutput
from tests.harness import KEY, Harness, make_settings

BACKENDS = ["responses", "chat"]


async def start(fake: FakeOpenAI, tmp_path: Path, backend: str, **settings: Any) -> Harness:
    return await Harness.start(
        make_settings(fake.base_url, tmp_path, SWITCHBOARD_BACKEND=backend, **settings)
    )


@pytest.fixture(params=BACKENDS)
async def bot(
    request: pytest.FixtureRequest, fake: FakeOpenAI, tmp_path: Path
) -> AsyncIterator[Harness]:
    harness = await start(fake, tmp_path, request.param, SWITCHBOARD_TOOL_TIMEOUT_SECONDS=3)
    yield harness
    await harness.close()


async def configure(bot: Harness, **overrides: Any) -> None:
    await configs.save_overrides(bot.app.db, KEY, overrides, updated_by="admin")


async def ask(bot: Harness, text: str) -> list[str]:
    """Everything shown for one message (the answer, then any files' reply)."""
    before = len(bot.outbox.shown)
    assert await bot.app.dispatcher.submit(bot.message(text))
    await bot.app.dispatcher.wait_idle()
    return bot.outbox.shown[before:]


def tool_requests(fake: FakeOpenAI) -> list[dict[str, Any]]:
    paths = ("/v1/responses", "/v1/chat/completions")
    return [r.json for r in fake.requests if r.path in paths and r.method == "POST"]


def offered_names(body: dict[str, Any]) -> list[str]:
    names = []
    for tool in body.get("tools") or []:
        names.append(tool.get("name") or (tool.get("function") or {}).get("name") or tool["type"])
    return names


def calls_then_answer(*calls: FunctionCall) -> Any:
    """The model calls `calls` at once, then answers with every output it got back."""

    def answer(turn: FakeTurn) -> str | ModelOutput:
        if not turn.tool_outputs:
            return ModelOutput(calls=list(calls))
        return " | ".join(output for _, output in turn.tool_outputs)

    return answer


async def test_builtin_tools_are_offered_called_and_answered(
    bot: Harness, fake: FakeOpenAI
) -> None:
    await configure(bot, tools=["functions:calculate,current_time"])
    fake.answer = calls_then_answer(
        FunctionCall("calculate", {"expression": "2 ** 10 + 1"}, "call_a"),
        FunctionCall("current_time", {"timezone": "Mars/Olympus"}, "call_b"),
    )
    (answer,) = await ask(bot, "what is 2^10+1, and the time on Mars?")
    assert answer.startswith("1025 | error: unknown time zone 'Mars/Olympus'")
    first, second = tool_requests(fake)
    assert offered_names(first) == ["calculate", "current_time"]
    assert fake.turns[-1].tool_outputs[0] == ("call_a", "1025")
    if bot.app.settings.backend == "responses":
        # Only the outputs go back, on the same conversation.
        assert [i["type"] for i in second["input"]] == ["function_call_output"] * 2
        assert second["conversation"] == first["conversation"]
    else:
        roles = [m["role"] for m in second["messages"]]
        assert roles[-3:] == ["assistant", "tool", "tool"]
        # The stored history keeps the user's text and the final answer only.
        fake.answer = lambda turn: "you are welcome"
        await ask(bot, "thanks")
        roles = [m["role"] for m in tool_requests(fake)[-1]["messages"]]
        assert roles == ["system", "user", "assistant", "user"]


async def test_parallel_calls_run_concurrently(bot: Harness, fake: FakeOpenAI) -> None:
    barrier = asyncio.Barrier(2)  # each call waits for the other: sequential calls would time out

    async def meet(args: dict[str, Any], context: ToolContext) -> str:
        await barrier.wait()
        return f"met {args['who']}"

    schema = {"type": "object", "properties": {"who": {"type": "string"}}, "required": ["who"]}
    bot.app.tools.add(Tool("meet", "meet someone", schema, meet, in_process=True))
    await configure(bot, tools=["functions:meet"])
    fake.answer = calls_then_answer(
        FunctionCall("meet", {"who": "ann"}), FunctionCall("meet", {"who": "bob"})
    )
    (answer,) = await ask(bot, "meet both")
    assert answer == "met ann | met bob"


async def test_failures_go_back_to_the_model_and_the_turn_goes_on(
    fake: FakeOpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[dict[str, Any]] = []

    async def record(args: dict[str, Any], context: ToolContext) -> str:
        runs.append(args)
        return "recorded"

    async def hang(args: dict[str, Any], context: ToolContext) -> str:
        await asyncio.Event().wait()
        return "never"

    async def crash(args: dict[str, Any], context: ToolContext) -> str:
        raise RuntimeError("boom")

    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1}},
        "required": ["n"],
        "additionalProperties": False,
    }
    for backend in BACKENDS:
        bot = await start(fake, tmp_path / backend, backend, SWITCHBOARD_TOOL_TIMEOUT_SECONDS=0.2)
        try:
            bot.app.tools.add(Tool("record", "record n", schema, record, in_process=True))
            bot.app.tools.add(
                Tool("hang", "never returns", {"type": "object"}, hang, in_process=True)
            )
            bot.app.tools.add(Tool("crash", "raises", {"type": "object"}, crash, in_process=True))
            await configure(bot, tools=["functions:record,hang,crash"])
            fake.answer = calls_then_answer(
                FunctionCall("record", "{not json", "c1"),
                FunctionCall("record", {"n": 0}, "c2"),
                FunctionCall("record", {"n": 2, "extra": True}, "c3"),
                FunctionCall("launch_missiles", {}, "c4"),
                FunctionCall("hang", {}, "c5"),
                FunctionCall("crash", {}, "c6"),
                FunctionCall("record", {"n": 3}, "c7"),
            )
            with caplog.at_level(logging.INFO):
                (answer,) = await ask(bot, "go")
            outputs = dict(fake.turns[-1].tool_outputs)
            assert outputs["c1"].startswith("error: the arguments are not valid JSON")
            assert outputs["c2"] == "error: invalid arguments at n: 0 is less than the minimum of 1"
            assert outputs["c3"].startswith("error: invalid arguments at arguments: Additional")
            assert outputs["c4"] == (
                "error: there is no tool named 'launch_missiles' (tools: calculate, crash, current_time, "
                "hang, record)"
            )
            assert outputs["c5"] == "error: the tool did not finish within 0.2 seconds"
            assert outputs["c6"] == "error: the tool failed (RuntimeError)"
            assert outputs["c7"] == "recorded"
            assert answer.count("error:") == 6
            assert runs == [{"n": 3}]  # nothing ran with arguments that failed validation
            runs.clear()
            assert "boom" in caplog.text  # the exception is logged for the operator
        finally:
            await bot.close()


async def test_tool_rounds_are_capped(fake: FakeOpenAI, tmp_path: Path) -> None:
    for backend in BACKENDS:
        bot = await start(fake, tmp_path / backend, backend, SWITCHBOARD_MAX_TOOL_ROUNDS=2)
        try:
            await configure(bot, tools=["functions:calculate"])
            before = len(fake.turns)

            def answer(turn: FakeTurn) -> str | ModelOutput:
                if turn.raw.get("tool_choice") == "none":
                    return "giving up on tools: " + turn.tool_outputs[-1][1][:40]
                return ModelOutput(calls=[FunctionCall("calculate", {"expression": "1+1"})])

            fake.answer = answer
            (shown,) = await ask(bot, "loop forever")
            assert shown == "giving up on tools: Not run: this answer already used 2 roun"
            assert len(fake.turns) - before == 4  # 2 rounds of tools, the capped call, answer

            # No answer even then: the user is told plainly.
            fake.answer = lambda turn: ModelOutput(
                calls=[FunctionCall("calculate", {"expression": "1+1"})]
            )
            (shown,) = await ask(bot, "loop again")
            assert "I stopped after 2 rounds of tool calls" in shown
            # The conversation is still usable afterwards.
            fake.answer = lambda turn: "fine"
            (shown,) = await ask(bot, "hello?")
            assert shown == "fine"
        finally:
            await bot.close()


async def test_the_safe_builtins_are_offered_by_default_and_can_be_turned_off(
    bot: Harness, fake: FakeOpenAI
) -> None:
    fake.answer = calls_then_answer(FunctionCall("calculate", {"expression": "6*7"}, "c1"))
    (answer,) = await ask(bot, "6*7?")
    assert answer == "42"  # offered in every channel without any setting
    names = sorted(t.get("name") or t["function"]["name"] for t in tool_requests(fake)[0]["tools"])
    assert names == ["calculate", "current_time"]  # channel_usage stays opt-in

    await configure(bot, builtins=False)
    before = len(tool_requests(fake))
    fake.answer = calls_then_answer(FunctionCall("calculate", {"expression": "6*7"}, "c2"))
    (answer,) = await ask(bot, "6*7?")
    assert answer == "error: there is no tool named 'calculate' (tools: none)"
    assert "tools" not in tool_requests(fake)[before]


async def test_json_mode_pretty_prints_and_flags_invalid_json(
    bot: Harness, fake: FakeOpenAI
) -> None:
    await configure(bot, format="json")
    fake.answer = lambda turn: '{"city":"Paris","temp":21}'
    (answer,) = await ask(bot, "weather?")
    assert answer == '```json\n{\n  "city": "Paris",\n  "temp": 21\n}\n```'
    body = tool_requests(fake)[0]
    if bot.app.settings.backend == "responses":
        assert body["text"] == {"format": {"type": "json_object"}}
        assert "JSON" in body["instructions"]
    else:
        assert body["response_format"] == {"type": "json_object"}
    fake.answer = lambda turn: "Sure! {city: Paris"
    (answer,) = await ask(bot, "again")
    assert answer.startswith("Sure! {city: Paris\n\n(the model's answer is not valid JSON: ")


async def test_json_schema_format(bot: Harness, fake: FakeOpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    await configure(bot, format=json.dumps({"name": "sum", "schema": schema, "strict": True}))
    fake.answer = lambda turn: '{"answer": "four"}'
    (answer,) = await ask(bot, "2+2")
    assert answer.startswith('```json\n{\n  "answer": "four"\n}\n```')
    assert "does not match this channel's JSON schema: 'four' is not of type 'integer'" in answer
    body = tool_requests(fake)[0]
    if bot.app.settings.backend == "responses":
        expected = {"type": "json_schema", "name": "sum", "schema": schema, "strict": True}
        assert body["text"] == {"format": expected}
    else:
        expected = {"name": "sum", "schema": schema, "strict": True}
        assert body["response_format"] == {"type": "json_schema", "json_schema": expected}

    await configure(bot, format="{not a schema")
    (answer,) = await ask(bot, "2+2")
    assert "answer format is set to a JSON schema I can't use: it is not valid JSON" in answer


async def test_seed_on_the_chat_backend(
    fake: FakeOpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await start(fake, tmp_path, "chat")
    try:
        await configure(bot, seed=1234)
        with caplog.at_level(logging.INFO, logger="bot.backends.chat_completions"):
            (answer,) = await ask(bot, "roll a die")
        assert answer == "echo: roll a die"
        assert tool_requests(fake)[0]["seed"] == 1234
        assert "seed=1234 system_fingerprint=fp_fake0penai" in caplog.text
    finally:
        await bot.close()


async def test_the_responses_backend_sends_no_seed(fake: FakeOpenAI, tmp_path: Path) -> None:
    bot = await start(fake, tmp_path, "responses")
    try:
        await configure(bot, seed=1234)
        await ask(bot, "roll a die")
        assert "seed" not in tool_requests(fake)[0]
    finally:
        await bot.close()


async def test_an_admin_enables_a_function_and_steps_show_the_call(
    bot: Harness, fake: FakeOpenAI
) -> None:
    from bot.core.types import Actor, CommandCall

    admin = Actor(id="UADMIN", name="root", is_admin=True)
    call = CommandCall(KEY, admin, "assistant", "cmd-tools", text="set tools functions:nope")
    assert await bot.app.dispatcher.submit(call)
    await bot.app.dispatcher.wait_idle()
    assert "nope" in bot.outbox.shown[-1] and "calculate" in bot.outbox.shown[-1]

    call = CommandCall(KEY, admin, "assistant", "cmd-tools2", text="set tools functions:calculate")
    assert await bot.app.dispatcher.submit(call)
    await bot.app.dispatcher.wait_idle()
    fake.answer = calls_then_answer(FunctionCall("calculate", {"expression": "3*(4+5)"}))
    assert await ask(bot, "3*(4+5)?") == ["27"]
    steps = await bot.command("steps")
    assert 'calculate({"expression":"3*(4+5)"})' in steps and "27" in steps
