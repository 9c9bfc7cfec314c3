"""The `chat` backend: Chat Completions with history in SQLite, for OpenAI-compatible servers
(Azure, vLLM, Ollama, LiteLLM).

The history sent fits a budget derived from the model's context window
(`bot.backends.context`). When it outgrows it, its oldest messages are summarised by the model
(one extra, non-streamed completion) and the summary replaces them (`bot.backends.history`);
only when no summary can be made are they dropped. A server that still answers
`context_length_exceeded` gets the request again once with half the history.

Function tools run in a client-side loop: the streamed `tool_calls` deltas are assembled, the
assistant message with its tool calls and one `tool` message per call are appended, and the
model is asked again, at most `SWITCHBOARD_MAX_TOOL_ROUNDS` times. The stored history keeps
only the user's text and the final answer. Hosted tools (code interpreter, file search, web
search, image generation) exist only in the Responses API: here they are reported unavailable.

The streamed request is read as plain JSON (`bot.backends.raw_stream`): the loop reads five
fields of each of hundreds of chunks, and building the SDK's model of each was most of the
bot's CPU per answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI

from bot.backends import common, raw_stream
from bot.backends.answer_format import answer_format
from bot.backends.base import OnDelta, Step, Turn, TurnResult
from bot.backends.context import ContextBudget, estimate_tokens, is_context_error
from bot.backends.history import (
    cost,
    fit,
    split_summary,
    stored_answer,
    stored_summary,
    system_text,
    transcript,
)
from bot.backends.retry import RetryPolicy
from bot.core.errors import UserError
from bot.core.types import Usage
from bot.tools import ToolCall, ToolContext, ToolRegistry, ToolRunner
from storage.db import Database
from storage.messages import HistoryMessage, recent_history

log = logging.getLogger(__name__)

FINISH_NOTICES = {
    "length": "(cut short: the answer reached the output token limit)",
    "content_filter": "(cut short: the server's content filter stopped the answer)",
}
SUMMARISE = (
    "You keep the memory of a long team-chat conversation between people and an assistant. "
    "Summarise it so the assistant can carry on: who said what (keep names and mentions such "
    "as <@U123> exactly), decisions, open questions, facts and numbers. Be concise, no preamble."
)
SUMMARY_SHARE = 0.25  # of the history budget, for the summary
KEEP_SHARE = 0.5  # of it, for the recent messages kept word for word next to a new summary
MIN_SUMMARY_TOKENS = 64
DEFAULT_WINDOW = 16_000  # when the backend is built without a window lookup (tests)


@dataclass(slots=True)
class _History:
    """The history part of one request and what to store with the turn."""

    summary: str
    kept: list[HistoryMessage]
    stored: tuple[HistoryMessage, ...] = ()  # a new summary and the messages it leaves
    steps: list[Step] = field(default_factory=list)
    usage: Usage | None = None


@dataclass(slots=True)
class _Round:
    text: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    usage: Any = None
    finish_reason: str | None = None
    id: str | None = None
    fingerprint: str | None = None


class ChatCompletionsBackend:
    name = "chat"

    def __init__(
        self,
        client: AsyncOpenAI,
        db: Database,
        retry: RetryPolicy,
        *,
        history_tokens: int | None = None,
        tools: ToolRunner | None = None,
        context_window: Callable[[str], int] | None = None,
    ) -> None:
        self._client = client
        self._db = db
        self._retry = retry
        self._history_tokens = history_tokens  # an optional cap below the window's budget
        self._tools = tools or ToolRunner(ToolRegistry())
        self._context_window = context_window or (lambda model: DEFAULT_WINDOW)

    async def close(self) -> None:
        """Nothing is kept server-side to clean up."""

    async def cancel(self, response_id: str) -> None:
        """Nothing runs server-side once the stream closes: Chat Completions has no background."""

    async def recover(self, response_id: str) -> TurnResult | None:
        """Chat completions are not stored server-side: nothing to recover."""
        return None

    async def reply(self, turn: Turn, on_delta: OnDelta) -> TurnResult:
        config = turn.config
        fmt = answer_format(config.format)
        instructions = fmt.instructions(config.instructions) if fmt else config.instructions
        budget = ContextBudget(self._context_window(config.model), config.max_output_tokens)
        room = budget.history_budget(instructions, turn.full_text(), images=len(turn.images))
        if self._history_tokens is not None:
            room = min(room, self._history_tokens)
        stored = [] if turn.fresh else await recent_history(self._db, turn.conversation_id)
        history = await self._fit(turn, budget, room, *split_summary(stored))
        messages = _messages(instructions, history, turn)
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
        if config.seed is not None:
            params["seed"] = config.seed
        if fmt is not None:
            params["response_format"] = fmt.chat_response_format()
        offered = self._tools.offered(config.offered_tools)
        if offered:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": dict(t.parameters),
                    },
                }
                for t in offered
            ]
        allowed = [t.name for t in offered]
        context = ToolContext(turn.key, turn.user_id, self._db)

        shown: list[str] = []  # everything streamed, over all rounds
        usage = history.usage or Usage(model=config.model)
        steps: list[Step] = list(history.steps)
        fingerprint: str | None = None
        rounds, capped, notice, retried = 0, False, "", False
        while True:
            try:
                result = await self._round(turn, params, on_delta, shown)
            except openai.BadRequestError as exc:
                if retried or rounds or capped or not is_context_error(exc):
                    raise
                # The server counts more tokens than estimated: once, with half the history.
                retried = True
                before = len(history.kept)
                history.kept = fit(history.kept, cost(history.kept) // 2)[0]
                dropped = before - len(history.kept)
                log.warning("chat request at %s over the context window; trimming", turn.key)
                steps.append(
                    Step(
                        "truncation",
                        f"the server's context window was exceeded: dropped the {dropped} "
                        "oldest messages and asked again",
                    )
                )
                messages = _messages(instructions, history, turn)
                params["messages"] = messages
                continue
            usage = common.add_usage(usage, _usage(result.usage, config.model))
            fingerprint = result.fingerprint or fingerprint
            if not result.calls:
                break
            if capped:  # asked to answer without tools, and still calling them
                break
            messages.append(_assistant_message(result))
            if rounds >= self._tools.max_rounds:
                outputs = [(call, self._tools.cap_message) for call in result.calls]
                params["tool_choice"] = "none"
                capped = True
            else:
                await common.tools_running(turn, [c.name for c in result.calls])
                outcomes = await self._tools.run(result.calls, context, allowed)
                await common.tools_done(turn)
                steps += [o.step() for o in outcomes]
                outputs = [(o.call, o.output) for o in outcomes]
                rounds += 1
            messages += [
                {"role": "tool", "tool_call_id": call.call_id, "content": output}
                for call, output in outputs
            ]

        text, answer = result.text, "".join(shown)
        if capped and (result.calls or not text.strip()):
            notice = self._tools.cap_notice
        format_notice = ""
        if fmt is not None and text:
            answer, format_notice = fmt.finish(text)
        if fingerprint:
            log.info(
                "chat answer at %s: seed=%s system_fingerprint=%s",
                turn.key,
                config.seed,
                fingerprint,
            )
        return TurnResult(
            text=answer,
            usage=usage,
            response_id=result.id,
            history=(
                *history.stored,
                HistoryMessage("user", turn.full_text()),
                stored_answer(text),
            ),
            notice=common.join_notices(
                FINISH_NOTICES.get(result.finish_reason or "", ""),
                notice,
                format_notice,
                _unavailable(config.tools, bool(turn.data_files)),
            ),
            steps=tuple(steps),
            system_fingerprint=fingerprint,
        )

    async def _fit(
        self,
        turn: Turn,
        budget: ContextBudget,
        room: int,
        summary: str,
        live: list[HistoryMessage],
    ) -> _History:
        """The history for this request within `room` tokens: all of it when it fits; else its
        oldest messages folded into a new summary (kept word for word: the most recent half of
        the room); else, when no summary can be made, only the most recent messages."""
        summary_cost = estimate_tokens(summary) if summary else 0
        if summary_cost + cost(live) <= room:
            return _History(summary, live)
        model = turn.config.model
        kept, dropped = fit(live, int(room * KEEP_SHARE))
        folded, usage = await self._summarise(
            model, summary, dropped, int(room * SUMMARY_SHARE), budget
        )
        if folded:
            step = Step(
                "compaction",
                f"summarised the {len(dropped)} oldest messages to fit the model's context window",
            )
            return _History(folded, kept, (stored_summary(folded), *kept), [step], usage)
        kept, dropped = fit(live, max(0, room - summary_cost))
        step = Step(
            "truncation",
            f"dropped the {len(dropped)} oldest messages to fit the model's context window "
            "(no summary could be made)",
        )
        return _History(summary, kept, (), [step], usage)

    async def _summarise(
        self,
        model: str,
        summary: str,
        messages: Sequence[HistoryMessage],
        limit: int,
        budget: ContextBudget,
    ) -> tuple[str, Usage]:
        """A summary of `summary` and `messages` of at most `limit` tokens ("" when there is
        no room for one or the model could not make it), and what making it cost."""
        if limit < MIN_SUMMARY_TOKENS or not messages:
            return "", Usage(model=model)
        room = budget.input_limit - limit - estimate_tokens(SUMMARISE)
        text = transcript(summary, messages, room)
        try:
            response = await self._retry.call(
                lambda: self._client.chat.completions.create(
                    model=model,
                    messages=[
                        {"role": "system", "content": SUMMARISE},
                        {"role": "user", "content": text},
                    ],
                    max_completion_tokens=limit,
                )
            )
        except openai.APIError as exc:
            log.warning("could not summarise the chat history (%s); trimming it", exc)
            return "", Usage(model=model)
        made = (response.choices[0].message.content or "").strip() if response.choices else ""
        # A server that ignores max_completion_tokens may say more: keep what fits.
        return made[: limit * 4], _usage(response.usage, model)

    async def _round(
        self, turn: Turn, params: dict[str, Any], on_delta: OnDelta, shown: list[str]
    ) -> _Round:
        """One streamed completion: its text (streamed on), its tool calls, usage, finish."""
        out = _Round()
        parts: list[str] = []
        started = len(shown)
        calls: dict[int, dict[str, str]] = {}
        # A stream that drops is retried, also after text was shown (only the new words show).
        visible = common.Replayed(on_delta)

        async def attempt() -> None:
            nonlocal out
            parts.clear()
            calls.clear()
            del shown[started:]
            visible.restart()
            out = _Round()
            stream = await raw_stream.post_stream(self._client, "/chat/completions", params)
            async with stream:
                async for chunk in stream:
                    # Not reported as started: a chat completion can be neither cancelled
                    # nor recovered, so its id is only worth storing with the finished run.
                    out.id = out.id or chunk.get("id")
                    out.fingerprint = chunk.get("system_fingerprint") or out.fingerprint
                    if chunk.get("usage"):
                        out.usage = chunk["usage"]
                    choices = chunk.get("choices")
                    if not choices:
                        continue
                    choice = choices[0]
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        await common.show_delta(delta["content"], parts, shown, visible)
                    for piece in delta.get("tool_calls") or ():
                        slot = calls.setdefault(piece["index"], {"id": "", "name": "", "args": ""})
                        slot["id"] = piece.get("id") or slot["id"]
                        function = piece.get("function")
                        if function:
                            slot["name"] += function.get("name") or ""
                            slot["args"] += function.get("arguments") or ""
                    if choice.get("finish_reason"):
                        out.finish_reason = choice["finish_reason"]

        await self._retry.call(attempt)
        if out.finish_reason is None:
            raise UserError(
                "The answer from the model server stopped before it was complete. Please try again.",
                log_detail="chat stream ended without finish_reason",
            )
        out.text = "".join(parts)
        out.calls = [
            ToolCall(slot["id"] or f"call_{index}", slot["name"], slot["args"])
            for index, slot in sorted(calls.items())
        ]
        return out


def _assistant_message(result: _Round) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": result.text or None,
        "tool_calls": [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in result.calls
        ],
    }


def _unavailable(tools: tuple[str, ...], data_files: bool) -> str:
    hosted = common.hosted_tools(tools)
    notes = []
    if hosted:
        notes.append(
            f"({', '.join(hosted)} {'is' if len(hosted) == 1 else 'are'} not available with the "
            "chat backend (Chat Completions); I answered without "
            f"{'it' if len(hosted) == 1 else 'them'}.)"
        )
    if data_files:
        notes.append(
            "(The attached documents were not read: code interpreter needs the responses backend.)"
        )
    return "\n".join(notes)


def _messages(instructions: str, history: _History, turn: Turn) -> list[dict[str, Any]]:
    system = system_text(instructions, history.summary)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    messages += [{"role": m.role, "content": m.content} for m in history.kept]
    messages.append({"role": "user", "content": _content(turn)})
    return messages


def _content(turn: Turn) -> str | list[dict[str, Any]]:
    """The user message: plain text, or parts when it has earlier messages, an author or images
    (sent with this turn only: the stored history keeps the text)."""
    if not (turn.images or turn.context or turn.speaker):
        return turn.text
    parts: list[dict[str, Any]] = [{"type": "text", "text": part} for part in turn.parts()]
    parts += [
        {"type": "image_url", "image_url": {"url": url, "detail": turn.image_detail}}
        for url in turn.images
    ]
    return parts


def _usage(usage: Any, model: str) -> Usage:
    """Usage of a completion, from the SDK's object or a streamed chunk's `usage` dict."""
    if usage is None:
        return Usage(model=model)
    if not isinstance(usage, dict):
        usage = usage.model_dump()
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(
        model=model,
        input_tokens=usage.get("prompt_tokens") or 0,
        cached_tokens=prompt_details.get("cached_tokens") or 0,
        output_tokens=usage.get("completion_tokens") or 0,
        reasoning_tokens=completion_details.get("reasoning_tokens") or 0,
    )
