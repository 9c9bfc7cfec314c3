"""The `responses` backend: Responses API, with one Conversations API conversation per key.

The server keeps the history; instructions, model and options come from the channel's assistant
config on every request (instructions are not carried between responses), so an admin's change
applies from the next turn.
"""

from __future__ import annotations

import logging
from typing import Any

import openai
from openai import AsyncOpenAI

from bot.backends.base import OnDelta, Turn, TurnResult
from bot.backends.retry import RetryPolicy
from bot.errors import UserError
from bot.types import Usage
from storage import conversations
from storage.db import Database

log = logging.getLogger(__name__)

INCOMPLETE_REASONS = {
    "max_output_tokens": "the answer reached the output token limit",
    "content_filter": "OpenAI's content filter stopped the answer",
}


class ResponsesBackend:
    name = "responses"

    def __init__(self, client: AsyncOpenAI, db: Database, retry: RetryPolicy) -> None:
        self._client = client
        self._db = db
        self._retry = retry

    async def cancel(self, response_id: str) -> None:
        """Nothing runs server-side after the stream closes (no background mode yet)."""

    async def recover(self, response_id: str) -> TurnResult | None:
        return None

    async def reply(self, turn: Turn, on_delta: OnDelta) -> TurnResult:
        conversation_id = turn.backend_conversation_id or await self._new_conversation(turn)
        try:
            return await self._respond(turn, conversation_id, on_delta)
        except openai.NotFoundError as exc:
            if exc.code == "model_not_found" or exc.param == "model":
                raise
            # The server no longer knows our conversation (deleted or expired): start a new one.
            log.warning("conversation %s unknown to the server; starting a new one", turn.key)
            conversation_id = await self._new_conversation(turn)
            return await self._respond(turn, conversation_id, on_delta)

    async def _new_conversation(self, turn: Turn) -> str:
        created = await self._retry.call(
            lambda: self._client.conversations.create(metadata={"switchboard": str(turn.key)[:512]})
        )
        await conversations.set_backend_id(self._db, turn.conversation_id, created.id)
        return created.id

    def _request(self, turn: Turn, conversation_id: str) -> dict[str, Any]:
        config = turn.config
        params: dict[str, Any] = {
            "model": config.model,
            "instructions": config.instructions or None,
            "input": [{"role": "user", "content": _content(turn)}],
            "conversation": conversation_id,
            "stream": True,
            "store": True,
        }
        if config.temperature is not None:
            params["temperature"] = config.temperature
        if config.max_output_tokens:
            params["max_output_tokens"] = config.max_output_tokens
        return params

    async def _respond(self, turn: Turn, conversation_id: str, on_delta: OnDelta) -> TurnResult:
        params = self._request(turn, conversation_id)
        parts: list[str] = []

        async def attempt() -> Any:
            parts.clear()
            final = None
            stream = await self._client.responses.create(**params)
            async with stream:
                async for event in stream:
                    kind = event.type
                    if kind == "response.output_text.delta" or kind == "response.refusal.delta":
                        parts.append(event.delta)
                        await on_delta(event.delta)
                    elif kind in ("response.completed", "response.incomplete", "response.failed"):
                        final = event.response
                    elif kind == "error":
                        raise UserError(
                            f"OpenAI reported an error while answering: {event.message}",
                            log_detail=f"stream error {event.code}",
                        )
            return final

        final = await self._retry.call(attempt, may_retry=lambda: not parts)
        if final is None:
            raise UserError(
                "The answer from OpenAI stopped before it was complete. Please try again.",
                log_detail="stream ended without a terminal event",
            )
        if final.status == "failed":
            message = final.error.message if final.error else "no reason given"
            code = final.error.code if final.error else ""
            raise UserError(
                f"OpenAI could not finish this answer: {message}",
                log_detail=f"response failed {code}",
            )
        text = "".join(parts)
        if final.output_text and not text:
            text = final.output_text
        notice = ""
        if final.status == "incomplete":
            reason = final.incomplete_details.reason if final.incomplete_details else None
            notice = (
                f"(cut short: {INCOMPLETE_REASONS.get(reason or '', reason or 'no reason given')})"
            )
        return TurnResult(
            text=text,
            usage=_usage(final, turn.config.model),
            response_id=final.id,
            notice=notice,
        )


def _content(turn: Turn) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if turn.text or not turn.images:
        parts.append({"type": "input_text", "text": turn.text})
    parts += [
        {"type": "input_image", "image_url": url, "detail": turn.image_detail}
        for url in turn.images
    ]
    return parts


def _usage(response: Any, model: str) -> Usage:
    usage = response.usage
    if usage is None:
        return Usage(model=model)
    cached = usage.input_tokens_details.cached_tokens if usage.input_tokens_details else 0
    reasoning = usage.output_tokens_details.reasoning_tokens if usage.output_tokens_details else 0
    return Usage(
        model=model,
        input_tokens=usage.input_tokens,
        cached_tokens=cached or 0,
        output_tokens=usage.output_tokens,
        reasoning_tokens=reasoning or 0,
    )
