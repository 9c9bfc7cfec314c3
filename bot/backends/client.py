"""The one OpenAI client of a process, shared by every backend object."""

from __future__ import annotations

from openai import AsyncOpenAI

from bot.core.config import Settings

# The client's type, for the wiring that holds and closes it without importing the SDK.
OpenAIClient = AsyncOpenAI


def make_openai_client(settings: Settings) -> OpenAIClient:
    """Its own retries are off: the retry policy (`bot.backends.retry`) decides, so quota errors
    are never retried. Raises `ConfigError` when no API key is configured."""
    return AsyncOpenAI(
        api_key=settings.require_openai(),
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout,
        max_retries=0,
    )
