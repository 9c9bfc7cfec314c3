"""Speech to text (`/v1/audio/transcriptions`, and the retired `/v1/audio/translations` an
operator may opt into): one prepared piece of audio in, its text and usage out. Text to speech
is `bot.backends.speech`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openai import AsyncOpenAI

from bot.backends.common import Upload, retired
from bot.backends.retry import RetryPolicy
from bot.core.types import Usage


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    usage: Usage


class AudioBackend:
    def __init__(self, client: AsyncOpenAI, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry

    async def transcribe(
        self, file: Upload, *, model: str, seconds: float, language: str | None = None
    ) -> Transcript:
        """`seconds`: the audio's length, billed when the server reports no usage of its own."""
        params: dict[str, Any] = {"model": model, "file": file}
        if language:
            params["language"] = language
        result = await self._retry.call(lambda: self._client.audio.transcriptions.create(**params))
        usage = Usage(model=model, audio_seconds=seconds)
        raw = getattr(result, "usage", None)
        if raw is not None and getattr(raw, "type", "") == "tokens":
            usage = Usage(
                model=model,
                input_tokens=getattr(raw, "input_tokens", 0) or 0,
                output_tokens=getattr(raw, "output_tokens", 0) or 0,
                audio_seconds=seconds,
            )
        elif raw is not None and getattr(raw, "type", "") == "duration":
            usage = Usage(model=model, audio_seconds=float(raw.seconds or seconds))
        return Transcript(getattr(result, "text", "") or "", usage)

    async def translate(self, file: Upload, *, model: str) -> str:
        """English text of the audio, from the retired translations endpoint."""
        result = await self._retry.call(
            lambda: retired(lambda: self._client.audio.translations.create(model=model, file=file))
        )
        return getattr(result, "text", "") or ""
