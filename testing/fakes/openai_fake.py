"""A loopback fake of the OpenAI HTTP API, for wire tests with the real ``openai`` client.

    async with FakeOpenAI() as fake:
        client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
        fake.answer = lambda turn: f"you said {turn.messages[-1][1]}"
        ...
        assert fake.spec_problems == []

A real ``aiohttp.web`` server on 127.0.0.1 (ephemeral port). Modelled:

* ``POST /v1/responses`` (stream and not): string or item-list ``input`` (message items with
  ``input_text``/``input_image``/``output_text`` parts; ``function_call_output`` items are
  checked: each must answer a pending ``function_call`` of the conversation / response chain,
  and a request leaving a pending call unanswered gets 400 "No tool output found for function
  call …", as the real API), ``instructions``, ``conversation`` (stored items are
  prepended for `FakeTurn.messages`; new input items and the output items are appended on
  completion, also on ``incomplete``), ``previous_response_id`` (same, from the stored response
  chain; mutually exclusive with ``conversation`` -> 400), ``store=false`` (not retrievable).
  ``text.format`` ``json_object`` without the word "json" in the prompt -> 400 (as the API).
  ``tool_choice: "none"`` drops scripted function calls. ``background: true`` stores the
  response at once (``queued``, then ``in_progress``) so ``GET /v1/responses/{id}`` and
  ``POST /v1/responses/{id}/cancel`` work while it streams; cancel sets ``cancelled`` and the
  stream then ends without a terminal event (how the real stream ends is not documented);
  cancel of a non-background response -> 400, of a finished one -> the response unchanged.
  A background response whose client leaves mid-stream runs on to completion (stored, so a
  later ``GET`` finds it ``completed``), as the real API does; a plain stream just stops.
  Other parameters (``temperature``, ``max_output_tokens``, ``json_schema``...) are accepted and
  echoed in the Response object, never acted on. Streams carry the real event sequence
  (created, in_progress, per tool item output_item.added/done with function_call_arguments
  delta/done for function calls, then for the message output_item.added, content_part.added,
  output_text.delta one word each, output_text.annotation.added, output_text.done,
  content_part.done, output_item.done, completed) with ``sequence_number``.
  ``GET /v1/responses/{id}`` returns a stored response; with ``stream=true`` (a background
  response only, else 400) it streams the response's events after ``starting_after`` (a
  ``sequence_number``; all of them without it), waiting for the rest while it still runs, up to
  its terminal event (the SDK's ``responses.retrieve(id, stream=True, starting_after=N)``).
* Scripted model output (`testing.fakes.openai_script`): ``answer`` may return a `ModelOutput`
  with function calls (parallel, any arguments text, even invalid JSON or unknown names) and
  hosted tool runs: `CodeRun` (a ``code_interpreter_call`` in the request's container, with
  ``outputs`` logs only when ``include`` asks for ``code_interpreter_call.outputs``; its files
  are created in the container and cited with ``container_file_citation``), `FileSearch`
  (``file_search_call`` with queries, ``file_citation`` annotations), `WebSearch`
  (``web_search_call`` with a search action), `ImageGen` (``image_generation_call`` with a PNG).
  A hosted run whose tool the request does not offer -> 400; a code interpreter tool naming an
  unknown container -> 400, an expired one -> 400 ``container_expired``.
  `FakeTurn.tool_outputs` holds the (call_id, output) pairs sent back.
* Containers (`testing.fakes.openai_containers`): create, retrieve, delete; container files
  upload (multipart), list, retrieve, content; `FakeOpenAI.expire_container`.
* Conversations: create (``items``, ``metadata``), retrieve, update (metadata), delete;
  items list (``order`` asc/desc, default desc, ``limit``, ``after``), create, retrieve, delete.
* ``POST /v1/chat/completions`` (stream and not; ``stream_options.include_usage`` adds the
  usage chunk with ``choices: []`` before ``data: [DONE]``); ``system_fingerprint`` answered
  (``seed`` accepted; the fingerprint does not depend on it); scripted function calls streamed
  as ``tool_calls`` deltas (id and name first, arguments in two pieces) with
  ``finish_reason: "tool_calls"``; an assistant message with ``tool_calls`` not followed by one
  ``tool`` message per call id (or a stray ``tool`` message) -> 400; ``response_format``
  ``json_object`` without "json" in the messages -> 400; hosted tool runs -> 400.
* ``GET /v1/models`` and ``/v1/models/{id}``; a request naming a model not in `FakeOpenAI.models`
  gets 404 ``model_not_found``; a missing/empty ``Authorization: Bearer`` gets 401; an unknown
  route gets OpenAI's 404 ``Invalid URL (METHOD /path)``. Every response has ``x-request-id``.
* Media: ``POST /v1/images/generations`` (JSON), ``/v1/images/edits`` and
  ``/v1/images/variations`` (multipart; the image must decode with Pillow as png/webp/jpeg, the
  mask must be a PNG with alpha of the image's size, else 400 ``invalid_image``/
  ``invalid_mask``), answered with ``b64_json`` PNGs (`FakeOpenAI.make_image`), ``usage`` and
  ``revised_prompt`` when `FakeOpenAI.revise` returns one; a prompt for which `FakeOpenAI.refuse`
  is true gets 400 ``moderation_blocked``. ``POST /v1/audio/transcriptions`` and
  ``/v1/audio/translations`` (multipart: the file's extension must be one the API takes and the
  file at most 25 MB, else 400) answer `FakeOpenAI.transcript` (filename, bytes) -> text with a
  ``duration`` usage; ``POST /v1/audio/speech`` answers audio bytes (``audio/mpeg``).
* ``GET /v1/realtime`` (WebSocket): the Realtime API for text to speech, in
  `testing.fakes.openai_realtime` (``fake.realtime``: its knobs and what it does not model).
* Shutdowns: with `FakeOpenAI.today` set (a date), a model whose ``shutdown_date`` is on or
  before it is gone: not listed, and a request naming it gets 404 ``model_not_found`` (so
  ``today = date(2027, 1, 7)`` is the endpoint after the ``/audio/speech`` models' shutdown).
  Multipart requests are recorded with ``json`` = the form (file fields as
  ``{"filename", "content_type", "size", "data"}``) in `FakeOpenAI.requests`.
* Files and vector stores: see `testing.fakes.openai_knowledge` (``fake.knowledge``).
* Usage is estimated as ceil(chars / 4) per text; ``cached_tokens``, ``cache_write_tokens``
  and ``reasoning_tokens`` are 0.
* Context window (`FakeOpenAI.context_window`, tokens; None = no limit): a request's input is
  estimated as ceil(chars / 4) per text + 4 per item + 256 per image. Over the window:
  ``/v1/chat/completions`` and ``/v1/responses`` answer the real 400
  ``context_length_exceeded`` (param ``messages`` / ``input``; with
  ``context_error_in_stream`` a streamed Responses request gets it as an ``error`` event) —
  unless the Responses request asks for ``context_management`` compaction (past its
  ``compact_threshold`` the stored history is replaced by one opaque ``compaction`` output item
  that later turns start from, stored before the turn's input) or ``truncation: "auto"`` (the
  oldest items are dropped for this request only). ``honour_context_management = False`` plays
  a server that ignores both. ``POST /v1/responses/compact`` (``compact_endpoint = False``: 404)
  returns the most recent user messages that fit a quarter of the window and one compaction
  item. `FakeTurn` says what happened (``compacted``, ``truncated``, ``input_tokens``);
  ``compactions`` and ``context_errors`` count.

NOT modelled: a model deciding on its own to call tools (tests script every call), MCP,
shell, computer use and custom tools, hosted tool progress events (``*.in_progress``,
``*.searching``, ``code_interpreter_call_code.delta``, partial images), ``url_citation``
annotations, ``tool_usage``, file search results (vector stores and files are in
`testing.fakes.openai_knowledge`), embeddings, batches, ``include`` beyond ``code_interpreter_call.outputs``, logprobs, reasoning items and summaries, refusals,
structured-output enforcement (``json_schema`` is not applied to the scripted text), strict
function schemas, the ``response.compaction.compacting`` event, metadata limits, rate-limit
headers, real tokenisation, Chat Completions storage (``store=true``), stream obfuscation fields, ``n > 1``.

Compatible servers: ``fake.server = LITELLM`` (`testing.fakes.compatible`) answers like a LiteLLM
proxy where it differs from OpenAI: no ``/v1/conversations`` (404 ``{"detail": "Not Found"}``),
an unknown model as a 400 with ``code: "400"``, ``param: null``, and the ``unauthorized`` fault
as 400 "No connected db." (recorded from the real proxy).

Faults (`FakeOpenAI.fail_next`), consumed FIFO by the matching requests, each request recorded:

===============  ====================================================================
``unauthorized`` 401 ``invalid_api_key``            -> ``openai.AuthenticationError``
``rate_limit``   429 ``rate_limit_exceeded`` + ``retry-after``/``retry-after-ms``
                                                    -> ``openai.RateLimitError`` (``.code``)
``quota``        429 ``insufficient_quota``         -> ``openai.RateLimitError`` (``.code``)
``server_error`` 500 ``server_error``               -> ``openai.InternalServerError``
``timeout``      never answers (until the client leaves, ~60 s or `close`)
                 -> ``openai.APITimeoutError`` raised by ``create()`` itself (also when
                 ``stream=True``: the headers never come)
``break``        200, a few deltas, then the TCP connection is aborted without the terminal
                 event -> iterating the stream raises ``openai.APIConnectionError`` (message
                 "Connection error."; ``__cause__`` is ``httpx2.RemoteProtocolError``
                 "peer closed connection without sending complete message body: incomplete
                 chunked read"). NOT ``APITimeoutError`` (a subclass of APIConnectionError).
                 Non-streaming: the body is cut short -> ``create()`` raises the same.
                 A streamed BACKGROUND response only loses its connection: it runs on to
                 completion server-side, and a retrieve-stream resumes it (a stream fault on
                 that retrieve-stream drops it after one event).
``failed``       Responses stream ends with ``response.failed`` (``status: failed``,
                 ``error.code: server_error``); the SDK raises nothing, the consumer sees the
                 event. Non-stream Responses: the Response object with ``status: failed``.
                 Chat stream: an ``{"error": ...}`` data line, which the SDK raises as
                 ``openai.APIError`` while iterating; chat non-stream: 500.
``incomplete``   half the words, then ``response.incomplete`` with
                 ``incomplete_details.reason: max_output_tokens`` (chat: ``finish_reason:
                 "length"``). Non-stream: the same as a final object.
===============  ====================================================================

Random faults (`FakeOpenAI.fail_randomly`): each request that no queued fault matched fails with
probability ``rate``, its kind drawn from ``kinds``, from a seeded ``random.Random`` (the same
seed and request sequence give the same faults); `FakeOpenAI.random_faults` lists what was
injected. Off by default.

``break``/``failed``/``incomplete`` only match generation requests (``POST /v1/responses``,
``POST /v1/chat/completions``); the others match ANY request, including the
``POST /v1/conversations`` a Responses backend may send before its first turn (narrow with
``endpoint=``: "responses", "chat", "conversations" or "models").

SDK behaviour worth knowing (openai 3.54): ``client.responses.stream(...)``'s
``get_final_response()`` raises ``RuntimeError("Didn't receive a `response.completed`
event.")`` for ``failed`` AND ``incomplete`` streams; iterate ``responses.create(stream=True)``
to see the terminal event instead. With ``max_retries > 0`` the SDK itself retries 429/500
and timeouts (honouring ``retry-after-ms``), so one fault per attempt is needed.

Spec check (``spec_check=True``, the default; the spec ships in
``testing/specs/openai-openapi.yaml``): every JSON request body, JSON response, and
SSE event payload is checked against the official OpenAPI description with
`testing.fakes.spec_check` and problems are appended to `FakeOpenAI.spec_problems`. Error bodies
are checked against ``components/schemas/ErrorResponse`` (the spec documents only 200/429).
Not checked: the chat ``{"error": ...}`` stream line and ``[DONE]`` (outside the schema), the
partial bodies of ``break``, headers and query parameters (see spec_check's docstring for the
checker's own limits).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import inspect
import json
import logging
import math
import random
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .compatible import CompatibleServer
from .openai_containers import BODY as _BODY
from .openai_containers import ContainersMixin
from .openai_knowledge import FakeKnowledge
from .openai_realtime import FakeRealtime
from .openai_script import CodeRun, FileSearch, FunctionCall, ImageGen, ModelOutput, WebSearch
from .spec_check import Spec, load_spec

__all__ = [
    "DEFAULT_MODELS",
    "CodeRun",
    "FakeOpenAI",
    "FakeTurn",
    "FaultKind",
    "FileSearch",
    "FunctionCall",
    "ImageGen",
    "ModelOutput",
    "RecordedRequest",
    "WebSearch",
]

FaultKind = Literal[
    "unauthorized",
    "rate_limit",
    "quota",
    "server_error",
    "timeout",
    "break",
    "failed",
    "incomplete",
]
_FAULT_KINDS = frozenset(get_args(FaultKind))
_STREAM_FAULTS = frozenset({"break", "failed", "incomplete"})
_ENDPOINTS = frozenset(
    {None, "responses", "chat", "conversations", "models", "images", "audio", "realtime"}
)
_TERMINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")
_PARTIAL_DELTAS = 3  # deltas sent before "break"/"failed"
_TIMEOUT_HANG = 60.0
_SPEC = "openai-openapi.yaml"
_FINGERPRINT = "fp_fake0penai"

_CREATED = 1_767_225_600  # 2026-01-01
_log = logging.getLogger(__name__)


def _model(id_: str, owned_by: str = "system", shutdown_date: str | None = None) -> dict:
    return {
        "id": id_,
        "object": "model",
        "created": _CREATED,
        "owned_by": owned_by,
        "shutdown_date": shutdown_date,
    }


DEFAULT_MODELS: tuple[dict[str, Any], ...] = (
    _model("gpt-6.1-terra"),
    _model("gpt-6.1-sol"),
    _model("gpt-image-2.6-sunburst"),
    _model("gpt-transcribe"),
    _model("gpt-realtime-2.1-mini"),
    _model("text-embedding-3-small"),
    _model("omni-moderation-latest"),
    _model("gpt-4o-mini-tts", shutdown_date="2027-01-06"),
    _model("tts-1", shutdown_date="2027-01-06"),
    _model("whisper-1", shutdown_date="2027-02-26"),
    _model("gpt-5-mini", shutdown_date="2026-12-11"),
)


@dataclass(frozen=True)
class FakeTurn:
    """What the "model" sees for one generation request (the argument of `FakeOpenAI.answer`).

    ``messages`` are (role, text) in order, history first (stored conversation / previous
    response chain for Responses; everything the client sent for Chat). Chat system/developer
    messages go to ``instructions`` (joined by a blank line); Responses keep input items with
    those roles in ``messages`` and ``instructions`` is the ``instructions`` parameter. Text
    parts of one message are joined with "\\n". ``images`` are the image URLs / data URLs (or
    ``file_id`` when no URL) of every image part, history included, in order.
    """

    endpoint: Literal["responses", "chat"]
    model: str
    instructions: str | None
    messages: list[tuple[str, str]]
    images: list[str]
    raw: dict[str, Any]
    conversation_id: str | None
    # (call_id, output) of the tool results sent with this request: Responses
    # ``function_call_output`` input items; Chat ``tool`` messages after the last user message.
    tool_outputs: list[tuple[str, str]] = field(default_factory=list)
    # The last text part of the last user message (what `default_answer` echoes): a message
    # sent as several text parts (context, author, words) is answered by its words.
    user_text: str = field(default="", compare=False)
    # What the context window did to this request: earlier items compacted into one
    # ``compaction`` item, or the oldest dropped (``truncation: "auto"``); the estimated input
    # tokens the "model" saw.
    compacted: bool = field(default=False, compare=False)
    truncated: bool = field(default=False, compare=False)
    input_tokens: int = field(default=0, compare=False)

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.raw.get("tools") or [])


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received (``json`` is None when there was no JSON body)."""

    method: str
    path: str
    headers: Mapping[str, str]
    json: Any
    query: Mapping[str, str] = field(default_factory=dict)


class _Closed(Exception):
    """Raised in a handler that was waiting when the fake closed."""


class _Cancelled(Exception):
    """Raised in a streaming handler whose background response was cancelled."""


_HOSTED_TOOL: dict[type, str] = {
    CodeRun: "code_interpreter",
    FileSearch: "file_search",
    WebSearch: "web_search",
    ImageGen: "image_generation",
}


@dataclass(eq=False)
class StreamPause:
    """Streamed answers stop after `after` text deltas until `release` (see
    `FakeOpenAI.pause_streams`): a test sees the partial text on the platform, then lets the
    answer go on, so "shown progressively" is a fact of order, not of timing."""

    after: int
    reached: asyncio.Event = field(default_factory=asyncio.Event)  # a stream is at the pause
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()


@dataclass
class _Fault:
    kind: str
    times: int
    retry_after: float | None
    endpoint: str | None


Answer = Callable[[FakeTurn], "str | ModelOutput | Awaitable[str | ModelOutput]"]


def default_answer(turn: FakeTurn) -> str:
    """``"echo: "`` + the last user message's text (its last text part)."""
    return "echo: " + turn.user_text


class FakeOpenAI(ContainersMixin):
    """The fake server. Use as ``async with FakeOpenAI() as fake:`` (or `start`/`close`).

    Mutable at any time: `answer`, `models`, `latency` (seconds before the first byte of a
    generation answer), `delta_delay` (seconds between streamed deltas), `paced` (deltas on a
    fixed schedule, the i-th `i * delta_delay` after the first, so a loaded event loop does not
    stretch a stream the way back-to-back sleeps would), `pause_streams` (streams stop midway
    until the test releases them).
    Inspect: `requests`, `turns` (every `FakeTurn` given to `answer`), `conversations`
    (id -> stored items), `conversation_labels()` (id -> its metadata's "switchboard" value),
    `responses` (id -> stored Response object), `spec_problems`.
    """

    def __init__(
        self, *, latency: float = 0.0, delta_delay: float = 0.0, spec_check: bool = True
    ) -> None:
        self.latency = latency
        self.delta_delay = delta_delay
        self.paced = False
        self.pause: StreamPause | None = None
        self.spec_check = spec_check
        self.answer: Answer = default_answer
        self.models: list[dict[str, Any]] = [dict(m) for m in DEFAULT_MODELS]
        self.requests: list[RecordedRequest] = []
        self.turns: list[FakeTurn] = []
        self.flag_words: dict[str, str] = {"FLAGME": "violence"}  # moderation: word → category
        self.conversations: dict[str, list[dict[str, Any]]] = {}
        self.responses: dict[str, dict[str, Any]] = {}
        self.spec_problems: list[str] = []
        self.revise: Callable[[str], str | None] = lambda prompt: None
        self.refuse: Callable[[str], bool] = lambda prompt: False
        self.transcript: Callable[[str, bytes], str] = lambda name, data: "hello from " + name
        self.speech_audio = b"ID3\x04\x00\x00\x00\x00\x00\x00fake speech"
        self.knowledge = FakeKnowledge(self, lambda request: request[_BODY])  # files, stores
        self.realtime = FakeRealtime(self)  # GET /v1/realtime (WebSocket)
        self.today: dt.date | None = None  # None: no model is shut down
        self._conversation_meta: dict[str, dict[str, Any]] = {}
        self.cancelled: set[str] = set()  # background responses cancelled while running
        # Every streamed event of a background response, for `GET /v1/responses/{id}?stream=
        # true&starting_after=N` (resuming a dropped stream); set when its terminal event is in.
        self._background_events: dict[str, list[dict[str, Any]]] = {}
        self._background_moved: dict[str, asyncio.Event] = {}
        # The context window (estimated tokens, see `_tokens_of`) every model has; None: no
        # limit. `honour_context_management=False` plays a compatible server that ignores
        # `truncation` and `context_management`; `compact_endpoint=False` one without
        # POST /v1/responses/compact (404). `context_error_in_stream`: an over-long streamed
        # request gets its 400 as an `error` event in a 200 stream instead.
        self.context_window: int | None = None
        self.honour_context_management = True
        self.compact_endpoint = True
        self.context_error_in_stream = False
        self.compactions: list[dict[str, Any]] = []  # {"via", "items", "kept"} per compaction
        self.context_errors = 0
        self._init_containers()
        self._response_context: dict[str, list[dict[str, Any]]] = {}
        self._faults: list[_Fault] = []
        self._chaos: tuple[random.Random, float, tuple[str, ...], str | None] | None = None
        self.random_faults: list[str] = []
        # Answer like this compatible server where it differs from OpenAI (None: like OpenAI).
        self.server: CompatibleServer | None = None
        self._spec: Spec | None = None
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.base_url = ""
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> FakeOpenAI:
        self._closing.clear()
        if self.spec_check and self._spec is None:
            self._spec = await asyncio.to_thread(load_spec, _SPEC)
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024**2)
        app.on_response_prepare.append(_add_request_id)
        r = app.router
        r.add_post("/v1/responses", self._responses_create)
        r.add_get("/v1/responses/{id}", self._responses_get)
        r.add_post("/v1/responses/{id}/cancel", self._responses_cancel)
        r.add_post("/v1/responses/compact", self._responses_compact)
        self._add_container_routes(r)
        r.add_post("/v1/conversations", self._conv_create)
        r.add_get("/v1/conversations/{id}", self._conv_get)
        r.add_post("/v1/conversations/{id}", self._conv_update)
        r.add_delete("/v1/conversations/{id}", self._conv_delete)
        r.add_get("/v1/conversations/{id}/items", self._items_list)
        r.add_post("/v1/conversations/{id}/items", self._items_create)
        r.add_get("/v1/conversations/{id}/items/{item}", self._item_get)
        r.add_delete("/v1/conversations/{id}/items/{item}", self._item_delete)
        r.add_post("/v1/chat/completions", self._chat_create)
        r.add_post("/v1/images/generations", self._images_generate)
        r.add_post("/v1/images/edits", self._images_edit)
        r.add_post("/v1/images/variations", self._images_variation)
        r.add_post("/v1/audio/transcriptions", self._audio_transcribe)
        r.add_post("/v1/audio/translations", self._audio_translate)
        r.add_post("/v1/audio/speech", self._audio_speech)
        r.add_get("/v1/models", self._models_list)
        r.add_get("/v1/models/{id}", self._model_get)
        r.add_post("/v1/moderations", self._moderations_create)
        r.add_get("/v1/realtime", self.realtime.handle)
        self.knowledge.register(r)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.25)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        return self

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakeOpenAI:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- faults -------------------------------------------------------------------------------

    def fail_next(
        self,
        kind: FaultKind,
        times: int = 1,
        retry_after: float | None = None,
        endpoint: str | None = None,
    ) -> None:
        """Make the next ``times`` matching requests fail with ``kind`` (see module docstring).

        ``endpoint`` ("responses", "chat", "conversations", "models") limits which requests
        consume the fault; ``retry_after`` (seconds, default 0.01) is for "rate_limit".
        """
        if kind not in _FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(_FAULT_KINDS)}")
        if endpoint not in _ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {sorted(_ENDPOINTS - {None})}")
        if times < 1:
            raise ValueError("times must be >= 1")
        self._faults.append(_Fault(kind, times, retry_after, endpoint))

    def fail_randomly(
        self,
        rate: float,
        kinds: tuple[FaultKind, ...] = ("rate_limit", "server_error", "timeout"),
        *,
        seed: int = 0,
        endpoint: str | None = None,
    ) -> None:
        """Fail a ``rate`` fraction of the matching requests (0 switches it off), with a kind
        drawn from ``kinds``; seeded, so a test sees the same faults on every run."""
        unknown = set(kinds) - _FAULT_KINDS
        if unknown or not kinds:
            raise ValueError(
                f"unknown fault kinds {sorted(unknown)}; one of {sorted(_FAULT_KINDS)}"
            )
        if endpoint not in _ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {sorted(_ENDPOINTS - {None})}")
        if not 0 <= rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        self._chaos = (random.Random(seed), rate, tuple(kinds), endpoint) if rate else None

    def _take_fault(self, endpoint: str, generation: bool) -> _Fault | None:
        for fault in self._faults:
            if fault.endpoint not in (None, endpoint):
                continue
            if fault.kind in _STREAM_FAULTS and not generation:
                continue
            fault.times -= 1
            if fault.times == 0:
                self._faults.remove(fault)
            return fault
        return self._random_fault(endpoint, generation)

    def _random_fault(self, endpoint: str, generation: bool) -> _Fault | None:
        if self._chaos is None:
            return None
        rng, rate, kinds, only = self._chaos
        if only not in (None, endpoint):
            return None
        allowed = [k for k in kinds if generation or k not in _STREAM_FAULTS]
        if not allowed or rng.random() >= rate:
            return None
        kind = rng.choice(allowed)
        self.random_faults.append(kind)
        return _Fault(kind, 1, None, endpoint)

    # -- plumbing -----------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        body: Any = None
        bad_json = False
        multipart = request.content_type == "multipart/form-data"
        if multipart:
            body = await _read_form(request)
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        self.requests.append(
            RecordedRequest(
                request.method,
                request.path,
                CIMultiDictProxy(CIMultiDict(request.headers)),
                body,
                dict(request.query),
            )
        )
        request[_BODY] = body
        checked = request.path.startswith("/v1/") and request.path != "/v1/realtime"
        if self._spec is not None and not bad_json and checked:
            if multipart:
                form = {k: v["filename"] if isinstance(v, dict) else v for k, v in body.items()}
                self._problems(
                    self._spec.check_request(
                        request.method, request.path, form, "multipart/form-data"
                    )
                )
            else:
                self._problems(self._spec.check_request(request.method, request.path, body))

        if self.server is not None and not self.server.serves(request.path):
            return _plain_json(*self.server.not_found())
        auth = request.headers.get("Authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if not key:
            return self._error(request, 401, _NO_KEY, "invalid_request_error")
        if bad_json:
            return self._error(request, 400, _BAD_JSON, "invalid_request_error")

        parts = request.path.split("/")
        endpoint = parts[2] if len(parts) > 2 else ""
        generation = (
            request.method == "POST" and request.path in ("/v1/responses", "/v1/chat/completions")
        ) or (  # resuming a background response's stream is one too
            request.method == "GET"
            and request.path.startswith("/v1/responses/")
            and request.query.get("stream") == "true"
        )
        fault = self._take_fault(endpoint, generation)
        if fault is not None:
            if fault.kind in _STREAM_FAULTS:
                request[_FAULT] = fault.kind
            else:
                return await self._fault_response(request, fault, key, body)
        try:
            return await handler(request)
        except _Closed:
            return _abort(request, web.Response(status=503))
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
            message = f"Invalid URL ({request.method} {request.path})"
            return self._error(request, exc.status, message, "invalid_request_error")
        except web.HTTPException:
            raise
        except Exception as exc:  # e.g. a broken `answer` callable: say so in the 500
            _log.exception("FakeOpenAI: %s %s failed", request.method, request.path)
            message = f"FakeOpenAI handler failed: {exc!r}"
            return self._error(request, 500, message, "server_error")

    async def _fault_response(
        self, request: web.Request, fault: _Fault, key: str, body: Any
    ) -> web.StreamResponse:
        if fault.kind == "unauthorized" and self.server is not None:
            return _plain_json(*self.server.rejected_key())
        if fault.kind == "unauthorized":
            masked = key[:5] + "***" + key[-2:]
            message = (
                f"Incorrect API key provided: {masked}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
            return self._error(
                request, 401, message, "invalid_request_error", code="invalid_api_key"
            )
        if fault.kind == "rate_limit":
            wait = 0.01 if fault.retry_after is None else fault.retry_after
            model = (
                body.get("model", "gpt-6.1-terra") if isinstance(body, dict) else "gpt-6.1-terra"
            )
            message = (
                f"Rate limit reached for {model} in organization org-fake on requests per min "
                f"(RPM): Limit 3, Used 3, Requested 1. Please try again in {wait * 1000:g}ms. "
                "Visit https://platform.openai.com/account/rate-limits to learn more."
            )
            headers = {"retry-after": f"{wait:g}", "retry-after-ms": f"{wait * 1000:g}"}
            return self._error(
                request, 429, message, "requests", code="rate_limit_exceeded", headers=headers
            )
        if fault.kind == "quota":
            message = "You exceeded your current quota, please check your plan and billing details."
            return self._error(
                request, 429, message, "insufficient_quota", code="insufficient_quota"
            )
        if fault.kind == "server_error":
            message = "The server had an error while processing your request. Sorry about that!"
            return self._error(request, 500, message, "server_error")
        # "timeout": hold the request until the client leaves or the fake closes.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _TIMEOUT_HANG
        while not self._closing.is_set() and loop.time() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), 0.05)
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=504)

    def _problems(self, problems: list[str]) -> None:
        if problems:
            self.spec_problems.extend(problems)

    def _json(self, request: web.Request, payload: Any, status: int = 200) -> web.Response:
        if self._spec is not None:
            if status < 400:
                problems = self._spec.check_response(request.method, request.path, status, payload)
            else:
                problems = self._spec.check_component(
                    "ErrorResponse", payload, label=f"{request.method} {request.path} {status}"
                )
            self._problems(problems)
        return web.Response(
            status=status,
            body=json.dumps(payload, ensure_ascii=False).encode(),
            content_type="application/json",
        )

    def _error(
        self,
        request: web.Request,
        status: int,
        message: str,
        type_: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        payload = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        response = self._json(request, payload, status)
        if headers:
            response.headers.update(headers)
        return response

    def _model_error(self, request: web.Request, body: Any) -> web.Response | None:
        """400 if ``model`` is missing, 404 ``model_not_found`` if it is unknown."""
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(model, str) or not model:
            return self._error(
                request,
                400,
                "Missing required parameter: 'model'.",
                "invalid_request_error",
                param="model",
                code="missing_required_parameter",
            )
        if not self.served(model):
            if self.server is not None:
                return _plain_json(*self.server.unknown_model(request.path, model))
            return self._not_found_model(request, model)
        return None

    def served(self, model: str) -> bool:
        """The model is listed and not shut down at `today`."""
        return any(m.get("id") == model for m in self._live_models())

    def _live_models(self) -> list[dict[str, Any]]:
        if self.today is None:
            return list(self.models)
        today = self.today.isoformat()
        return [m for m in self.models if not (m.get("shutdown_date") or "9999")[:10] <= today]

    def _not_found_model(self, request: web.Request, model: str) -> web.Response:
        message = f"The model `{model}` does not exist or you do not have access to it."
        return self._error(
            request, 404, message, "invalid_request_error", param="model", code="model_not_found"
        )

    async def _call_answer(self, turn: FakeTurn) -> ModelOutput:
        self.turns.append(turn)
        result = self.answer(turn)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, ModelOutput):
            calls = [] if turn.raw.get("tool_choice") == "none" else list(result.calls)
            return ModelOutput(result.text, calls, list(result.hosted))
        return ModelOutput(str(result))

    def pause_streams(self, after: int) -> StreamPause:
        """From now on every streamed answer (Responses and Chat Completions) stops after
        ``after`` text deltas until ``release()`` is called on the returned pause; an answer
        with fewer words than ``after`` is not held."""
        if after < 1:
            raise ValueError("after must be >= 1")
        self.pause = StreamPause(after)
        return self.pause

    async def _maybe_pause(self, sent: int) -> None:
        """Hold the stream at the pause (`pause_streams`) once ``sent`` deltas are out."""
        pause = self.pause
        if pause is None or sent != pause.after or pause.released.is_set():
            return
        pause.reached.set()
        released = asyncio.ensure_future(pause.released.wait())
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({released, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            released.cancel()
            closing.cancel()
        if not pause.released.is_set():
            raise _Closed

    def _delta_wait(self, index: int, first_at: float) -> float:
        """Seconds to wait before delta `index` (see `paced`)."""
        if not self.paced:
            return self.delta_delay
        return first_at + index * self.delta_delay - time.monotonic()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but end the request at once (`_Closed`) when the fake closes."""
        if seconds <= 0:
            return
        if not self._closing.is_set():
            try:
                await asyncio.wait_for(self._closing.wait(), seconds)
            except TimeoutError:
                return
        raise _Closed

    async def _open_stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        return response

    def _check_event(self, request: web.Request, payload: Any) -> None:
        if self._spec is not None:
            self._problems(self._spec.check_event(request.method, request.path, payload))

    # -- Responses ----------------------------------------------------------------------------

    async def _responses_create(self, request: web.Request) -> web.StreamResponse:
        body = request[_BODY]
        if not isinstance(body, dict):
            return self._error(request, 400, _BAD_BODY, "invalid_request_error")
        if (error := self._model_error(request, body)) is not None:
            return error
        conv_id = body.get("conversation")
        if isinstance(conv_id, dict):
            conv_id = conv_id.get("id")
        previous = body.get("previous_response_id")
        if conv_id and previous:
            return self._error(
                request,
                400,
                "Mutually exclusive parameters: 'conversation' and 'previous_response_id'. "
                "Ensure you are only providing one of: 'previous_response_id' or 'conversation'.",
                "invalid_request_error",
                param="conversation",
                code="mutually_exclusive_parameters",
            )
        if conv_id:
            if conv_id not in self.conversations:
                return self._conversation_404(request, conv_id)
            history = _from_last_compaction(self.conversations[conv_id])
        elif previous:
            if previous not in self._response_context:
                message = f"Previous response with id '{previous}' not found."
                return self._error(
                    request, 404, message, "invalid_request_error", param="previous_response_id"
                )
            history = _from_last_compaction(self._response_context[previous])
        else:
            history = []
        try:
            new_items = _input_items(body.get("input"))
        except ValueError as exc:
            return self._error(request, 400, str(exc), "invalid_request_error", param="input")
        if (problem := _tool_output_problem(history, new_items)) is not None:
            return self._error(request, 400, problem, "invalid_request_error", param="input")
        instructions = body.get("instructions")
        fitted = self._fit_window(body, instructions, history, new_items)
        if isinstance(fitted, int):
            return await self._context_error(request, body, fitted, param="input")
        visible, compaction, truncated, input_tokens = fitted
        if compaction is not None:
            history = [compaction]
        messages, images = _messages_of(visible)
        if (problem := _json_mode_problem(body, instructions, messages)) is not None:
            return self._error(request, 400, problem, "invalid_request_error", param="text")
        tools = {t.get("type"): t for t in body.get("tools") or [] if isinstance(t, dict)}
        code_tool = tools.get("code_interpreter")
        if code_tool is not None and (
            problem := self.container_problem(code_tool.get("container"))
        ):
            code = "container_expired" if "expired" in problem else None
            return self._error(request, 400, problem, "invalid_request_error", code=code)
        outputs = [
            (item["call_id"], str(item.get("output")))
            for item in new_items
            if item.get("type") == "function_call_output"
        ]
        turn = FakeTurn(
            "responses",
            body["model"],
            instructions,
            messages,
            images,
            body,
            conv_id or None,
            outputs,
            user_text=_last_user_text(visible),
            compacted=any(i.get("type") == "compaction" for i in visible),
            truncated=truncated,
            input_tokens=input_tokens,
        )
        await self._sleep(self.latency)
        answer = await self._call_answer(turn)
        for run in answer.hosted:
            needed = _HOSTED_TOOL[type(run)]
            if needed not in tools:
                message = f"FakeOpenAI: the script runs {needed} but the request has no such tool"
                return self._error(request, 400, message, "invalid_request_error", param="tools")
        fault = request.get(_FAULT)
        background = bool(body.get("background"))
        # A background response whose stream breaks runs on server-side (to be resumed).
        dropped = fault == "break" and background and bool(body.get("stream"))
        words = _words(answer.text, None if dropped else fault)
        text = "".join(words)
        include = body.get("include") or []
        container_id = code_tool.get("container") if code_tool else None
        tool_items, annotations = self._hosted_items(answer, tools, container_id, include, text)
        call_items = [
            {
                "type": "function_call",
                "id": _new_id("fc_"),
                "call_id": call.call_id or _new_id("call_"),
                "name": call.name,
                "arguments": call.arguments_text,
                "status": "completed",
            }
            for call in answer.calls
        ]

        compacted = [compaction] if compaction is not None else []
        response_id = _new_id("resp_")
        item_id = _new_id("msg_")
        status = {"failed": "failed", "incomplete": "incomplete"}.get(fault or "", "completed")
        input_chars = len(instructions or "") + sum(len(t) for _, t in messages)
        obj = _response_object(
            response_id,
            body,
            conv_id,
            instructions,
            status="queued" if background else "in_progress",
        )
        with_message = bool(text) or not call_items
        if background:
            self.responses[response_id] = obj  # retrievable and cancellable while it runs

        def finish() -> dict[str, Any]:
            obj["status"] = status
            if status == "failed":
                obj["error"] = {"code": "server_error", "message": "The model had an error."}
                return obj
            item = _output_message(
                item_id, text, "completed" if status == "completed" else "incomplete"
            )
            item["content"][0]["annotations"] = annotations
            output = [*compacted, *tool_items, *call_items, *([item] if with_message else [])]
            obj["output"] = output
            obj["usage"] = _response_usage(input_chars, len(text))
            if status == "completed":
                obj["completed_at"] = int(time.time())
            else:
                obj["incomplete_details"] = {"reason": "max_output_tokens"}
            # A compaction item goes before this turn's input: later turns start from it.
            kept = [*compacted, *new_items, *output[len(compacted) :]]
            context = [*([] if compacted else history), *kept]
            if conv_id:
                self.conversations[conv_id].extend(kept)
            if body.get("store") is not False:
                self.responses[response_id] = obj
                self._response_context[response_id] = context
            return obj

        if not body.get("stream"):
            if fault == "break":
                return await self._broken_json(request, obj)
            return self._json(request, finish())

        seq = 0
        detached = False  # a background response whose client left: it runs on, unseen
        try:
            response = await self._open_stream(request)
        except ConnectionError:
            if not background:
                raise
            response, detached = web.StreamResponse(), True

        if background:
            self._background_events[response_id] = []
            self._background_moved[response_id] = asyncio.Event()

        async def send(event: dict[str, Any]) -> None:
            nonlocal seq, detached
            if response_id in self.cancelled:
                raise _Cancelled
            event["sequence_number"] = seq
            seq += 1
            self._check_event(request, event)
            if background:
                self._background_events[response_id].append(json.loads(json.dumps(event)))
                self._background_moved[response_id].set()
            if detached:
                return
            data = json.dumps(event, ensure_ascii=False)
            try:
                await response.write(f"event: {event['type']}\ndata: {data}\n\n".encode())
            except ConnectionError:
                if not background:
                    raise
                detached = True

        try:
            await send({"type": "response.created", "response": dict(obj)})
            obj["status"] = "in_progress"
            await send({"type": "response.in_progress", "response": obj})
            index = 0
            for done in [*compacted, *tool_items, *call_items]:
                added = {**done, "status": "in_progress"} if "status" in done else dict(done)
                if done["type"] == "function_call":
                    added["arguments"] = ""
                elif done["type"] == "image_generation_call":
                    added["result"] = None
                await send(
                    {"type": "response.output_item.added", "output_index": index, "item": added}
                )
                if done["type"] == "function_call":
                    ids = {"item_id": done["id"], "output_index": index}
                    args = done["arguments"]
                    await send(
                        {"type": "response.function_call_arguments.delta", **ids, "delta": args}
                    )
                    await send(
                        {
                            "type": "response.function_call_arguments.done",
                            **ids,
                            "arguments": args,
                            "name": done["name"],
                        }
                    )
                await send(
                    {"type": "response.output_item.done", "output_index": index, "item": done}
                )
                index += 1
            if with_message:
                item = _output_message(item_id, "", "in_progress")
                await send(
                    {"type": "response.output_item.added", "output_index": index, "item": item}
                )
                where = {"item_id": item_id, "output_index": index, "content_index": 0}
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                await send({"type": "response.content_part.added", **where, "part": part})
                first_at = time.monotonic()
                for i, word in enumerate(words):
                    if i:
                        await self._sleep(self._delta_wait(i, first_at))
                    await send(
                        {
                            "type": "response.output_text.delta",
                            **where,
                            "delta": word,
                            "logprobs": [],
                        }
                    )
                    await self._maybe_pause(i + 1)
                    if dropped and i + 1 == _PARTIAL_DELTAS and not detached:
                        # The connection drops; the response itself goes on.
                        _abort(request, response)
                        detached = True
                if dropped and not detached:  # fewer words than that: after the last one
                    _abort(request, response)
                    detached = True
                if fault == "break" and not dropped:
                    return _abort(request, response)
                if fault != "failed":
                    for n, note in enumerate(annotations):
                        await send(
                            {
                                "type": "response.output_text.annotation.added",
                                **where,
                                "annotation_index": n,
                                "annotation": note,
                            }
                        )
                    await send(
                        {"type": "response.output_text.done", **where, "text": text, "logprobs": []}
                    )
                    part = {
                        "type": "output_text",
                        "text": text,
                        "annotations": annotations,
                        "logprobs": [],
                    }
                    await send({"type": "response.content_part.done", **where, "part": part})
            final = finish()
            if fault != "failed" and with_message:
                done = final["output"][-1]
                await send(
                    {"type": "response.output_item.done", "output_index": index, "item": done}
                )
            terminal = {"completed": "response.completed", "failed": "response.failed"}
            await send({"type": terminal.get(status, "response.incomplete"), "response": final})
            if not detached:
                await response.write_eof()
        except _Cancelled:
            if not detached:
                with contextlib.suppress(ConnectionError):
                    await response.write_eof()
        except ConnectionError:
            pass  # the client left
        return response

    def _hosted_items(
        self,
        answer: ModelOutput,
        tools: dict[str, Any],
        container_id: str | None,
        include: list[str],
        text: str,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Output items of the scripted hosted tool runs, and the annotations of the answer
        text (each annotation spans the whole text)."""
        items: list[dict[str, Any]] = []
        notes: list[dict[str, Any]] = []
        for run in answer.hosted:
            if isinstance(run, CodeRun):
                assert container_id is not None
                outputs = [{"type": "logs", "logs": run.logs}] if run.logs else []
                items.append(
                    {
                        "type": "code_interpreter_call",
                        "id": _new_id("ci_"),
                        "status": "completed",
                        "container_id": container_id,
                        "code": run.code,
                        "outputs": outputs if "code_interpreter_call.outputs" in include else None,
                    }
                )
                for name, data in run.files:
                    meta = self.add_container_file(container_id, name, data)
                    notes.append(
                        {
                            "type": "container_file_citation",
                            "container_id": container_id,
                            "file_id": meta["id"],
                            "filename": name,
                            "start_index": 0,
                            "end_index": len(text),
                        }
                    )
            elif isinstance(run, FileSearch):
                items.append(
                    {
                        "type": "file_search_call",
                        "id": _new_id("fs_"),
                        "status": "completed",
                        "queries": list(run.queries),
                        "results": None,
                    }
                )
                notes += [
                    {
                        "type": "file_citation",
                        "file_id": _new_id("file-"),
                        "index": len(text),
                        "filename": name,
                    }
                    for name in run.cite
                ]
            elif isinstance(run, WebSearch):
                items.append(
                    {
                        "type": "web_search_call",
                        "id": _new_id("ws_"),
                        "status": "completed",
                        "action": {"type": "search", "query": run.query},
                    }
                )
            elif isinstance(run, ImageGen):
                image = base64.b64encode(self.make_image("256x256")).decode()
                items.append(
                    {
                        "type": "image_generation_call",
                        "id": _new_id("ig_"),
                        "status": "completed",
                        "result": image,
                        "revised_prompt": run.revised_prompt,
                    }
                )
        return items, notes

    def _fit_window(
        self,
        body: dict[str, Any],
        instructions: Any,
        history: list[dict[str, Any]],
        new_items: list[dict[str, Any]],
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, bool, int] | int:
        """The items the model sees within `context_window`: the history compacted into one
        item when the request's ``compact_threshold`` is passed, else the oldest items dropped
        under ``truncation: "auto"`` (the last one always stays). Returns (items seen, new
        compaction item or None, truncated, tokens), or the token count when the input does
        not fit (the caller answers 400)."""
        visible = [*history, *new_items]
        tokens = _tokens_of(instructions, visible)
        window = self.context_window
        if window is None:
            return visible, None, False, tokens
        honour = self.honour_context_management
        threshold = _compact_threshold(body) if honour else None
        compaction = None
        if threshold is not None and tokens > threshold and history:
            compaction = self._compaction_for(history, via="context_management")
            visible = [compaction, *new_items]
            tokens = _tokens_of(instructions, visible)
        truncated = False
        if tokens > window and honour and body.get("truncation") == "auto":
            while len(visible) > 1 and tokens > window:
                visible = visible[1:]
                truncated = True
                tokens = _tokens_of(instructions, visible)
        if tokens > window:
            return tokens
        return visible, compaction, truncated, tokens

    def _compaction_for(self, items: list[dict[str, Any]], *, via: str) -> dict[str, Any]:
        """One opaque ``compaction`` item standing for `items` (its content is the fake's own
        note of what it replaced, base64-encoded, never read by a client)."""
        note = json.dumps({"items": len(items), "chars": sum(len(_item_text(i)) for i in items)})
        self.compactions.append({"via": via, "items": len(items)})
        return {
            "type": "compaction",
            "id": _new_id("cmp_"),
            "encrypted_content": "fake-" + base64.b64encode(note.encode()).decode(),
        }

    async def _context_error(
        self, request: web.Request, body: dict[str, Any], tokens: int, *, param: str
    ) -> web.StreamResponse:
        """The real 400 ``context_length_exceeded`` (or, with `context_error_in_stream`, the
        same as an ``error`` event of a streamed response)."""
        self.context_errors += 1
        if param == "messages":
            message = (
                f"This model's maximum context length is {self.context_window} tokens. However, "
                f"your messages resulted in {tokens} tokens. Please reduce the length of the "
                "messages."
            )
        else:
            message = (
                "Your input exceeds the context window of this model. Please adjust your input "
                "and try again."
            )
        if param == "input" and self.context_error_in_stream and body.get("stream"):
            response = await self._open_stream(request)
            event = {
                "type": "error",
                "code": "context_length_exceeded",
                "message": message,
                "param": param,
                "sequence_number": 0,
            }
            self._check_event(request, event)
            with contextlib.suppress(ConnectionError):
                await response.write(f"event: error\ndata: {json.dumps(event)}\n\n".encode())
                await response.write_eof()
            return response
        return self._error(
            request,
            400,
            message,
            "invalid_request_error",
            param=param,
            code="context_length_exceeded",
        )

    async def _responses_compact(self, request: web.Request) -> web.Response:
        """POST /v1/responses/compact: the user messages (the most recent that fit a quarter of
        the window, all without one) followed by one compaction item."""
        if not self.compact_endpoint:
            message = f"Invalid URL ({request.method} {request.path})"
            return self._error(request, 404, message, "invalid_request_error")
        body = request[_BODY]
        if not isinstance(body, dict):
            return self._error(request, 400, _BAD_BODY, "invalid_request_error")
        if (error := self._model_error(request, body)) is not None:
            return error
        previous = body.get("previous_response_id")
        try:
            items = _input_items(body.get("input"))
        except ValueError as exc:
            return self._error(request, 400, str(exc), "invalid_request_error", param="input")
        if previous:
            if previous not in self._response_context:
                message = f"Previous response with id '{previous}' not found."
                return self._error(
                    request, 404, message, "invalid_request_error", param="previous_response_id"
                )
            items = [*self._response_context[previous], *items]
        users = [i for i in items if i.get("type", "message") == "message" and i["role"] == "user"]
        if self.context_window is not None:
            budget, kept = self.context_window // 4, []
            for item in reversed(users):
                budget -= _item_tokens(item)
                if budget < 0:
                    break
                kept.insert(0, item)
            users = kept
        compaction = self._compaction_for(items, via="compact")
        self.compactions[-1]["kept"] = len(users)
        chars = sum(len(_item_text(i)) for i in items)
        payload = {
            "id": _new_id("resp_"),
            "object": "response.compaction",
            "created_at": int(time.time()),
            "output": [*users, compaction],
            "usage": _response_usage(chars, 200),
        }
        return self._json(request, payload)

    async def _responses_cancel(self, request: web.Request) -> web.Response:
        response_id = request.match_info["id"]
        obj = self.responses.get(response_id)
        if obj is None:
            message = f"Response with id '{response_id}' not found."
            return self._error(request, 404, message, "invalid_request_error")
        if not obj.get("background"):
            message = "Only responses created with background=true can be cancelled."
            return self._error(request, 400, message, "invalid_request_error")
        if obj["status"] in ("queued", "in_progress"):
            obj["status"] = "cancelled"
            self.cancelled.add(response_id)
        return self._json(request, obj)

    async def _responses_get(self, request: web.Request) -> web.StreamResponse:
        response_id = request.match_info["id"]
        if response_id not in self.responses:
            message = f"Response with id '{response_id}' not found."
            return self._error(request, 404, message, "invalid_request_error")
        if request.query.get("stream") != "true":
            return self._json(request, self.responses[response_id])
        events = self._background_events.get(response_id)
        if events is None:
            message = "Only responses created with background=true can be streamed again."
            return self._error(request, 400, message, "invalid_request_error", param="stream")
        try:
            after = int(request.query.get("starting_after", "-1"))
        except ValueError:
            return self._error(request, 400, "Invalid starting_after.", "invalid_request_error")
        response = await self._open_stream(request)
        moved = self._background_moved[response_id]
        sent = after + 1
        broken = request.get(_FAULT) is not None  # any stream fault drops this one at once
        try:
            while True:
                while sent < len(events):
                    event = events[sent]
                    sent += 1
                    data = json.dumps(event, ensure_ascii=False)
                    await response.write(f"event: {event['type']}\ndata: {data}\n\n".encode())
                    if broken:
                        break
                    if event["type"] in _TERMINAL_EVENTS:
                        await response.write_eof()
                        return response
                if broken and sent > after + 1:
                    return _abort(request, response)
                if self.responses[response_id].get("status") == "cancelled":
                    await response.write_eof()
                    return response
                moved.clear()
                await asyncio.wait_for(moved.wait(), _TIMEOUT_HANG)
        except (ConnectionError, TimeoutError):
            pass
        return response

    async def _broken_json(self, request: web.Request, payload: Any) -> web.StreamResponse:
        data = json.dumps(payload).encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(data)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await response.write(data[: len(data) // 2])
        return _abort(request, response)

    # -- Conversations ------------------------------------------------------------------------

    def _conversation_404(self, request: web.Request, conv_id: str) -> web.Response:
        message = f"Conversation with id '{conv_id}' not found."
        return self._error(request, 404, message, "invalid_request_error")

    def conversation_labels(self) -> dict[str, str]:
        """Each stored conversation and the `switchboard` value of its metadata ("" if none)."""
        return {
            conv_id: str(meta["metadata"].get("switchboard", ""))
            for conv_id, meta in self._conversation_meta.items()
        }

    def _conversation_object(self, conv_id: str) -> dict[str, Any]:
        return {"object": "conversation", **self._conversation_meta[conv_id]}

    async def _conv_create(self, request: web.Request) -> web.Response:
        body = request[_BODY] or {}
        if not isinstance(body, dict):
            return self._error(request, 400, _BAD_BODY, "invalid_request_error")
        try:
            items = _input_items(body.get("items") or [])
        except ValueError as exc:
            return self._error(request, 400, str(exc), "invalid_request_error", param="items")
        conv_id = _new_id("conv_")
        self.conversations[conv_id] = items
        self._conversation_meta[conv_id] = {
            "id": conv_id,
            "created_at": int(time.time()),
            "metadata": body.get("metadata") or {},
        }
        return self._json(request, self._conversation_object(conv_id))

    async def _conv_get(self, request: web.Request) -> web.Response:
        conv_id = request.match_info["id"]
        if conv_id not in self.conversations:
            return self._conversation_404(request, conv_id)
        return self._json(request, self._conversation_object(conv_id))

    async def _conv_update(self, request: web.Request) -> web.Response:
        conv_id = request.match_info["id"]
        if conv_id not in self.conversations:
            return self._conversation_404(request, conv_id)
        body = request[_BODY]
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            return self._error(
                request,
                400,
                "Missing required parameter: 'metadata'.",
                "invalid_request_error",
                param="metadata",
                code="missing_required_parameter",
            )
        self._conversation_meta[conv_id]["metadata"] = body["metadata"]
        return self._json(request, self._conversation_object(conv_id))

    async def _conv_delete(self, request: web.Request) -> web.Response:
        conv_id = request.match_info["id"]
        if conv_id not in self.conversations:
            return self._conversation_404(request, conv_id)
        del self.conversations[conv_id]
        del self._conversation_meta[conv_id]
        return self._json(
            request, {"id": conv_id, "object": "conversation.deleted", "deleted": True}
        )

    async def _items_list(self, request: web.Request) -> web.Response:
        conv_id = request.match_info["id"]
        if conv_id not in self.conversations:
            return self._conversation_404(request, conv_id)
        items = list(self.conversations[conv_id])
        if request.query.get("order", "desc") == "desc":
            items.reverse()
        after = request.query.get("after")
        if after:
            ids = [item.get("id") for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        try:
            limit = max(1, min(100, int(request.query.get("limit", 20))))
        except ValueError:
            return self._error(
                request, 400, "Invalid 'limit'.", "invalid_request_error", param="limit"
            )
        return self._json(request, _item_list(items[:limit], has_more=len(items) > limit))

    async def _items_create(self, request: web.Request) -> web.Response:
        conv_id = request.match_info["id"]
        if conv_id not in self.conversations:
            return self._conversation_404(request, conv_id)
        body = request[_BODY]
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            return self._error(
                request,
                400,
                "Missing required parameter: 'items'.",
                "invalid_request_error",
                param="items",
                code="missing_required_parameter",
            )
        try:
            items = _input_items(body["items"])
        except ValueError as exc:
            return self._error(request, 400, str(exc), "invalid_request_error", param="items")
        self.conversations[conv_id].extend(items)
        return self._json(request, _item_list(items, has_more=False))

    def _find_item(self, request: web.Request) -> tuple[str, dict[str, Any] | web.Response]:
        conv_id = request.match_info["id"]
        if conv_id not in self.conversations:
            return conv_id, self._conversation_404(request, conv_id)
        item_id = request.match_info["item"]
        for item in self.conversations[conv_id]:
            if item.get("id") == item_id:
                return conv_id, item
        message = f"Item with id '{item_id}' not found."
        return conv_id, self._error(request, 404, message, "invalid_request_error")

    async def _item_get(self, request: web.Request) -> web.Response:
        _, found = self._find_item(request)
        return found if isinstance(found, web.Response) else self._json(request, found)

    async def _item_delete(self, request: web.Request) -> web.Response:
        conv_id, found = self._find_item(request)
        if isinstance(found, web.Response):
            return found
        self.conversations[conv_id].remove(found)
        return self._json(request, self._conversation_object(conv_id))

    # -- Chat Completions ---------------------------------------------------------------------

    async def _chat_create(self, request: web.Request) -> web.StreamResponse:
        body = request[_BODY]
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._error(
                request,
                400,
                "Missing required parameter: 'messages'.",
                "invalid_request_error",
                param="messages",
                code="missing_required_parameter",
            )
        if (error := self._model_error(request, body)) is not None:
            return error
        system: list[str] = []
        chat_items = []
        for message in body["messages"]:
            if not isinstance(message, dict):
                continue
            if message.get("role") in ("system", "developer"):
                system.append(_text_of(message.get("content"))[0])
            else:
                chat_items.append(message)
        messages, images = _messages_of(chat_items)
        if (problem := _chat_tool_problem(chat_items)) is not None:
            return self._error(request, 400, problem, "invalid_request_error", param="messages")
        instructions = "\n\n".join(system) if system else None
        input_tokens = _tokens_of(None, [m for m in body["messages"] if isinstance(m, dict)])
        if self.context_window is not None and input_tokens > self.context_window:
            return await self._context_error(request, body, input_tokens, param="messages")
        if (problem := _json_mode_problem(body, instructions, messages)) is not None:
            return self._error(
                request, 400, problem, "invalid_request_error", param="response_format"
            )
        last_user = max(
            (i for i, m in enumerate(chat_items) if m.get("role") == "user"), default=-1
        )
        outputs = [
            (str(m.get("tool_call_id")), _text_of(m.get("content"))[0])
            for m in chat_items[last_user + 1 :]
            if m.get("role") == "tool"
        ]
        turn = FakeTurn(
            "chat",
            body["model"],
            instructions,
            messages,
            images,
            body,
            None,
            outputs,
            user_text=_last_user_text(chat_items),
            input_tokens=input_tokens,
        )
        await self._sleep(self.latency)
        answer = await self._call_answer(turn)
        if answer.hosted:
            message = "FakeOpenAI: hosted tools do not exist in Chat Completions"
            return self._error(request, 400, message, "invalid_request_error", param="tools")
        fault = request.get(_FAULT)
        words = _words(answer.text, fault)
        text = "".join(words)
        tool_calls = [
            {
                "id": call.call_id or _new_id("call_"),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_text},
            }
            for call in answer.calls
        ]
        finish_reason = "length" if fault == "incomplete" else "stop"
        if tool_calls and fault != "incomplete":
            finish_reason = "tool_calls"
        prompt_chars = sum(len(t) for t in system) + sum(len(t) for _, t in messages)
        usage = _chat_usage(prompt_chars, len(text))
        head = {
            "id": _new_id("chatcmpl-"),
            "created": int(time.time()),
            "model": body["model"],
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }

        if not body.get("stream"):
            if fault == "failed":
                message = "The model had an error while generating your response."
                return self._error(request, 500, message, "server_error", code="server_error")
            payload = {
                "object": "chat.completion",
                **head,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": text or None,
                            "refusal": None,
                            "annotations": [],
                            **({"tool_calls": tool_calls} if tool_calls else {}),
                        },
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
                "usage": usage,
            }
            if fault == "break":
                return await self._broken_json(request, payload)
            return self._json(request, payload)

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        response = await self._open_stream(request)
        chunk_head = {"object": "chat.completion.chunk", **head}

        async def send(choices: list[dict[str, Any]], usage_value: Any = None) -> None:
            chunk = {**chunk_head, "choices": choices}
            if include_usage:
                chunk["usage"] = usage_value
            self._check_event(request, chunk)
            await response.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())

        def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

        try:
            await send(choice({"role": "assistant", "content": "", "refusal": None}))
            first_at = time.monotonic()
            for i, word in enumerate(words):
                if i:
                    await self._sleep(self._delta_wait(i, first_at))
                await send(choice({"content": word}))
                await self._maybe_pause(i + 1)
            if fault == "break":
                return _abort(request, response)
            for index, call in enumerate(tool_calls):
                first = {**call, "index": index, "function": {**call["function"], "arguments": ""}}
                await send(choice({"tool_calls": [first]}))
                args = call["function"]["arguments"]
                for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
                    if piece:
                        delta = {"index": index, "function": {"arguments": piece}}
                        await send(choice({"tool_calls": [delta]}))
            if fault == "failed":
                error = {
                    "message": "The model had an error while generating your response.",
                    "type": "server_error",
                    "param": None,
                    "code": "server_error",
                }
                await response.write(f"data: {json.dumps({'error': error})}\n\n".encode())
            else:
                await send(choice({}, finish_reason))
                if include_usage:
                    await send([], usage)
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    # -- Images and audio ---------------------------------------------------------------------

    @staticmethod
    def make_image(size: str = "1024x1024", color: tuple[int, int, int] = (200, 80, 40)) -> bytes:
        """A small PNG standing for a generated image (sizes are scaled down 16x)."""
        import io

        from PIL import Image

        width, height = (int(v) // 16 for v in (size if "x" in size else "1024x1024").split("x"))
        out = io.BytesIO()
        Image.new("RGB", (width, height), color).save(out, "PNG")
        return out.getvalue()

    def _images_payload(self, body: dict[str, Any], prompt: str, n: int) -> dict[str, Any]:
        import base64

        size = body.get("size") if body.get("size") not in (None, "auto") else "1024x1024"
        revised = self.revise(prompt)
        data = []
        for _ in range(n):
            item: dict[str, Any] = {"b64_json": base64.b64encode(self.make_image(size)).decode()}
            if revised:
                item["revised_prompt"] = revised
            data.append(item)
        text_tokens = _tokens(len(prompt))
        image_in = 0 if "image" not in body else 323 * max(1, len(_files_of(body, "image")))
        payload = {
            "created": int(time.time()),
            "data": data,
            "background": "transparent" if body.get("background") == "transparent" else "opaque",
            "output_format": "png",
            "size": size,
            "quality": body.get("quality") if body.get("quality") in ("low", "high") else "medium",
            "usage": {
                "input_tokens": text_tokens + image_in,
                "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_in},
                "output_tokens": 272 * n,
                "output_tokens_details": {"text_tokens": 0, "image_tokens": 272 * n},
                "total_tokens": text_tokens + image_in + 272 * n,
            },
        }
        return payload

    def _image_request_error(self, request: web.Request, body: Any) -> web.Response | None:
        if not isinstance(body, dict):
            return self._error(request, 400, _BAD_BODY, "invalid_request_error")
        if (error := self._model_error(request, body)) is not None:
            return error
        prompt = body.get("prompt")
        if request.path != "/v1/images/variations" and (not isinstance(prompt, str) or not prompt):
            return self._error(
                request,
                400,
                "Missing required parameter: 'prompt'.",
                "invalid_request_error",
                param="prompt",
                code="missing_required_parameter",
            )
        if isinstance(prompt, str) and self.refuse(prompt):
            message = (
                "Your request was rejected as a result of our safety system. Your request may "
                "contain content that is not allowed by our safety system."
            )
            return self._error(
                request, 400, message, "image_generation_user_error", code="moderation_blocked"
            )
        return None

    async def _images_generate(self, request: web.Request) -> web.Response:
        body = request[_BODY]
        if (error := self._image_request_error(request, body)) is not None:
            return error
        return self._json(
            request, self._images_payload(body, body["prompt"], int(body.get("n", 1)))
        )

    async def _images_edit(self, request: web.Request) -> web.Response:
        return await self._image_from_files(request, needs_prompt=True)

    async def _images_variation(self, request: web.Request) -> web.Response:
        return await self._image_from_files(request, needs_prompt=False)

    async def _image_from_files(self, request: web.Request, *, needs_prompt: bool) -> web.Response:
        import io

        from PIL import Image

        body = request[_BODY]
        if not isinstance(body, dict):
            return self._error(
                request, 400, "Expected multipart/form-data.", "invalid_request_error"
            )
        checked = needs_prompt or "model" in body
        if checked and (error := self._image_request_error(request, body)) is not None:
            return error
        images = _files_of(body, "image")
        if not images:
            return self._error(
                request,
                400,
                "Missing required parameter: 'image'.",
                "invalid_request_error",
                param="image",
                code="missing_required_parameter",
            )
        sizes = []
        for image in images:
            try:
                with Image.open(io.BytesIO(image["data"])) as decoded:
                    decoded.load()
                    fmt, sizes_ = decoded.format, decoded.size
            except Exception:
                fmt, sizes_ = None, None
            if fmt not in ("PNG", "WEBP", "JPEG"):
                message = (
                    f"Invalid file '{image['filename']}': unsupported mimetype "
                    f"('{image['content_type']}'). Supported file formats are 'image/jpeg', "
                    "'image/png', and 'image/webp'."
                )
                return self._error(
                    request,
                    400,
                    message,
                    "invalid_request_error",
                    param="image",
                    code="invalid_image_format",
                )
            sizes.append(sizes_)
        masks = _files_of(body, "mask")
        if masks:
            try:
                with Image.open(io.BytesIO(masks[0]["data"])) as mask:
                    mask.load()
                    ok = (
                        mask.format == "PNG"
                        and mask.mode in ("RGBA", "LA")
                        and mask.size == sizes[0]
                    )
            except Exception:
                ok = False
            if not ok:
                message = "Invalid mask: it must be a PNG with an alpha channel, the same size as the image."
                return self._error(
                    request,
                    400,
                    message,
                    "invalid_request_error",
                    param="mask",
                    code="invalid_mask",
                )
        prompt = str(body.get("prompt") or "")
        return self._json(request, self._images_payload(body, prompt, int(body.get("n", 1))))

    def _audio_file_error(self, request: web.Request, body: Any) -> web.Response | None:
        if not isinstance(body, dict):
            return self._error(
                request, 400, "Expected multipart/form-data.", "invalid_request_error"
            )
        if (error := self._model_error(request, body)) is not None:
            return error
        files = _files_of(body, "file")
        if not files:
            return self._error(
                request,
                400,
                "Missing required parameter: 'file'.",
                "invalid_request_error",
                param="file",
                code="missing_required_parameter",
            )
        file = files[0]
        ext = file["filename"].rsplit(".", 1)[-1].lower() if "." in file["filename"] else ""
        if ext not in _AUDIO_EXTENSIONS:
            message = f"Invalid file format. Supported formats: {sorted(_AUDIO_EXTENSIONS)}"
            return self._error(
                request,
                400,
                message,
                "invalid_request_error",
                param="file",
                code="invalid_value",
            )
        if file["size"] > 25 * 1024 * 1024:
            message = "Maximum content size limit (26214400) exceeded."
            return self._error(request, 413, message, "invalid_request_error", param="file")
        return None

    async def _audio_transcribe(self, request: web.Request) -> web.Response:
        body = request[_BODY]
        if (error := self._audio_file_error(request, body)) is not None:
            return error
        file = _files_of(body, "file")[0]
        text = self.transcript(file["filename"], file["data"])
        payload = {"text": text, "usage": {"type": "duration", "seconds": _seconds(file["data"])}}
        return self._json(request, payload)

    async def _audio_translate(self, request: web.Request) -> web.Response:
        body = request[_BODY]
        if (error := self._audio_file_error(request, body)) is not None:
            return error
        file = _files_of(body, "file")[0]
        return self._json(
            request, {"text": "(English) " + self.transcript(file["filename"], file["data"])}
        )

    async def _audio_speech(self, request: web.Request) -> web.Response:
        body = request[_BODY]
        if not isinstance(body, dict):
            return self._error(request, 400, _BAD_BODY, "invalid_request_error")
        if (error := self._model_error(request, body)) is not None:
            return error
        if not body.get("input") or not body.get("voice"):
            return self._error(
                request,
                400,
                "Missing required parameter: 'input' or 'voice'.",
                "invalid_request_error",
                code="missing_required_parameter",
            )
        mime = {"mp3": "audio/mpeg", "opus": "audio/ogg", "wav": "audio/wav"}.get(
            body.get("response_format", "mp3"), "application/octet-stream"
        )
        return web.Response(body=self.speech_audio, content_type=mime)

    # -- Models -------------------------------------------------------------------------------

    async def _models_list(self, request: web.Request) -> web.Response:
        return self._json(request, {"object": "list", "data": self._live_models()})

    async def _model_get(self, request: web.Request) -> web.Response:
        model_id = request.match_info["id"]
        for model in self._live_models():
            if model.get("id") == model_id:
                return self._json(request, model)
        return self._not_found_model(request, model_id)

    # -- Moderations --------------------------------------------------------------------------

    async def _moderations_create(self, request: web.Request) -> web.Response:
        """Flags any input containing one of `flag_words` (word → category)."""
        body = request[_BODY] if isinstance(request[_BODY], dict) else {}
        raw = body.get("input", "")
        texts = [raw] if isinstance(raw, str) else [t for t in raw if isinstance(t, str)]
        results = []
        for text in texts or [""]:
            hits = {cat for word, cat in self.flag_words.items() if word in text}
            results.append(
                {
                    "flagged": bool(hits),
                    "categories": {c: c in hits for c in _MODERATION_CATEGORIES},
                    "category_scores": {
                        c: 0.99 if c in hits else 0.001 for c in _MODERATION_CATEGORIES
                    },
                    "category_applied_input_types": {c: ["text"] for c in _MODERATION_CATEGORIES},
                }
            )
        payload = {"id": _new_id("modr"), "model": body.get("model", ""), "results": results}
        return self._json(request, payload)


# -- helpers ------------------------------------------------------------------------------------

_MODERATION_CATEGORIES = (
    "hate",
    "hate/threatening",
    "harassment",
    "harassment/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)

_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
    "blank username) if you're accessing the API from your browser and are prompted for a "
    "username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent "
    "was not valid JSON. If you have trouble figuring out how to fix this, please contact us "
    "through our help center at help.openai.com.)"
)
_BAD_BODY = "The request body must be a JSON object."
_FAULT = web.RequestKey("fault", str)
_WORD = re.compile(r"\s*\S+\s*|\s+")


_AUDIO_EXTENSIONS = frozenset({"flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm"})


async def _read_form(request: web.Request) -> dict[str, Any]:
    """A multipart body: plain fields as strings (whole numbers as ints, as the spec types
    them), files as dicts; ``image[]`` is stored as ``image`` (a list when repeated)."""
    from email.parser import BytesParser
    from email.policy import HTTP

    raw = await request.read()
    head = f"Content-Type: {request.headers.get('Content-Type', '')}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + raw)
    form: dict[str, Any] = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        key = part.get_param("name", header="content-disposition") or ""
        name = key[:-2] if key.endswith("[]") else key
        content = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is not None:
            item: Any = {
                "filename": filename,
                "content_type": part.get_content_type(),
                "size": len(content),
                "data": content,
            }
        else:
            value = content.decode()
            item = int(value) if value.isdigit() else value
        if name in form:
            previous = form[name]
            form[name] = (previous if isinstance(previous, list) else [previous]) + [item]
        else:
            form[name] = item
    return form


def _seconds(data: bytes) -> float:
    """The recording's length in seconds (1 when PyAV cannot read it)."""
    import io

    try:
        import av

        with av.open(io.BytesIO(data)) as container:
            return round((container.duration or 0) / av.time_base, 2) or 1.0
    except Exception:
        return 1.0


def _files_of(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = body.get(name)
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, dict) and "data" in v]


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["x-request-id"] = "req_" + secrets.token_hex(16)
    response.headers["openai-version"] = "2020-10-01"


def _plain_json(status: int, payload: Any) -> web.Response:
    """A compatible server's own answer: not checked against OpenAI's spec."""
    return web.Response(
        status=status, body=json.dumps(payload).encode(), content_type="application/json"
    )


def _abort(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Cut the TCP connection mid-body (aiohttp then skips the chunked terminator)."""
    if request.transport is not None:
        request.transport.abort()
    return response


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(24)


def _tokens(chars: int) -> int:
    return math.ceil(chars / 4)


def _words(text: str, fault: str | None = None) -> list[str]:
    """One chunk per word, whitespace kept: ``"".join(_words(t)) == t``; cut short for the
    faults that end a stream early (half for "incomplete", a few for "failed"/"break")."""
    words = _WORD.findall(text)
    if fault == "incomplete":
        return words[: max(1, len(words) // 2)]
    if fault in ("failed", "break"):
        return words[:_PARTIAL_DELTAS]
    return words


def _text_of(content: Any) -> tuple[str, list[str]]:
    """(text, images) of a message ``content``: a string or a list of parts."""
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[str] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "input_image":
            url = part.get("image_url") or part.get("file_id")
            if url:
                images.append(url)
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if url:
                images.append(url)
    return "\n".join(texts), images


def _messages_of(items: list[dict[str, Any]]) -> tuple[list[tuple[str, str]], list[str]]:
    messages: list[tuple[str, str]] = []
    images: list[str] = []
    for item in items:
        if item.get("type", "message") != "message" or "role" not in item:
            continue
        text, item_images = _text_of(item.get("content"))
        if text or item_images or item["role"] != "assistant":
            messages.append((item["role"], text))
        images += item_images
    return messages, images


_IMAGE_TOKENS = 256
_MESSAGE_TOKENS = 4


def _item_text(item: dict[str, Any]) -> str:
    kind = item.get("type", "message")
    if kind == "message" or "role" in item:
        return _text_of(item.get("content"))[0]
    if kind == "function_call":
        return f"{item.get('name', '')}{item.get('arguments', '')}"
    if kind == "function_call_output":
        return str(item.get("output", ""))
    if kind == "compaction":
        return str(item.get("encrypted_content", ""))[:200]
    return ""


def _item_tokens(item: dict[str, Any]) -> int:
    """Estimated tokens of one item or chat message: ceil(chars / 4) of its text, 4 per message
    and 256 per image (the fake's rule; no tokenizer)."""
    images = _text_of(item.get("content"))[1] if "content" in item else []
    return _tokens(len(_item_text(item))) + _MESSAGE_TOKENS + _IMAGE_TOKENS * len(images)


def _tokens_of(instructions: Any, items: list[dict[str, Any]]) -> int:
    extra = _tokens(len(instructions)) + _MESSAGE_TOKENS if isinstance(instructions, str) else 0
    return extra + sum(_item_tokens(item) for item in items)


def _compact_threshold(body: dict[str, Any]) -> int | None:
    for entry in body.get("context_management") or []:
        if isinstance(entry, dict) and entry.get("type") == "compaction":
            value = entry.get("compact_threshold")
            return value if isinstance(value, int) else 200_000
    return None


def _from_last_compaction(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a model is given of a stored history: from its last compaction item on."""
    for index in range(len(items) - 1, -1, -1):
        if items[index].get("type") == "compaction":
            return items[index:]
    return items


def _last_user_text(items: list[dict[str, Any]]) -> str:
    for item in reversed(items):
        if item.get("type", "message") == "message" and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            texts = [
                p["text"]
                for p in content or []
                if isinstance(p, dict)
                and p.get("type") in ("input_text", "text")
                and isinstance(p.get("text"), str)
            ]
            return texts[-1] if texts else ""
    return ""


def _input_items(value: Any) -> list[dict[str, Any]]:
    """Request ``input``/``items`` -> items as a conversation stores them (with ids)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise ValueError("Invalid type for 'input': expected a string or an array of items.")
    items = []
    for raw in value:
        if not isinstance(raw, dict):
            raise ValueError("Invalid input item: expected an object.")
        kind = raw.get("type", "message")
        if kind == "item_reference":
            continue
        if kind == "message":
            role = raw.get("role", "user")
            content = raw.get("content", "")
            if isinstance(content, str):
                if role == "assistant":
                    content = [_output_text(content)]
                else:
                    content = [{"type": "input_text", "text": content}]
            else:
                content = [_stored_part(p) for p in content if isinstance(p, dict)]
            items.append(
                {
                    "type": "message",
                    "id": raw.get("id") or _new_id("msg_"),
                    "status": "completed",
                    "role": role,
                    "content": content,
                }
            )
        else:
            prefix = {"function_call_output": "fco_", "function_call": "fc_"}.get(kind, "item_")
            stored = {"id": _new_id(prefix), "status": "completed", **raw}
            items.append(stored)
    return items


def _tool_output_problem(
    history: list[dict[str, Any]], new_items: list[dict[str, Any]]
) -> str | None:
    """The API's refusal when tool outputs do not match the pending function calls: every
    output must answer a call, and every call must be answered before the model goes on."""
    calls = [i.get("call_id") for i in [*history, *new_items] if i.get("type") == "function_call"]
    answered = {i.get("call_id") for i in history if i.get("type") == "function_call_output"}
    for item in new_items:
        if item.get("type") != "function_call_output":
            continue
        if not isinstance(item.get("call_id"), str) or item["call_id"] not in calls:
            return (
                f"No tool call found for function call output with call_id {item.get('call_id')}."
            )
        answered.add(item["call_id"])
    for call_id in calls:
        if call_id not in answered:
            return f"No tool output found for function call {call_id}."
    return None


def _chat_tool_problem(items: list[dict[str, Any]]) -> str | None:
    """An assistant message with ``tool_calls`` must be followed by one ``tool`` message per
    call id (the real API's 400 otherwise), and a ``tool`` message must answer such a call."""
    pending: list[str] = []
    for message in items:
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'."
                )
            pending.remove(call_id)
            continue
        if pending:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(pending)}"
            )
        if role == "assistant":
            pending = [c.get("id") for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    return None


def _json_mode_problem(
    body: dict[str, Any], instructions: Any, messages: list[tuple[str, str]]
) -> str | None:
    """json_object mode needs the word "json" somewhere in the prompt (as the real API says)."""
    if body.get("messages") is not None:  # chat
        kind = (body.get("response_format") or {}).get("type")
        where = "'messages' must contain the word 'json' in some form, to use 'response_format'"
    else:
        kind = ((body.get("text") or {}).get("format") or {}).get("type")
        where = (
            "Response input messages must contain the word 'json' in some form to use 'text.format'"
        )
    if kind != "json_object":
        return None
    prompt = " ".join([str(instructions or ""), *(text for _, text in messages)])
    return None if "json" in prompt.lower() else f"{where} of type 'json_object'."


def _stored_part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "output_text":
        return _output_text(part.get("text", ""))
    if kind == "input_image":
        return {
            "type": "input_image",
            "image_url": part.get("image_url"),
            "file_id": part.get("file_id"),
            "detail": part.get("detail") or "auto",
        }
    return dict(part)


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _output_message(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [_output_text(text)] if status != "in_progress" else []
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _response_object(
    response_id: str, body: dict[str, Any], conv_id: str | None, instructions: Any, *, status: str
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "background": bool(body.get("background", False)),
        "completed_at": None,
        "conversation": {"id": conv_id} if conv_id else None,
        "error": None,
        "incomplete_details": None,
        "instructions": instructions,
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "metadata": body.get("metadata") or {},
        "model": body["model"],
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
    }  # "usage" is added when known: the spec does not allow null


def _response_usage(input_chars: int, output_chars: int) -> dict[str, Any]:
    input_tokens, output_tokens = _tokens(input_chars), _tokens(output_chars)
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _chat_usage(prompt_chars: int, completion_chars: int) -> dict[str, Any]:
    prompt, completion = _tokens(prompt_chars), _tokens(completion_chars)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _item_list(items: list[dict[str, Any]], *, has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else "",
        "last_id": items[-1]["id"] if items else "",
        "has_more": has_more,
    }
