"""The Realtime API on the loopback OpenAI fake (`testing.fakes.openai_fake.FakeOpenAI`), for
text to speech: ``GET /v1/realtime?model=…`` upgraded to a WebSocket, bearer auth checked by
the fake's middleware (401 on the upgrade without a key, like every route; a `fail_next` with
``endpoint="realtime"`` answers the upgrade with that HTTP error instead).

Modelled (the GA event protocol):

* ``session.created`` first (the session's defaults: voice ``alloy``, ``audio/pcm`` 24 kHz);
  ``session.update`` merges ``output_modalities``, ``instructions`` and ``audio.output``
  (format, voice) and answers ``session.updated``. A voice that is not a Realtime voice
  (`REALTIME_VOICES`) or a format other than ``audio/pcm`` at 24 kHz gets an ``error`` event
  (``invalid_request_error``, ``invalid_value``) and leaves the session unchanged.
* ``response.create``: the text to say is the ``input_text`` of its ``input`` items (out of
  band, ``conversation: "none"``; other conversations are answered the same way). Events:
  ``response.created``, ``response.output_item.added``, ``response.content_part.added``,
  ``response.output_audio.delta`` (base64 PCM16 mono 24 kHz, ``delta_ms`` of audio each)
  interleaved with ``response.output_audio_transcript.delta`` (a word at a time),
  ``response.output_audio.done``, ``response.output_audio_transcript.done``,
  ``response.content_part.done``, ``response.output_item.done``, ``response.done`` with
  ``usage``. The audio is a 400 Hz tone lasting ``ms_per_char`` ms per character of the text,
  so a decoded file's duration follows the text. The transcript is ``reword(text)`` (the text
  itself unless a test makes the "model" reword it). Usage: text tokens in = ceil(characters
  of instructions + text / 4); audio tokens out = 20 per second of audio (our assumption; the
  real rate is not documented here); text tokens out = ceil(transcript characters / 4).
* The model must be served (in `FakeOpenAI.models` and not shut down at `FakeOpenAI.today`),
  else ``session.created`` is followed by an ``error`` event (``invalid_request_error``,
  ``model_not_found``) and the socket is closed (code 1008). How the real API refuses an
  unknown model is not documented in our sources; this is our reading.
* Checks: every client event is validated with the SDK's own pydantic types
  (``openai.types.realtime.RealtimeClientEvent``), fields those types do not know included,
  and against the OpenAPI spec's ``RealtimeClientEvent``; every event the fake sends is checked
  against the spec's ``RealtimeServerEvent`` and the SDK's ``RealtimeServerEvent`` types.
  Problems go to `FakeOpenAI.spec_problems`.

Knobs (`FakeRealtime`): `drop_next` (the next connections are aborted at the TCP level, no
close frame, after a number of audio deltas), `error_next` (the next ``response.create`` gets
an ``error`` event instead of an answer; the socket stays open, as the real API does),
`delay` (seconds before each response's first event), `speed` (seconds of audio streamed per
second, on a fixed schedule; 0, the default, sends as fast as the socket takes it),
`ms_per_char`, `delta_ms`, `reword`.
Records: `connections` (model, client events, the voice, the texts said).

NOT modelled: audio input (``input_audio_buffer.*``), turn detection / VAD, conversation
state and ``conversation.item.*`` events (responses never join a conversation), text output,
function calls, tools, MCP, reasoning, ``response.cancel`` (accepted, nothing to cancel),
``max_output_tokens``, ``rate_limits.updated``, transcription and translation sessions,
WebRTC and SIP, the session's time limit, rate limits, real voices (every voice is the same
tone), real tokenisation, a model that rewords on its own.
"""

from __future__ import annotations

import array
import asyncio
import base64
import dataclasses
import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web
from pydantic import BaseModel, TypeAdapter, ValidationError

if TYPE_CHECKING:
    from .openai_fake import FakeOpenAI

REALTIME_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)
RATE = 24_000
TONE_HZ = 400
AUDIO_TOKENS_PER_SECOND = 20
_PCM = {"type": "audio/pcm", "rate": RATE}


@dataclass
class RealtimeConnection:
    """One WebSocket as the fake saw it."""

    model: str
    client_events: list[dict[str, Any]] = field(default_factory=list)
    voice: str = "alloy"
    texts: list[str] = field(default_factory=list)  # what each response was asked to say
    dropped: bool = False


@dataclass
class _Drop:
    after_deltas: int
    times: int


@dataclass
class _Error:
    type: str
    code: str | None
    message: str
    times: int


class FakeRealtime:
    """Mounted on a `FakeOpenAI` as ``fake.realtime`` (see the module docstring)."""

    def __init__(self, owner: FakeOpenAI) -> None:
        self._owner = owner
        self.ms_per_char = 60.0
        self.delta_ms = 200.0
        self.delay = 0.0
        self.speed = 0.0
        self.reword: Callable[[str], str] = lambda text: text
        self.connections: list[RealtimeConnection] = []
        self._drops: list[_Drop] = []
        self._errors: list[_Error] = []
        self._client_types: TypeAdapter[Any] | None = None
        self._server_types: TypeAdapter[Any] | None = None

    # -- knobs --------------------------------------------------------------------------------

    def drop_next(self, after_deltas: int = 1, times: int = 1) -> None:
        """Abort the next `times` connections (no close frame) once `after_deltas` audio deltas
        were sent on each (0: right after the first ``response.create``)."""
        self._drops.append(_Drop(after_deltas, times))

    def error_next(
        self,
        code: str | None = "server_error",
        type_: str = "server_error",
        message: str = "The server had an error while processing your request.",
        times: int = 1,
    ) -> None:
        """Answer the next `times` ``response.create`` events with an ``error`` event."""
        self._errors.append(_Error(type_, code, message, times))

    # -- the endpoint -------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        model = request.query.get("model", "")
        ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        connection = RealtimeConnection(model)
        self.connections.append(connection)
        drop = _take(self._drops)
        session: dict[str, Any] = {
            "type": "realtime",
            "object": "realtime.session",
            "id": _new_id("sess"),
            "model": model,
            "output_modalities": ["audio"],
            "instructions": "",
            "audio": {"output": {"format": dict(_PCM), "voice": "alloy", "speed": 1.0}},
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
        }
        await self._send(ws, {"type": "session.created", "session": session})
        if not self._owner.served(model):
            await self._error(
                ws,
                "invalid_request_error",
                "model_not_found",
                f"The model `{model}` does not exist or you do not have access to it.",
                param="model",
            )
            await ws.close(code=1008)
            return ws
        sent = _Counter()
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                self._problem(f"realtime: a {message.type.name} frame (events are JSON text)")
                continue
            try:
                event = json.loads(message.data)
            except ValueError:
                await self._error(ws, "invalid_request_error", "invalid_json", "Invalid JSON.")
                continue
            connection.client_events.append(event)
            self._check_client(event)
            kind = event.get("type") if isinstance(event, dict) else None
            if kind == "session.update":
                await self._session_update(ws, session, event, connection)
            elif kind == "response.create":
                error = _take(self._errors)
                if error is not None:
                    await self._error(ws, error.type, error.code, error.message)
                    continue
                dropped = await self._respond(ws, request, event, session, connection, sent, drop)
                if dropped:
                    return ws
            elif kind == "response.cancel":
                continue
            else:
                await self._error(
                    ws,
                    "invalid_request_error",
                    "unsupported_event",
                    f"FakeRealtime does not model {kind!r} events.",
                )
        return ws

    async def _session_update(
        self,
        ws: web.WebSocketResponse,
        session: dict[str, Any],
        event: dict[str, Any],
        connection: RealtimeConnection,
    ) -> None:
        update = event.get("session") or {}
        output = ((update.get("audio") or {}).get("output")) or {}
        voice = output.get("voice")
        if voice is not None and voice not in REALTIME_VOICES:
            await self._error(
                ws,
                "invalid_request_error",
                "invalid_value",
                f"Invalid value: '{voice}'. Supported values are: "
                + ", ".join(f"'{v}'" for v in REALTIME_VOICES)
                + ".",
                param="session.audio.output.voice",
            )
            return
        fmt = output.get("format")
        if fmt is not None and (fmt.get("type") != "audio/pcm" or fmt.get("rate", RATE) != RATE):
            await self._error(
                ws,
                "invalid_request_error",
                "invalid_value",
                "FakeRealtime speaks audio/pcm at 24000 Hz only.",
                param="session.audio.output.format",
            )
            return
        for key in ("output_modalities", "instructions"):
            if key in update:
                session[key] = update[key]
        session["audio"]["output"].update(output)
        connection.voice = session["audio"]["output"]["voice"]
        await self._send(ws, {"type": "session.updated", "session": session})

    async def _respond(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        event: dict[str, Any],
        session: dict[str, Any],
        connection: RealtimeConnection,
        sent: _Counter,
        drop: _Drop | None,
    ) -> bool:
        """Say the response's text; True when the connection was dropped on purpose."""
        params = event.get("response") or {}
        text = _input_text(params.get("input") or [])
        instructions = str(params.get("instructions") or session.get("instructions") or "")
        connection.texts.append(text)
        voice = connection.voice
        response_id, item_id = _new_id("resp"), _new_id("item")
        response: dict[str, Any] = {
            "id": response_id,
            "object": "realtime.response",
            "status": "in_progress",
            "output": [],
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": {"output": {"format": dict(_PCM), "voice": voice}},
            "metadata": params.get("metadata"),
        }
        if self.delay:
            await self._owner._sleep(self.delay)
        await self._send(ws, {"type": "response.created", "response": dict(response)})
        if drop is not None and drop.after_deltas == 0:
            return self._drop(request, connection)
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        where = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        await self._send(
            ws,
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            },
        )
        await self._send(
            ws,
            {
                "type": "response.content_part.added",
                **where,
                "content_index": 0,
                "part": {"type": "audio", "transcript": ""},
            },
        )
        transcript = self.reword(text)
        words = transcript.split(" ")
        pcm = tone(len(text) * self.ms_per_char / 1000)
        step = max(2, int(RATE * self.delta_ms / 1000) * 2)
        pieces = [pcm[i : i + step] for i in range(0, len(pcm), step)] or [b""]
        said = 0
        started = asyncio.get_running_loop().time()
        for index, piece in enumerate(pieces):
            if self.speed and index:
                due = started + index * self.delta_ms / 1000 / self.speed
                await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))
            delta = base64.b64encode(piece).decode()
            await self._send(
                ws,
                {
                    "type": "response.output_audio.delta",
                    **where,
                    "content_index": 0,
                    "delta": delta,
                },
            )
            sent.value += 1
            if drop is not None and sent.value >= drop.after_deltas:
                return self._drop(request, connection)
            upto = math.ceil((index + 1) * len(words) / len(pieces))
            for number in range(said, upto):
                word = words[number] + (" " if number < len(words) - 1 else "")
                await self._send(
                    ws,
                    {
                        "type": "response.output_audio_transcript.delta",
                        **where,
                        "content_index": 0,
                        "delta": word,
                    },
                )
            said = max(said, upto)
            await asyncio.sleep(0)
        await self._send(ws, {"type": "response.output_audio.done", **where, "content_index": 0})
        await self._send(
            ws,
            {
                "type": "response.output_audio_transcript.done",
                **where,
                "content_index": 0,
                "transcript": transcript,
            },
        )
        part = {"type": "audio", "transcript": transcript}
        await self._send(
            ws, {"type": "response.content_part.done", **where, "content_index": 0, "part": part}
        )
        done_item = {
            **item,
            "status": "completed",
            "content": [{"type": "output_audio", "transcript": transcript}],
        }
        await self._send(
            ws,
            {
                "type": "response.output_item.done",
                "response_id": response_id,
                "output_index": 0,
                "item": done_item,
            },
        )
        seconds = len(pcm) / (2 * RATE)
        text_in = math.ceil((len(instructions) + len(text)) / 4)
        audio_out = math.ceil(seconds * AUDIO_TOKENS_PER_SECOND)
        text_out = math.ceil(len(transcript) / 4)
        response.update(
            status="completed",
            output=[done_item],
            usage={
                "total_tokens": text_in + audio_out + text_out,
                "input_tokens": text_in,
                "output_tokens": audio_out + text_out,
                "input_token_details": {
                    "cached_tokens": 0,
                    "text_tokens": text_in,
                    "audio_tokens": 0,
                    "image_tokens": 0,
                    "cached_tokens_details": {
                        "text_tokens": 0,
                        "audio_tokens": 0,
                        "image_tokens": 0,
                    },
                },
                "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
            },
        )
        await self._send(ws, {"type": "response.done", "response": response})
        return False

    def _drop(self, request: web.Request, connection: RealtimeConnection) -> bool:
        connection.dropped = True
        if request.transport is not None:
            request.transport.abort()
        return True

    # -- sending and checking -----------------------------------------------------------------

    async def _send(self, ws: web.WebSocketResponse, event: dict[str, Any]) -> None:
        event = {"event_id": _new_id("event"), **event}
        self._check_server(event)
        await ws.send_str(json.dumps(event))

    async def _error(
        self,
        ws: web.WebSocketResponse,
        type_: str,
        code: str | None,
        message: str,
        *,
        param: str | None = None,
    ) -> None:
        error = {"type": type_, "code": code, "message": message, "param": param}
        await self._send(ws, {"type": "error", "error": error})

    def _check_client(self, event: Any) -> None:
        from openai.types.realtime import RealtimeClientEvent

        if self._client_types is None:
            self._client_types = TypeAdapter(RealtimeClientEvent)
        kind = event.get("type") if isinstance(event, dict) else None
        label = f"realtime client event {kind!r}"
        try:
            model = self._client_types.validate_python(event)
        except ValidationError as exc:
            for error in exc.errors()[:5]:
                where = ".".join(str(part) for part in error["loc"])
                self._problem(f"{label}: SDK types: {where}: {error['msg']}")
        else:
            for extra in _unknown_fields(model, "$"):
                self._problem(f"{label}: SDK types: {extra} is not a field of the event")
        spec = self._owner._spec
        if spec is not None:
            for problem in spec.check_component("RealtimeClientEvent", event, label=label):
                self._problem(problem)

    def _check_server(self, event: dict[str, Any]) -> None:
        from openai.types.realtime import RealtimeServerEvent

        if self._server_types is None:
            self._server_types = TypeAdapter(RealtimeServerEvent)
        label = f"realtime server event {event['type']!r} (a FakeRealtime bug)"
        try:
            self._server_types.validate_python(event)
        except ValidationError as exc:
            self._problem(f"{label}: SDK types: {exc.errors()[0]['msg']}")
        spec = self._owner._spec
        if spec is not None:
            for problem in spec.check_component("RealtimeServerEvent", event, label=label):
                self._problem(problem)

    def _problem(self, text: str) -> None:
        self._owner.spec_problems.append(text)


@dataclass
class _Counter:
    value: int = 0


def tone(seconds: float, frequency: int = TONE_HZ, rate: int = RATE) -> bytes:
    """`seconds` of a sine tone as PCM16 mono at `rate` (built from one period, so long texts
    cost little)."""
    period = rate // frequency
    one = array.array(
        "h", (int(0.3 * 32767 * math.sin(2 * math.pi * i / period)) for i in range(period))
    ).tobytes()
    samples = int(seconds * rate)
    return (one * (samples // period + 1))[: samples * 2]


def _input_text(items: list[Any]) -> str:
    texts = []
    for item in items:
        if not isinstance(item, dict):
            continue
        for part in item.get("content") or []:
            if isinstance(part, dict) and part.get("type") == "input_text":
                texts.append(str(part.get("text") or ""))
    return "\n".join(texts)


def _unknown_fields(value: Any, path: str) -> list[str]:
    """Keys a validated SDK model kept as extras (the SDK's models accept unknown keys)."""
    found: list[str] = []
    if isinstance(value, BaseModel):
        extra = value.__pydantic_extra__ or {}
        found.extend(f"{path}.{key}" for key in extra)
        for name in type(value).model_fields:
            found.extend(_unknown_fields(getattr(value, name, None), f"{path}.{name}"))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.extend(_unknown_fields(item, f"{path}[{index}]"))
    elif isinstance(value, dict):
        for key, item in value.items():
            found.extend(_unknown_fields(item, f"{path}.{key}"))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            found.extend(_unknown_fields(getattr(value, item.name), f"{path}.{item.name}"))
    return found


def _take(queue: list[Any]) -> Any:
    if not queue:
        return None
    first = queue[0]
    first.times -= 1
    if first.times <= 0:
        queue.pop(0)
    return first


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"
