"""Text to speech behind one small interface (`SpeechEngine`), the engine chosen by the model:
`gpt-realtime*` models speak through the Realtime API (`bot.backends.realtime_speech`), every
other model through `POST /v1/audio/speech`, whose OpenAI models all shut down 2027-01-06.

`SWITCHBOARD_SPEECH_ENGINE`: `auto` (the default) chooses by the model as above; `realtime`
uses the Realtime API whatever the model is called (a Realtime model under another name, e.g.
on a compatible server); `audio_speech`, the only value before the Realtime engine, is still
accepted and means the same as `auto` (a `gpt-realtime*` model is never sent to
`/audio/speech`, which does not serve it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from openai import AsyncOpenAI

from bot.backends.retry import RetryPolicy
from bot.core.errors import UserError
from bot.core.types import Usage

# The voices of /audio/speech (also what a channel's `voice` setting accepts); each engine
# has its own `voices`, a subset.
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
ENGINE_NAMES = ("auto", "realtime", "audio_speech")
REALTIME_MODELS = "gpt-realtime"  # the prefix of the models the Realtime engine speaks with


@dataclass(frozen=True, slots=True)
class Speech:
    data: bytes = field(repr=False)
    mime: str
    extension: str
    model: str
    characters: int
    usage: Usage | None = None  # what the engine reported, when it reports usage


class SpeechEngine(Protocol):
    model: str
    voices: tuple[str, ...]

    async def synthesize(self, text: str, *, voice: str, fmt: str) -> Speech: ...


def check_voice(voice: str, voices: tuple[str, ...] = VOICES, model: str = "") -> str:
    value = voice.strip().lower()
    if value in voices:
        return value
    if value in VOICES and model:
        raise UserError(
            f"The voice “{voice}” is not available with the speech model {model}. "
            f"Voices: {', '.join(voices)}."
        )
    raise UserError(f"Unknown voice “{voice}”. Voices: {', '.join(voices)}.")


def check_format(fmt: str) -> str:
    value = fmt.strip().lower()
    if value not in FORMATS:
        raise UserError(f"Unknown speech format “{fmt}”. Formats: {', '.join(FORMATS)}.")
    return value


def check_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise UserError("Give me some text to say.")
    if len(text) > MAX_CHARS:
        raise UserError(
            f"That is {len(text):,} characters; I can say at most {MAX_CHARS:,} at once."
        )
    return text


class AudioSpeechEngine:
    """`POST /v1/audio/speech` (it reports no usage: the run is priced by characters)."""

    voices = VOICES

    def __init__(self, client: AsyncOpenAI, model: str, retry: RetryPolicy) -> None:
        self._client = client
        self.model = model
        self._retry = retry

    async def synthesize(self, text: str, *, voice: str, fmt: str) -> Speech:
        text = check_text(text)
        voice, fmt = check_voice(voice, self.voices, self.model), check_format(fmt)

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


def engine_kind(name: str, model: str) -> str:
    """ "realtime" or "audio_speech": the engine `SWITCHBOARD_SPEECH_ENGINE=name` uses for `model`."""
    if name not in ENGINE_NAMES:
        raise UserError(f"Speech engine “{name}” is not available in this build.")
    if name == "realtime" or model.startswith(REALTIME_MODELS):
        return "realtime"
    return "audio_speech"
