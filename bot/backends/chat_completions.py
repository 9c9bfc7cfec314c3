"""The `chat` backend: Chat Completions with history in SQLite, for OpenAI-compatible servers
(Azure, vLLM, Ollama, LiteLLM). History is trimmed oldest-first to a token budget."""

from __future__ import annotations

from typing import Any

from openai import AsyncOpenAI

from bot.backends.base import OnDelta, Turn, TurnResult
from bot.backends.retry import RetryPolicy
from bot.errors import UserError
from bot.history import trim_history
from bot.types import Usage
from storage.db import Database
from storage.messages import HistoryMessage, recent_history

FINISH_NOTICES = {
    "length": "(cut short: the answer reached the output token limit)",
    "content_filter": "(cut short: the server's content filter stopped the answer)",
}


class ChatCompletionsBackend:
    name = "chat"

    def __init__(
        self, client: AsyncOpenAI, db: Database, retry: RetryPolicy, *, history_tokens: int
    ) -> None:
        self._client = client
        self._db = db
        self._retry = retry
        self._history_tokens = history_tokens

    async def cancel(self, response_id: str) -> None:
        """Nothing runs server-side after the stream closes (no background mode yet)."""

    async def recover(self, response_id: str) -> TurnResult | None:
        return None

    async def reply(self, turn: Turn, on_delta: OnDelta) -> TurnResult:
        config = turn.config
        history = await recent_history(self._db, turn.conversation_id)
        messages: list[dict[str, Any]] = list(
            trim_history(config.instructions, history, turn.text, self._history_tokens)
        )
        if turn.images:  # sent with this turn only: the stored history keeps the text
            messages[-1] = {"role": "user", "content": _content(turn)}
        params: dict[str, Any] = {
            "model": config.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if config.temperature is not None:
            params["temperature"] = config.temperature
        if config.max_output_tokens:
            params["max_completion_tokens"] = config.max_output_tokens

        parts: list[str] = []
        outcome: dict[str, Any] = {}

        async def attempt() -> None:
            parts.clear()
            outcome.clear()
            stream = await self._client.chat.completions.create(**params)
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        outcome["usage"] = chunk.usage
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    if choice.delta and choice.delta.content:
                        parts.append(choice.delta.content)
                        await on_delta(choice.delta.content)
                    if choice.finish_reason:
                        outcome["finish_reason"] = choice.finish_reason
                        outcome["id"] = chunk.id

        await self._retry.call(attempt, may_retry=lambda: not parts)
        if "finish_reason" not in outcome:
            raise UserError(
                "The answer from the model server stopped before it was complete. Please try again.",
                log_detail="chat stream ended without finish_reason",
            )
        text = "".join(parts)
        return TurnResult(
            text=text,
            usage=_usage(outcome.get("usage"), config.model),
            response_id=outcome.get("id"),
            history=(HistoryMessage("user", turn.text), HistoryMessage("assistant", text)),
            notice=FINISH_NOTICES.get(outcome["finish_reason"], ""),
        )


def _content(turn: Turn) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": turn.text}] if turn.text else []
    parts += [
        {"type": "image_url", "image_url": {"url": url, "detail": turn.image_detail}}
        for url in turn.images
    ]
    return parts


def _usage(usage: Any, model: str) -> Usage:
    if usage is None:
        return Usage(model=model)
    prompt_details = usage.prompt_tokens_details
    completion_details = usage.completion_tokens_details
    return Usage(
        model=model,
        input_tokens=usage.prompt_tokens or 0,
        cached_tokens=(prompt_details.cached_tokens or 0) if prompt_details else 0,
        output_tokens=usage.completion_tokens or 0,
        reasoning_tokens=(completion_details.reasoning_tokens or 0) if completion_details else 0,
    )
