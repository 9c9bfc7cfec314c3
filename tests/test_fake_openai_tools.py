"""The OpenAI fake's tool behaviour, through the real openai SDK: tool outputs checked against
pending calls, chat tool-message ordering, json_object prompt rule, containers and files,
background cancel. (The backends' use of them is tested in test_tools_*.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from testing.fakes.openai_fake import FakeOpenAI, FunctionCall, ModelOutput

MODEL = "gpt-6.1-terra"


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-x", max_retries=0) as c:
        yield c


async def test_function_call_outputs_must_match_pending_calls(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    conv = await client.conversations.create()
    fake.answer = lambda turn: (
        ModelOutput(calls=[FunctionCall("f", {"a": 1}, "call_1")])
        if not turn.tool_outputs
        else f"got {turn.tool_outputs}"
    )
    first = await client.responses.create(model=MODEL, input="hi", conversation=conv.id)
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert (call.call_id, call.name, call.arguments) == ("call_1", "f", '{"a": 1}')

    with pytest.raises(openai.BadRequestError, match="No tool output found for function call"):
        await client.responses.create(model=MODEL, input="next", conversation=conv.id)
    stray = {"type": "function_call_output", "call_id": "call_9", "output": "x"}
    with pytest.raises(openai.BadRequestError, match="No tool call found"):
        await client.responses.create(model=MODEL, input=[stray], conversation=conv.id)
    answer = {"type": "function_call_output", "call_id": "call_1", "output": "42"}
    done = await client.responses.create(model=MODEL, input=[answer], conversation=conv.id)
    assert done.output_text == "got [('call_1', '42')]"


async def test_chat_tool_messages_must_answer_tool_calls(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.answer = lambda turn: ModelOutput(calls=[FunctionCall("f", "{not json", "call_1")])
    first = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls[0].function.arguments == "{not json"
    calls = [c.model_dump() for c in choice.message.tool_calls]
    assistant = {"role": "assistant", "content": None, "tool_calls": calls}
    with pytest.raises(openai.BadRequestError, match="must be followed by tool messages"):
        await client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "user", "content": "hi"},
                assistant,
                {"role": "user", "content": "?"},
            ],
        )
    with pytest.raises(openai.BadRequestError, match="role 'tool' must be a response"):
        await client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "call_1", "content": "x"},
            ],
        )


async def test_json_object_needs_the_word_json(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="must contain the word 'json'"):
        await client.responses.create(
            model=MODEL, input="hi", text={"format": {"type": "json_object"}}
        )
    ok = await client.responses.create(
        model=MODEL,
        input="hi",
        instructions="Reply in JSON.",
        text={"format": {"type": "json_object"}},
    )
    assert ok.status == "completed"
    with pytest.raises(openai.BadRequestError, match="must contain the word 'json'"):
        await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_object"},
        )


async def test_containers_and_their_files(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    container = await client.containers.create(name="test")
    assert (await client.containers.retrieve(container.id)).status == "running"
    made = await client.containers.files.create(container.id, file=("a.csv", b"x,y\n", "text/csv"))
    assert made.path == "/mnt/data/a.csv" and made.bytes == 4 and made.source == "user"
    listed = await client.containers.files.list(container.id)
    assert [f.id for f in listed.data] == [made.id]
    content = await client.containers.files.content.retrieve(made.id, container_id=container.id)
    assert content.content == b"x,y\n"

    fake.expire_container(container.id)
    assert (await client.containers.retrieve(container.id)).status == "expired"
    with pytest.raises(openai.BadRequestError, match="expired"):
        await client.containers.files.list(container.id)
    tool = {"type": "code_interpreter", "container": container.id}
    with pytest.raises(openai.BadRequestError, match="expired"):
        await client.responses.create(model=MODEL, input="run", tools=[tool])
    await client.containers.delete(container.id)
    with pytest.raises(openai.NotFoundError):
        await client.containers.retrieve(container.id)


async def test_only_background_responses_can_be_cancelled(client: openai.AsyncOpenAI) -> None:
    plain = await client.responses.create(model=MODEL, input="hi")
    with pytest.raises(openai.BadRequestError, match="background"):
        await client.responses.cancel(plain.id)
    background = await client.responses.create(model=MODEL, input="hi", background=True)
    assert background.background is True
    assert (await client.responses.cancel(background.id)).status == "completed"
    with pytest.raises(openai.NotFoundError):
        await client.responses.cancel("resp_nope")
