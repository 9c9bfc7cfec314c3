"""Text to speech over the Realtime API, for the `gpt-realtime*` models that replace
`/audio/speech` (shut down 2027-01-06). A `SpeechEngine` (`bot.backends.speech`).

One WebSocket per text (`client.realtime.connect(model=…)`, so `OPENAI_BASE_URL` decides where):
`session.update` (audio out: `audio/pcm` at 24 kHz, the voice), then for each chunk of the text
(whole sentences, at most `CHUNK_CHARS`) one out-of-band `response.create`
(`conversation: "none"`, the chunk as its only input, instructions to read it word for word,
audio only) whose `response.output_audio.delta`s are collected until `response.done` (with
its usage). The chunks' PCM is joined with a short pause and encoded with PyAV
(`bot.files.speech_encoding`) while it arrives, in a worker thread, so the file is ready
almost as soon as the last sound is.

The model is a voice model, not a reader: it may reword. Each chunk's audio transcript is
compared with the chunk and a difference is logged (how similar; never the text itself).

Faults (an `error` event, a socket that drops, a refused handshake, no event for the client's
timeout) become the SDK's exceptions (`bot.backends.realtime_errors`) inside `RetryPolicy.call`,
so they are retried, counted by the circuit breaker and explained like any OpenAI failure. A
retry opens a new connection and resumes at the first chunk not yet spoken: chunks already
spoken are kept (and not paid twice).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import difflib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from bot.backends import realtime_errors
from bot.backends.retry import RetryPolicy
from bot.backends.speech import FORMATS, Speech, check_format, check_text, check_voice
from bot.core.types import Usage
from bot.files.speech_encoding import SAMPLE_RATE, StreamEncoder, silence

log = logging.getLogger(__name__)

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
CHUNK_CHARS = 300
PAUSE_SECONDS = 0.15  # between two chunks
DEFAULT_TIMEOUT = 60.0  # seconds without an event, when the client has no plain timeout
READ_ALOUD = (
    "You are a text-to-speech voice. Read the user's text aloud exactly as written, word for "
    "word, in its own language, in a natural, clear voice. Do not answer it, comment on it, "
    "translate it, or add or leave out anything."
)
_SENTENCE_END = re.compile(r"(?<=[.!?…;:。！？])\s+|\n+")
_WORD = re.compile(r"\w+", re.UNICODE)


def split_for_speech(text: str, limit: int = CHUNK_CHARS) -> list[str]:
    """Whole sentences, packed into chunks of at most `limit` characters; a longer sentence is
    cut at the last space (or comma) before the limit."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentence = " ".join(sentence.split())
        while len(sentence) > limit:
            cut = max(sentence.rfind(", ", 0, limit), sentence.rfind(" ", 0, limit))
            cut = cut + 1 if cut > 0 else limit
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + 1 + len(piece) <= limit:
            chunks[-1] = f"{chunks[-1]} {piece}"
        else:
            chunks.append(piece)
    return chunks


def similarity(text: str, transcript: str) -> float:
    """How alike two texts are as sequences of words (case and punctuation ignored), 0..1."""
    words = _WORD.findall(text.lower())
    heard = _WORD.findall(transcript.lower())
    if words == heard:
        return 1.0
    return difflib.SequenceMatcher(None, words, heard, autojunk=False).ratio()


@dataclass(slots=True)
class _Spoken:
    """What has been said so far; kept across retries, so a retry resumes where it stopped."""

    chunks: list[str]
    pcm: list[bytes] = field(default_factory=list)
    transcripts: list[str] = field(default_factory=list)
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0

    @property
    def done(self) -> bool:
        return len(self.pcm) == len(self.chunks)

    def add(self, pcm: bytes, transcript: str, usage: Any) -> None:
        self.pcm.append(pcm)
        self.transcripts.append(transcript)
        if usage is None:
            return
        self.input_tokens += getattr(usage, "input_tokens", 0) or 0
        self.output_tokens += getattr(usage, "output_tokens", 0) or 0
        details_in = getattr(usage, "input_token_details", None)
        details_out = getattr(usage, "output_token_details", None)
        cached = getattr(details_in, "cached_tokens", 0) or 0
        cached_audio = getattr(
            getattr(details_in, "cached_tokens_details", None), "audio_tokens", 0
        )
        self.cached_tokens += cached
        audio_in = (getattr(details_in, "audio_tokens", 0) or 0) - (cached_audio or 0)
        self.audio_input_tokens += max(0, audio_in)
        self.audio_output_tokens += getattr(details_out, "audio_tokens", 0) or 0

    def usage(self, model: str, characters: int) -> Usage:
        return Usage(
            model=model,
            input_tokens=self.input_tokens,
            cached_tokens=self.cached_tokens,
            output_tokens=self.output_tokens,
            audio_input_tokens=self.audio_input_tokens,
            audio_output_tokens=self.audio_output_tokens,
            characters=characters,
        )


class RealtimeSpeechEngine:
    voices = REALTIME_VOICES

    def __init__(
        self,
        client: AsyncOpenAI,
        model: str,
        retry: RetryPolicy,
        *,
        timeout: float | None = None,
    ) -> None:
        self._client = client
        self.model = model
        self._retry = retry
        self._timeout = timeout or _plain_timeout(client.timeout)

    async def synthesize(self, text: str, *, voice: str, fmt: str) -> Speech:
        text = check_text(text)
        voice, fmt = check_voice(voice, self.voices, self.model), check_format(fmt)
        spoken = _Spoken(split_for_speech(text))
        encoding: _Encoding | None = None

        async def attempt() -> None:
            nonlocal encoding
            if encoding is not None:  # a retry: start again from what was fully spoken
                await encoding.abandon()
            encoding = _Encoding(fmt)
            for index, pcm in enumerate(spoken.pcm):
                if index:
                    encoding.pause()
                encoding.feed(pcm)
            await self._speak(spoken, voice, encoding)

        try:
            await self._retry.call(attempt)
            assert encoding is not None
            data = await encoding.finish()
        except BaseException:
            if encoding is not None:
                await encoding.abandon()
            raise
        self._compare(spoken)
        usage = spoken.usage(self.model, len(text))
        return Speech(data, FORMATS[fmt], fmt, self.model, len(text), usage=usage)

    @property
    def _request(self) -> httpx2.Request:
        """Stands for the WebSocket in the SDK exceptions (no credentials in it)."""
        return httpx2.Request("GET", str(self._client.base_url).rstrip("/") + "/realtime")

    async def _speak(self, spoken: _Spoken, voice: str, encoding: _Encoding) -> None:
        request = self._request
        try:
            async with self._client.realtime.connect(model=self.model) as connection:
                session = {
                    "type": "realtime",
                    "output_modalities": ["audio"],
                    "audio": {
                        "output": {
                            "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
                            "voice": voice,
                        }
                    },
                }
                await self._send(connection, request, connection.session.update(session=session))
                while not spoken.done:
                    chunk = spoken.chunks[len(spoken.pcm)]
                    create = connection.response.create(response=_read_aloud(chunk))
                    await self._send(connection, request, create)
                    if spoken.pcm:
                        encoding.pause()
                    pcm, transcript, usage = await self._collect(connection, request, encoding.feed)
                    spoken.add(pcm, transcript, usage)
        except TimeoutError as exc:
            raise realtime_errors.timeout_error(request) from exc
        except (ConnectionClosed, OSError) as exc:
            log.info("Realtime connection lost: %s", type(exc).__name__)
            raise realtime_errors.connection_error(request) from exc
        except InvalidStatus as exc:
            raise realtime_errors.handshake_error(exc, request) from exc
        except InvalidHandshake as exc:
            raise realtime_errors.connection_error(request) from exc

    async def _send(
        self, connection: Any, request: httpx2.Request, sending: Awaitable[None]
    ) -> None:
        """Send an event; when the server has closed the socket, its last word (an `error`
        event, e.g. an unknown model) is the failure to report, if it sent one."""
        try:
            await sending
        except ConnectionClosed:
            while True:
                try:
                    event = await asyncio.wait_for(connection.recv(), 1.0)
                except (ConnectionClosed, TimeoutError):
                    break
                if getattr(event, "type", None) == "error":
                    raise realtime_errors.event_error(_as_dict(event.error), request) from None
            raise

    async def _collect(
        self, connection: Any, request: httpx2.Request, on_audio: Callable[[bytes], None]
    ) -> tuple[bytes, str, Any]:
        """One response's audio (also handed to `on_audio` as it comes), transcript and
        usage."""
        audio = bytearray()
        transcript: list[str] = []
        final: str | None = None
        while True:
            try:
                event = await asyncio.wait_for(connection.recv(), self._timeout)
            except TimeoutError:
                raise realtime_errors.timeout_error(request) from None
            kind = getattr(event, "type", None)
            if kind == "error":
                raise realtime_errors.event_error(_as_dict(event.error), request)
            if kind == "response.output_audio.delta":
                try:
                    piece = base64.b64decode(event.delta, validate=True)
                except (binascii.Error, ValueError):
                    raise openai.APIError("undecodable audio delta", request, body=None) from None
                on_audio(piece)
                audio += piece
            elif kind == "response.output_audio_transcript.delta":
                transcript.append(event.delta or "")
            elif kind == "response.output_audio_transcript.done":
                final = event.transcript or ""
            elif kind == "response.done":
                _check_done(event.response, request)
                if not audio:
                    raise openai.APIError("the response had no audio", request, body=None)
                text = final if final is not None else "".join(transcript)
                return bytes(audio), text, getattr(event.response, "usage", None)

    def _compare(self, spoken: _Spoken) -> None:
        for index, (chunk, heard) in enumerate(zip(spoken.chunks, spoken.transcripts, strict=True)):
            ratio = similarity(chunk, heard)
            if ratio < 1.0:
                log.warning(
                    "speech %s: the spoken words of part %d of %d differ from the text "
                    "(%.0f%% alike, %d words written, %d heard)",
                    self.model,
                    index + 1,
                    len(spoken.chunks),
                    ratio * 100,
                    len(_WORD.findall(chunk)),
                    len(_WORD.findall(heard)),
                )


class _Encoding:
    """A `StreamEncoder` fed in a worker thread, in order, while the event loop goes on
    receiving: the pieces that arrive while it works are joined into its next `feed`."""

    def __init__(self, fmt: str) -> None:
        self._encoder = StreamEncoder(fmt)
        self._pending: list[bytes] = []
        self._ready = asyncio.Event()
        self._closed = False
        self._task = asyncio.create_task(self._work())

    def feed(self, pcm: bytes) -> None:
        self._pending.append(pcm)
        self._ready.set()

    def pause(self) -> None:
        """The silence between two chunks."""
        self.feed(silence(PAUSE_SECONDS))

    async def finish(self) -> bytes:
        self._closed = True
        self._ready.set()
        await self._task
        return await asyncio.to_thread(self._encoder.finish)

    async def abandon(self) -> None:
        """Drop what is not encoded yet; the feed in progress ends before the encoder closes
        (a worker thread cannot be interrupted)."""
        self._pending.clear()
        self._closed = True
        self._ready.set()
        await asyncio.wait([self._task])
        await asyncio.to_thread(self._encoder.close)

    async def _work(self) -> None:
        while True:
            if not self._pending:
                if self._closed:
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            pieces, self._pending = self._pending, []
            await asyncio.to_thread(self._encoder.feed, b"".join(pieces))


def _read_aloud(chunk: str) -> dict[str, Any]:
    return {
        "conversation": "none",
        "output_modalities": ["audio"],
        "instructions": READ_ALOUD,
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": chunk}]}
        ],
    }


def _check_done(response: Any, request: httpx2.Request) -> None:
    """Raise for a response that did not complete."""
    status = getattr(response, "status", "completed")
    if status == "completed":
        return
    details = getattr(response, "status_details", None)
    reason = getattr(details, "reason", None)
    error = getattr(details, "error", None)
    if status == "failed" and error is not None:
        body = _as_dict(error)
        body.setdefault("message", f"the speech response failed ({body.get('code') or 'error'})")
        raise realtime_errors.event_error(body, request)
    if reason == "content_filter":
        raise realtime_errors.status_error(
            400,
            {
                "message": "The speech was stopped by the safety system.",
                "type": "invalid_request_error",
                "code": "content_policy_violation",
            },
            request,
        )
    raise openai.APIError(f"the speech response ended {status} ({reason})", request, body=None)


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    dump = getattr(value, "model_dump", None)
    return dict(dump()) if callable(dump) else {}


def _plain_timeout(timeout: Any) -> float:
    if isinstance(timeout, int | float) and timeout > 0:
        return float(timeout)
    read = getattr(timeout, "read", None)
    return float(read) if isinstance(read, int | float) and read > 0 else DEFAULT_TIMEOUT
