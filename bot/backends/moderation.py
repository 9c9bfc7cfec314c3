"""The moderation call: a message's text in, a verdict out."""

from __future__ import annotations

from dataclasses import dataclass

from openai import AsyncOpenAI

from bot.backends.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class Verdict:
    flagged: bool
    categories: tuple[str, ...] = ()  # sorted; those of the first flagged result


class ModerationBackend:
    def __init__(self, client: AsyncOpenAI, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry

    async def check(self, text: str, *, model: str) -> Verdict:
        result = await self._retry.call(
            lambda: self._client.moderations.create(model=model, input=text)
        )
        flagged = [r for r in result.results if r.flagged]
        if not flagged:
            return Verdict(False)
        hits = flagged[0].categories.model_dump(by_alias=True).items()
        return Verdict(True, tuple(sorted(name for name, hit in hits if hit)))
