"""The loopback OpenAI fake, driven by the real ``openai.AsyncOpenAI`` client.

Every test's fake must end with no spec problems: what the fake sends (and what the SDK
sends it) matches the official OpenAPI description.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest

from testing.fakes.openai_fake import FakeOpenAI, FakeTurn
from testing.fakes.spec_check import SPECS_DIR, Spec, load_spec
from testing.waiting import until

MODEL = "gpt-6.1-terra"
STREAM_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    *["response.output_text.delta"] * 4,
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server
        assert server.spec_problems == []


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


# -- Responses ------------------------------------------------------------------------------------


async def test_responses_non_stream(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    response = await client.responses.create(
        model=MODEL, input="hello there", instructions="be brief", temperature=0.3
    )
    assert response.output_text == "echo: hello there"
    assert response.status == "completed"
    assert response.usage is not None
    assert response.usage.input_tokens == 5  # ceil(len("be brief" + "hello there") / 4)
    assert response.usage.output_tokens == 5
    assert response.usage.total_tokens == 10
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response._request_id and response._request_id.startswith("req_")
    (turn,) = fake.turns
    assert turn == FakeTurn(
        "responses", MODEL, "be brief", [("user", "hello there")], [], turn.raw, None
    )
    (recorded,) = fake.requests
    assert (recorded.method, recorded.path) == ("POST", "/v1/responses")
    assert recorded.headers["authorization"] == "Bearer sk-test"
    assert recorded.json["temperature"] == 0.3
    assert (await client.responses.retrieve(response.id)).output_text == "echo: hello there"


async def test_responses_stream_events_and_deltas(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    answer = "  Two  spaces,\nnew line "
    fake.answer = lambda turn: answer
    stream = await client.responses.create(model=MODEL, input="hi", stream=True)
    events = [event async for event in stream]
    assert [e.type for e in events] == STREAM_EVENTS
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert deltas == ["  Two  ", "spaces,\n", "new ", "line "]
    assert "".join(deltas) == answer
    final = events[-1].response
    assert final.output_text == answer and final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens == 6


async def test_async_callable_answer_and_stream_helper(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    async def answer(turn: FakeTurn) -> str:
        await asyncio.sleep(0)
        return f"{turn.model} saw {len(turn.images)} image(s)"

    fake.answer = answer
    image = {"type": "input_image", "image_url": "data:image/png;base64,iVBO", "detail": "auto"}
    content = [{"type": "input_text", "text": "look"}, image]
    async with client.responses.stream(
        model=MODEL, input=[{"role": "user", "content": content}]
    ) as stream:
        final = await stream.get_final_response()
    assert final.output_text == f"{MODEL} saw 1 image(s)"
    assert fake.turns[-1].images == ["data:image/png;base64,iVBO"]


async def test_conversation_history_is_prepended(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    conversation = await client.conversations.create(metadata={"thread": "T1"})
    first = await client.responses.create(model=MODEL, input="first", conversation=conversation.id)
    stream = await client.responses.create(
        model=MODEL, input="second", conversation={"id": conversation.id}, stream=True
    )
    [event async for event in stream]
    assert first.conversation is not None and first.conversation.id == conversation.id
    assert fake.turns[-1].conversation_id == conversation.id
    assert fake.turns[-1].messages == [
        ("user", "first"),
        ("assistant", "echo: first"),
        ("user", "second"),
    ]
    assert len(fake.conversations[conversation.id]) == 4
    page = await client.conversations.items.list(conversation.id, order="asc")
    assert [(item.type, item.role) for item in page.data] == [  # type: ignore[union-attr]
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
        ("message", "assistant"),
    ]
    newest = await client.conversations.items.list(conversation.id, limit=1)
    assert newest.has_more and newest.data[0].id == page.data[-1].id


async def test_conversation_crud(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    items = [{"type": "message", "role": "user", "content": "seed"}]
    conversation = await client.conversations.create(items=items, metadata={"a": "1"})  # type: ignore[list-item]
    updated = await client.conversations.update(conversation.id, metadata={"a": "2"})
    assert updated.metadata == {"a": "2"}
    added = await client.conversations.items.create(
        conversation.id, items=[{"type": "message", "role": "user", "content": "more"}]
    )
    assert len(added.data) == 1
    await client.responses.create(model=MODEL, input="q", conversation=conversation.id)
    assert fake.turns[-1].messages[:2] == [("user", "seed"), ("user", "more")]
    deleted = await client.conversations.delete(conversation.id)
    assert deleted.deleted and conversation.id not in fake.conversations
    with pytest.raises(openai.NotFoundError, match="not found"):
        await client.conversations.retrieve(conversation.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.create(model=MODEL, input="q", conversation=conversation.id)


# -- Chat Completions, models, auth ---------------------------------------------------------------


async def test_chat_stream_with_usage(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "how are you"},
        ],
        stream=True,
        stream_options={"include_usage": True},
        seed=7,
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: how are you"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[0].system_fingerprint
    turn = fake.turns[-1]
    assert turn.endpoint == "chat" and turn.instructions == "sys"
    assert turn.messages == [("user", "hi"), ("assistant", "hello"), ("user", "how are you")]


async def test_chat_non_stream(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "json please"}],
        response_format={"type": "json_object"},
    )
    assert completion.choices[0].message.content == "echo: json please"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 8


async def test_models_and_shutdown_dates(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    models = {m.id: m.shutdown_date for m in (await client.models.list()).data}
    assert models["gpt-5-mini"] == "2026-12-11"
    assert models["gpt-4o-mini-tts"] == "2027-01-06"
    assert models["gpt-6.1-sol"] is None
    assert (await client.models.retrieve("gpt-transcribe")).owned_by
    fake.models.append({"id": "gpt-extra", "object": "model", "created": 1, "owned_by": "me"})
    await client.responses.create(model="gpt-extra", input="x")


@pytest.mark.parametrize("call", ["responses", "chat", "retrieve"])
async def test_model_not_found(client: openai.AsyncOpenAI, call: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        if call == "responses":
            await client.responses.create(model="gpt-nope", input="x")
        elif call == "chat":
            await client.chat.completions.create(
                model="gpt-nope", messages=[{"role": "user", "content": "x"}]
            )
        else:
            await client.models.retrieve("gpt-nope")
    assert caught.value.code == "model_not_found"
    assert "The model `gpt-nope` does not exist" in caught.value.message


@pytest.mark.parametrize("authorization", [None, "Bearer ", "Basic abc"])
async def test_missing_key_is_401(fake: FakeOpenAI, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{fake.base_url}/models", headers=headers) as response,
    ):
        body = await response.json()
    assert response.status == 401
    assert response.headers["x-request-id"].startswith("req_")
    assert "didn't provide an API key" in body["error"]["message"]
    assert len(fake.requests) == 1


# -- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "exception", "code"),
    [
        ("unauthorized", openai.AuthenticationError, "invalid_api_key"),
        ("rate_limit", openai.RateLimitError, "rate_limit_exceeded"),
        ("quota", openai.RateLimitError, "insufficient_quota"),
        ("server_error", openai.InternalServerError, None),
    ],
)
async def test_status_faults(
    fake: FakeOpenAI,
    client: openai.AsyncOpenAI,
    kind: str,
    exception: type[openai.APIStatusError],
    code: str | None,
) -> None:
    fake.fail_next(kind, retry_after=2)  # type: ignore[arg-type]
    with pytest.raises(exception) as caught:
        await client.responses.create(model=MODEL, input="x")
    error = caught.value
    assert error.code == code
    assert error.request_id and error.request_id.startswith("req_")
    if kind == "rate_limit":
        assert error.response.headers["retry-after"] == "2"
        assert error.response.headers["retry-after-ms"] == "2000"
    if kind == "unauthorized":
        assert "Incorrect API key provided: sk-te***st." in error.message
    assert len(fake.requests) == 1
    assert (await client.responses.create(model=MODEL, input="again")).output_text == "echo: again"


async def test_faults_are_fifo_and_filtered_by_endpoint(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.fail_next("server_error", endpoint="chat")
    fake.fail_next("quota", times=2)
    with pytest.raises(openai.RateLimitError):
        await client.responses.create(model=MODEL, input="x")  # chat fault skipped
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.RateLimitError):
        await client.models.list()
    assert (await client.models.list()).data


async def test_timeout_fault(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_next("timeout")
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await client.with_options(timeout=0.2).responses.create(model=MODEL, input="x", stream=True)
    assert time.monotonic() - started < 2
    assert len(fake.requests) == 1


async def test_close_does_not_wait_for_a_hanging_request() -> None:
    fake = await FakeOpenAI(spec_check=False).start()
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0) as c:
        fake.fail_next("timeout")
        pending = asyncio.create_task(c.models.retrieve(MODEL))
        await until(lambda: fake.requests)
        assert not pending.done()
        await asyncio.wait_for(fake.close(), 10)  # the client itself would wait ~60 s
        with pytest.raises(openai.APIConnectionError):
            await pending


@pytest.mark.parametrize("endpoint", ["responses", "chat"])
async def test_break_fault_raises_connection_error_mid_stream(
    fake: FakeOpenAI, client: openai.AsyncOpenAI, endpoint: str
) -> None:
    fake.answer = lambda turn: "one two three four five six seven eight"
    fake.fail_next("break")
    deltas: list[str] = []
    with pytest.raises(openai.APIConnectionError) as caught:
        if endpoint == "responses":
            stream = await client.responses.create(model=MODEL, input="x", stream=True)
            async for event in stream:
                if event.type == "response.output_text.delta":
                    deltas.append(event.delta)
        else:
            chat = await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
            )
            async for chunk in chat:
                deltas.append(chunk.choices[0].delta.content or "")
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert "".join(deltas) == "one two three "
    assert "incomplete chunked read" in str(caught.value.__cause__)


async def test_failed_and_incomplete_streams(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.answer = lambda turn: "a b c d e f g h"
    conversation = await client.conversations.create()
    fake.fail_next("failed")
    stream = await client.responses.create(
        model=MODEL, input="x", stream=True, conversation=conversation.id
    )
    events = [event async for event in stream]
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed"
    assert events[-1].response.error is not None
    assert events[-1].response.error.code == "server_error"
    assert fake.conversations[conversation.id] == []  # a failed turn is not stored

    fake.fail_next("incomplete")
    stream = await client.responses.create(
        model=MODEL, input="x", stream=True, conversation=conversation.id
    )
    events = [event async for event in stream]
    assert events[-1].type == "response.incomplete"
    final = events[-1].response
    assert final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_output_tokens"
    assert final.output_text == "a b c d "
    assert len(fake.conversations[conversation.id]) == 2


async def test_chat_failed_stream_raises_api_error(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.fail_next("failed", endpoint="chat")
    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError, match="model had an error"):
        [chunk async for chunk in stream]
    fake.fail_next("incomplete", endpoint="chat")
    completion = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "a b c d"}]
    )
    assert completion.choices[0].finish_reason == "length"


async def test_latency_delays_the_first_byte(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.latency = 0.15
    started = time.monotonic()
    await client.responses.create(model=MODEL, input="x")
    assert time.monotonic() - started >= 0.15


async def test_a_paused_stream_goes_on_when_released(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.answer = lambda turn: "one two three four"
    pause = fake.pause_streams(after=2)
    stream = await client.responses.create(model=MODEL, input="x", stream=True)
    deltas: list[str] = []
    async for event in stream:
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
            if len(deltas) == 2:
                await asyncio.wait_for(pause.reached.wait(), 10)
                pause.release()
    assert deltas == ["one ", "two ", "three ", "four"]
    chunks = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    assert text == "one two three four"  # released: later streams are not held


async def test_close_ends_a_paused_chat_stream() -> None:
    fake = await FakeOpenAI(spec_check=False).start()
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0) as c:
        fake.answer = lambda turn: "one two three"
        pause = fake.pause_streams(after=1)
        stream = await c.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
        )
        await asyncio.wait_for(pause.reached.wait(), 10)
        await asyncio.wait_for(fake.close(), 10)
        with pytest.raises(openai.APIConnectionError):
            async for _ in stream:
                pass
    assert not pause.released.is_set()


# -- spec checking --------------------------------------------------------------------------------


async def test_a_bad_request_shape_is_recorded(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    await client.responses.create(model=MODEL, input="x", extra_body={"temperature": "hot"})
    assert fake.spec_problems[0] == (
        "POST /v1/responses request: $.temperature: 'hot' is not of type 'number'"
    )
    fake.spec_problems.clear()  # (the echo in the Response object is reported as well)


def test_spec_check_explains_the_meant_alternative() -> None:
    spec = load_spec("openai-openapi.yaml")
    assert load_spec("openai-openapi.yaml") is spec
    part = {"type": "input_txt", "text": "hi"}
    problems = spec.check_request(
        "POST", "/v1/responses", {"model": MODEL, "input": [{"role": "user", "content": [part]}]}
    )
    assert len(problems) == 1 and "$.input[0].content[0].type: 'input_txt'" in problems[0]
    bad_event = {"type": "response.output_text.delta", "item_id": "m", "output_index": 0}
    assert any(
        "'delta' is a required property" in p
        for p in spec.check_event(
            "POST", "/v1/responses", {**bad_event, "content_index": 0, "sequence_number": 1}
        )
    )
    assert "not one of the" in spec.check_event("POST", "/v1/responses", {"type": "nope"})[0]
    assert spec.check_request("GET", "/v1/nowhere", None) == [
        "GET /v1/nowhere request: no such operation in openai-openapi.yaml"
    ]
    assert spec.operation("POST", "/v1/responses/compact").template == "/responses/compact"
    assert spec.operation("GET", "/v1/responses/resp_1?x=1").template == "/responses/{response_id}"


def test_spec_normalises_openapi_isms() -> None:
    document = {
        "openapi": "3.0.3",
        "servers": [{"url": "https://example.test/api/v2"}],
        "paths": {
            "/pets/{id}": {
                "get": {
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}
                            }
                        }
                    }
                }
            }
        },
        "components": {
            "schemas": {
                "Pet": {
                    "type": "object",
                    "required": ["name", "kind"],
                    "x-internal": True,
                    "properties": {
                        "name": {"type": "string", "nullable": True},
                        "nullable": {"type": "integer"},  # a property *named* like a keyword
                        "kind": {
                            "oneOf": [{"type": "string"}, {"type": "string", "enum": ["cat"]}],
                            "discriminator": {"propertyName": "x"},
                        },
                        "age": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                    },
                }
            }
        },
    }
    spec = Spec(document, name="pets")
    check = spec.check_response
    assert check("GET", "/api/v2/pets/1", 200, {"name": None, "kind": "cat", "nullable": 1}) == []
    assert check("GET", "/api/v2/pets/1", 200, {"name": "a", "kind": "cat", "age": 0}) == [
        "GET /api/v2/pets/1 200 response: $.age: 0 is less than or equal to the minimum of 0"
    ]
    assert check("GET", "/api/v2/pets/1", 200, {"name": "a", "kind": "cat", "nullable": None})
    assert check("GET", "/api/v2/pets/1", 404, {"anything": True}) == []  # undocumented status


async def test_sdk_retries_honour_retry_after(fake: FakeOpenAI) -> None:
    fake.fail_next("rate_limit", times=2, retry_after=0.01)
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=2) as c:
        assert (await c.responses.create(model=MODEL, input="x")).output_text == "echo: x"
    assert len(fake.requests) == 3


async def test_a_raising_answer_is_a_500_naming_the_error(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    def answer(turn: FakeTurn) -> str:
        raise LookupError("no script for this turn")

    fake.answer = answer
    with pytest.raises(openai.InternalServerError, match="no script for this turn"):
        await client.responses.create(model=MODEL, input="x")


def test_fail_next_rejects_unknown_names() -> None:
    fake = FakeOpenAI()
    with pytest.raises(ValueError, match="unknown fault kind"):
        fake.fail_next("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown endpoint"):
        fake.fail_next("timeout", endpoint="response")


async def test_unknown_routes_get_openai_style_404(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    with pytest.raises(openai.NotFoundError, match=r"Invalid URL \(POST /v1/embeddings\)"):
        await client.embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.APIStatusError, match=r"Invalid URL \(DELETE /v1/models\)"):
        await client.delete("/models", cast_to=object)
    if fake.spec_check:  # the spec knows no DELETE /models: the client's mistake is recorded
        assert fake.spec_problems == [
            "DELETE /v1/models request: no such operation in openai-openapi.yaml"
        ]
        fake.spec_problems.clear()


async def test_the_fake_checks_against_the_vendored_spec() -> None:
    """The spec ships with the repository: a fresh clone's fake always checks."""
    assert (SPECS_DIR / "openai-openapi.yaml").is_file()
    async with FakeOpenAI() as fake:
        assert fake.spec_check is True
