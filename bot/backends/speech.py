"""Text to speech behind one small interface, so the engine can change without touching the
commands: today `/audio/speech`; every model there shuts down 2027-01-06, after which a
Realtime-API engine can implement `SpeechEngine` and be selected with SWITCHBOARD_SPEECH_ENGINE."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from openai import AsyncOpenAI

from bot.backends.retry import RetryPolicy
from bot.core.errors import UserError

VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "onyx",
    "nova",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)
FORMATS = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
}
MAX_CHARS = 4096


@dataclass(frozen=True, slots=True)
class Speech:
    data: bytes = field(repr=False)
    mime: str
    extension: str
    model: str
    characters: int


class SpeechEngine(Protocol):
    model: str

    async def synthesize(self, text: str, *, voice: str, fmt: str) -> Speech: ...


def check_voice(voice: str) -> str:
    value = voice.strip().lower()
    if value not in VOICES:
        raise UserError(f"Unknown voice “{voice}”. Voices: {', '.join(VOICES)}.")
    return value


def check_format(fmt: str) -> str:
    value = fmt.strip().lower()
    if value not in FORMATS:
        raise UserError(f"Unknown speech format “{fmt}”. Formats: {', '.join(FORMATS)}.")
    return value


class AudioSpeechEngine:
    """`POST /v1/audio/speech`."""

    def __init__(self, client: AsyncOpenAI, model: str, retry: RetryPolicy) -> None:
        self._client = client
        self.model = model
        self._retry = retry

    async def synthesize(self, text: str, *, voice: str, fmt: str) -> Speech:
        text = text.strip()
        if not text:
            raise UserError("Give me some text to say.")
        if len(text) > MAX_CHARS:
            raise UserError(
                f"That is {len(text):,} characters; I can say at most {MAX_CHARS:,} at once."
            )
        voice, fmt = check_voice(voice), check_format(fmt)

        async def call() -> bytes:
            response = await self._client.audio.speech.create(
                model=self.model,
                voice=voice,
                input=text,
                response_format=fmt,  # type: ignore[arg-type]
            )
            return response.content

        data = await self._retry.call(call)
        return Speech(data, FORMATS[fmt], fmt, self.model, len(text))


ENGINES = {"audio_speech": AudioSpeechEngine}


def make_speech_engine(
    name: str, client: AsyncOpenAI, model: str, retry: RetryPolicy
) -> SpeechEngine:
    try:
        return ENGINES[name](client, model, retry)
    except KeyError:
        raise UserError(f"Speech engine “{name}” is not available in this build.") from None
