"""One-shot text answers (an instruction and a text, no conversation, no tools, not stored),
e.g. translating a transcript: on whichever API the deployment's backend uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from openai import AsyncOpenAI

from bot.backends.retry import RetryPolicy
from bot.core.types import Usage


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    usage: Usage


class Completer(Protocol):
    async def complete(self, *, model: str, instructions: str, text: str) -> Completion: ...


class ResponsesCompleter:
    def __init__(self, client: AsyncOpenAI, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry

    async def complete(self, *, model: str, instructions: str, text: str) -> Completion:
        response = await self._retry.call(
            lambda: self._client.responses.create(
                model=model, instructions=instructions, input=text, store=False
            )
        )
        usage = response.usage
        return Completion(
            response.output_text or "",
            Usage(
                model=model,
                input_tokens=usage.input_tokens if usage else 0,
                output_tokens=usage.output_tokens if usage else 0,
            ),
        )


class ChatCompleter:
    def __init__(self, client: AsyncOpenAI, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry

    async def complete(self, *, model: str, instructions: str, text: str) -> Completion:
        response = await self._retry.call(
            lambda: self._client.chat.completions.create(
                model=model,
                messages=[
                    {"role": "system", "content": instructions},
                    {"role": "user", "content": text},
                ],
            )
        )
        usage = response.usage
        return Completion(
            response.choices[0].message.content or "",
            Usage(
                model=model,
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
            ),
        )
