"""The `responses` backend: Responses API, with one Conversations API conversation per key.

The server keeps the history; instructions, model and options come from the channel's assistant
config on every request (instructions are not carried between responses), so an admin's change
applies from the next turn.

Responses run in background mode (`background=True, stream=True, store=True`) so that a
running answer can be cancelled (`cancel`) and, after a crash, picked up (`recover`). Function
calls are answered client-side: their outputs go back as `function_call_output` items in the
next request on the same conversation, at most `SWITCHBOARD_MAX_TOOL_ROUNDS` times per turn.
Hosted tools (web search, image generation, file search over the channel's vector store, code
interpreter in one explicit container per conversation) run server-side; what they made
(files, citations, the code they ran) comes back in the `TurnResult`. A conversation or
container made on the way is reported to `Turn.server_ids` at once; nothing is stored here.
Streams are read as plain JSON (`bot.backends.raw_stream`); the final Response of each round is
built as the SDK's model once.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.responses import Response

from bot.backends import common, raw_stream
from bot.backends.answer_format import answer_format
from bot.backends.base import InputFile, OnDelta, Step, Turn, TurnResult
from bot.backends.containers import FILE_MAX_BYTES, MB, Containers, FileTooLarge
from bot.backends.context import (
    CONTEXT_ERROR,
    ContextBudget,
    estimate_tokens,
    is_context_error,
    text_of,
)
from bot.backends.conversations import ServerConversations
from bot.backends.retry import RetryPolicy
from bot.backends.spares import SpareConversations
from bot.core.errors import UserError
from bot.core.types import OutFile, Usage
from bot.tools import ToolCall, ToolContext, ToolRegistry, ToolRunner
from storage.db import Database

log = logging.getLogger(__name__)

INCOMPLETE_REASONS = {
    "max_output_tokens": "the answer reached the output token limit",
    "content_filter": "OpenAI's content filter stopped the answer",
}
MAX_FILES = 10
STEP_DETAIL_CHARS = 4_000
_OUTPUT = "function_call_output"
DANGLING_CALL = re.compile(r"No tool output found for function call ([\w-]+)")
MAX_HEALS = 20
NO_KNOWLEDGE = (
    "(File search is on for this channel but it has no knowledge yet: an admin must add "
    "documents with `/assistant knowledge add`.)"
)
COMPACTED = "compacted the earlier conversation to fit the model's context window"
TRUNCATED = (
    "the conversation passed the compaction threshold without being compacted: the server may "
    "have dropped its oldest messages to fit the context window (truncation: auto)"
)
RECAP_SHARE = 4  # a recap seeding a fresh conversation takes at most 1/4 of the input limit


TOO_LONG = (
    "That is too long for the model's context window, even after compacting. Please shorten it."
)


class _TooLong(Exception):
    """A streamed response ended with a `context_length_exceeded` error event."""

    code = "context_length_exceeded"


@dataclass(slots=True)
class _Collected:
    """What the output items of a turn's responses amount to."""

    calls: list[ToolCall] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    files: list[OutFile] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # shown with the answer
    file_searches: int = 0
    web_searches: int = 0
    seen_files: set[str] = field(default_factory=set)
    compacted: bool = False


@dataclass(slots=True)
class _Container:
    """The conversation's container as this turn knows it (made or replaced on the way)."""

    id: str | None


class ResponsesBackend:
    name = "responses"

    def __init__(
        self,
        client: AsyncOpenAI,
        db: Database,
        retry: RetryPolicy,
        *,
        tools: ToolRunner | None = None,
        background: bool = True,
        context_window: Callable[[str], int] | None = None,
    ) -> None:
        self._client = client
        self._db = db  # for the tools' context only
        self._retry = retry
        self._tools = tools or ToolRunner(ToolRegistry())
        self._background = background
        self._context_window = context_window
        self._conversations = ServerConversations(client, retry)
        self._spares = SpareConversations(self._conversations)
        self._containers = Containers(client, retry)

    # -- lifecycle ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Delete the spare conversations made ahead of need (before the client closes)."""
        await self._spares.close()

    async def cancel(self, response_id: str) -> None:
        """Stop a background response; one that is unknown or already finished is fine."""
        try:
            await self._client.responses.cancel(response_id)
        except (openai.NotFoundError, openai.BadRequestError, openai.ConflictError) as exc:
            log.info("cancel of %s not needed: %s", response_id, exc.status_code)

    async def recover(self, response_id: str) -> TurnResult | None:
        """The answer of a response that completed while we were down (else None)."""
        try:
            response = await self._retry.call(lambda: self._client.responses.retrieve(response_id))
        except openai.NotFoundError:
            return None
        if response.status != "completed":
            return None
        collected = _Collected()
        await self._collect(response, collected)
        if collected.calls:  # it stopped to ask for tools that never ran
            return None
        usage = _with_tools(_usage(response, response.model), collected, 0)
        return TurnResult(
            text=response.output_text or "",
            usage=usage,
            response_id=response.id,
            files=tuple(collected.files),
            steps=tuple(collected.steps),
            citations=tuple(collected.citations),
        )

    # -- answering ----------------------------------------------------------------------------

    async def reply(self, turn: Turn, on_delta: OnDelta) -> TurnResult:
        conversation_id = turn.backend_conversation_id or await self._new_conversation(turn)
        container = _Container(turn.container_id)
        renewed, healed, shrunk = False, 0, False
        shrinking: tuple[Step, Usage] | None = None
        while True:
            try:
                result = await self._respond(turn, conversation_id, container, on_delta)
                if shrinking is None:
                    return result
                step, usage = shrinking
                return dataclasses.replace(
                    result,
                    steps=(step, *result.steps),
                    usage=common.add_usage(result.usage, usage),
                )
            except _TooLong:
                if shrunk:
                    raise UserError(TOO_LONG, log_detail="context_length_exceeded") from None
                conversation_id, shrinking = await self._shrink(turn, conversation_id)
                shrunk = True
            except openai.NotFoundError as exc:
                if renewed or exc.code == "model_not_found" or exc.param == "model":
                    raise
                if "conversation" not in str(exc.message).lower():
                    raise
                # The server no longer knows our conversation (deleted or expired): start anew.
                log.warning("conversation %s unknown to the server; starting a new one", turn.key)
                conversation_id = await self._new_conversation(turn)
                renewed = True
            except openai.BadRequestError as exc:
                if is_context_error(exc) and not shrunk:
                    # Over the window although compaction and truncation were asked for (a
                    # server that ignores them, one message too many): compact, answer again.
                    conversation_id, shrinking = await self._shrink(turn, conversation_id)
                    shrunk = True
                    continue
                # A function call left without output (an answer stopped mid-tools, a crash)
                # blocks the conversation: answer it as not run, then go on.
                found = DANGLING_CALL.search(str(exc.message))
                if found is None or healed >= MAX_HEALS:
                    raise
                log.warning("closing a pending tool call in the conversation at %s", turn.key)
                stopped = _call_output(ToolCall(found.group(1), "", ""), "Not run: stopped.")
                await self._append(conversation_id, [stopped])
                healed += 1

    async def _new_conversation(self, turn: Turn) -> str:
        created = await self._spares.take(str(turn.key))
        await common.conversation_created(turn, created)
        return created

    def _budget(self, turn: Turn) -> ContextBudget | None:
        if self._context_window is None:
            return None
        config = turn.config
        return ContextBudget(self._context_window(config.model), config.max_output_tokens)

    async def _shrink(self, turn: Turn, conversation_id: str) -> tuple[str, tuple[Step, Usage]]:
        """Replace a conversation that no longer fits by a new one seeded with its compaction
        (`POST /responses/compact`), or, where that is not available, with a recap of its most
        recent messages. Returns the new conversation's id and the step (and usage) to record."""
        log.warning("conversation at %s is over the context window; compacting", turn.key)
        model = turn.config.model
        items = _from_last_compaction(await self._conversations.items(conversation_id))
        usage = Usage(model=model)
        try:
            compacted = await self._retry.call(
                lambda: self._client.responses.compact(model=model, input=items)  # type: ignore[arg-type]
            )
        except openai.APIStatusError as exc:
            log.warning(
                "compacting the conversation at %s failed (%s); starting afresh with a recap",
                turn.key,
                exc.status_code,
            )
            seed, kept = self._recap(turn, items)
            step = Step(
                "truncation",
                "the conversation outgrew the context window: started a fresh one with a recap "
                f"of its last {kept} messages",
            )
        else:
            seed = [
                item.model_dump(exclude_none=True, mode="json", warnings=False)
                for item in compacted.output
            ]
            usage = _usage(compacted, model)
            step = Step("compaction", f"{COMPACTED} ({len(items)} items, /responses/compact)")
        replacement = await self._conversations.create(str(turn.key), seed)
        await common.conversation_created(turn, replacement)
        try:
            await self._conversations.delete(conversation_id)
        except openai.APIError as exc:
            log.info("could not delete the outgrown conversation %s: %s", conversation_id, exc)
        return replacement, (step, usage)

    def _recap(self, turn: Turn, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """One message recalling the most recent messages of `items` that fit a quarter of the
        input limit (no message when none fits), and how many it recalls."""
        budget = self._budget(turn)
        room = (budget.input_limit if budget else 8_000) // RECAP_SHARE
        lines: list[str] = []
        for item in reversed(items):
            role = item.get("role")
            text = text_of(item).strip()
            if role not in ("user", "assistant") or not text:
                continue
            line = f"{'You' if role == 'assistant' else 'User'}: {text}"
            room -= estimate_tokens(line)
            if room < 0:
                break
            lines.insert(0, line)
        if not lines:
            return [], 0
        recap = (
            "(The earlier conversation here grew too long for the model and was cleared. Its "
            "most recent messages, for context:)\n" + "\n\n".join(lines)
        )
        return [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": recap}],
            }
        ], len(lines)

    async def _respond(
        self, turn: Turn, conversation_id: str, container: _Container, on_delta: OnDelta
    ) -> TurnResult:
        config = turn.config
        fmt = answer_format(config.format)
        hosted, notices, container_id, new_containers = await self._hosted_tools(turn, container)
        uploaded = await self._upload(container_id, turn.data_files) if container_id else []
        offered = self._tools.offered(config.offered_tools)
        instructions = config.instructions
        if fmt is not None:
            instructions = fmt.instructions(instructions)
        params: dict[str, Any] = {
            "model": config.model,
            "instructions": instructions or None,
            "input": [{"role": "user", "content": _content(turn, uploaded)}],
            "conversation": conversation_id,
            "stream": True,
            "store": True,
        }
        budget = self._budget(turn)
        if budget is not None:
            # The server compacts the conversation past the threshold; `truncation` is the
            # safety net should the input still not fit (it drops the oldest items).
            params["context_management"] = [
                {"type": "compaction", "compact_threshold": budget.compact_threshold}
            ]
            params["truncation"] = "auto"
        if self._background:
            params["background"] = True
        if config.temperature is not None:
            params["temperature"] = config.temperature
        if config.max_output_tokens:
            params["max_output_tokens"] = config.max_output_tokens
        if fmt is not None:
            params["text"] = fmt.responses_text()
        tools = hosted + [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": dict(t.parameters),
                "strict": False,
            }
            for t in offered
        ]
        if tools:
            params["tools"] = tools
        if container_id:
            params["include"] = ["code_interpreter_call.outputs"]
        if turn.data_files and not container_id:
            notices.append("(The attached documents were not read: code interpreter is off here.)")
        allowed = [t.name for t in offered]
        context = ToolContext(turn.key, turn.user_id, self._db)

        shown: list[str] = []
        usage = Usage(model=config.model)
        collected = _Collected()
        rounds, capped = 0, False
        replaced = False
        while True:
            created: list[str] = []
            try:
                final, text = await self._round(turn, params, on_delta, shown, created)
            except BaseException as exc:
                expired = (
                    isinstance(exc, openai.BadRequestError) and exc.code == "container_expired"
                )
                if not expired or not container_id or replaced:
                    if not created:  # tool outputs never reached the server: leave none pending
                        outputs = [i for i in params["input"] if i.get("type") == _OUTPUT]
                        await asyncio.shield(self._append(conversation_id, outputs))
                    raise
                # The container expired since it was checked (20 idle minutes, e.g. while a
                # slow tool ran): once per turn, carry on in a new one.
                replaced = True
                container_id, _ = await self._container(turn, container, replace=True)
                new_containers += 1
                await self._upload(container_id, turn.data_files)
                for tool in params["tools"]:
                    if tool["type"] == "code_interpreter":
                        tool["container"] = container_id
                continue
            usage = common.add_usage(usage, _usage(final, config.model))
            calls_before = len(collected.calls)
            compacted_before = collected.compacted
            await self._collect(final, collected)
            if (
                budget is not None
                and not collected.compacted
                and not compacted_before
                and _usage(final, config.model).input_tokens > budget.compact_threshold
            ):
                collected.steps.append(Step("truncation", TRUNCATED))
            calls = collected.calls[calls_before:]
            if calls and (capped or final.status != "completed"):
                # Cut short, or asked to answer without tools and still calling them.
                await self._close_calls(conversation_id, calls, "the answer ended first")
            if not calls or capped or final.status != "completed":
                break
            if rounds >= self._tools.max_rounds:
                outputs = [(call, self._tools.cap_message) for call in calls]
                params["tool_choice"] = "none"
                capped = True
            else:
                try:
                    await common.tools_running(turn, [c.name for c in calls])
                    outcomes = await self._tools.run(calls, context, allowed)
                    await common.tools_done(turn)
                except BaseException:  # cancelled (/cancel, shutdown) or the observer failed
                    await asyncio.shield(
                        self._close_calls(conversation_id, calls, "the answer was stopped")
                    )
                    raise
                collected.steps += [o.step() for o in outcomes]
                outputs = [(o.call, o.output) for o in outcomes]
                rounds += 1
            params["input"] = [_call_output(call, output) for call, output in outputs]

        if capped and (calls or not text.strip()):
            notices.append(self._tools.cap_notice)
        notices.extend(collected.notes)
        notice = ""
        if final.status == "incomplete":
            reason = final.incomplete_details.reason if final.incomplete_details else None
            notice = (
                f"(cut short: {INCOMPLETE_REASONS.get(reason or '', reason or 'no reason given')})"
            )
        answer = "".join(shown) or final.output_text or ""
        if fmt is not None and text and final.status == "completed":
            answer, format_notice = fmt.finish(text)
            notices.append(format_notice)
        return TurnResult(
            text=answer,
            usage=_with_tools(usage, collected, new_containers),
            response_id=final.id,
            notice=common.join_notices(notice, *notices),
            files=tuple(collected.files),
            steps=tuple(collected.steps),
            citations=tuple(collected.citations),
        )

    async def _round(
        self,
        turn: Turn,
        params: dict[str, Any],
        on_delta: OnDelta,
        shown: list[str],
        response_ids: list[str],
    ) -> tuple[Any, str]:
        """One streamed response: (the final Response, its text); `response_ids` gets the id
        of every response the server created for it."""
        parts: list[str] = []
        started = len(shown)
        visible = common.Replayed(on_delta)
        # The last event seen of the background response this round streams: a stream that
        # drops is resumed from there (`retrieve(stream=True, starting_after=...)`).
        cursor: dict[str, Any] = {"id": None, "seq": None}

        async def attempt() -> Any:
            final = None
            if cursor["id"] is not None and cursor["seq"] is not None:
                log.info("resuming the dropped stream of %s", cursor["id"])
                stream = await raw_stream.get_stream(
                    self._client,
                    f"/responses/{cursor['id']}",
                    {"stream": "true", "starting_after": cursor["seq"]},
                )
            else:
                if response_ids and self._background:
                    # The previous attempt's background response may still run: stop it first.
                    await self.cancel(response_ids[-1])
                parts.clear()
                del shown[started:]
                visible.restart()
                stream = await raw_stream.post_stream(self._client, "/responses", params)
            async with stream:
                async for event in stream:
                    kind = event.get("type")
                    if kind == "response.created":
                        response_id = event["response"]["id"]
                        response_ids.append(response_id)
                        if self._background:
                            cursor["id"] = response_id
                        await common.response_started(turn, response_id)
                    elif kind == "response.output_text.delta" or kind == "response.refusal.delta":
                        await common.show_delta(event["delta"], parts, shown, visible)
                    elif kind in ("response.completed", "response.incomplete", "response.failed"):
                        final = Response.construct(**event["response"])
                    elif kind == "error":
                        message = event.get("message") or "no reason given"
                        if event.get("code") == CONTEXT_ERROR:
                            raise _TooLong(message)
                        raise UserError(
                            f"OpenAI reported an error while answering: {message}",
                            log_detail=f"stream error {event.get('code')}",
                        )
                    if cursor["id"] is not None:
                        cursor["seq"] = event.get("sequence_number", cursor["seq"])
            return final

        final = await self._retry.call(attempt)
        if final is None:
            if response_ids and self._background and await self._was_cancelled(response_ids[-1]):
                raise UserError("The answer was cancelled.", log_detail="response cancelled")
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
        return final, "".join(parts)

    async def _was_cancelled(self, response_id: str) -> bool:
        try:
            found = await self._client.responses.retrieve(response_id)
        except openai.APIError:
            return False
        return found.status == "cancelled"

    async def _close_calls(self, conversation_id: str, calls: list[ToolCall], why: str) -> None:
        """Answer function calls that will not run, so the conversation stays usable (the API
        refuses the next turn while a call has no output)."""
        await self._append(conversation_id, [_call_output(c, f"Not run: {why}.") for c in calls])

    async def _append(self, conversation_id: str, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        try:
            for start in range(0, len(items), 20):  # at most 20 items per call
                await self._client.conversations.items.create(
                    conversation_id, items=items[start : start + 20]
                )
        except openai.APIError as exc:
            log.warning("could not close pending tool calls in %s: %s", conversation_id, exc)

    # -- hosted tools -------------------------------------------------------------------------

    async def _hosted_tools(
        self, turn: Turn, container: _Container
    ) -> tuple[list[dict[str, Any]], list[str], str, int]:
        """(tool params, notices, container id or "", containers created)."""
        config = turn.config
        tools: list[dict[str, Any]] = []
        notices: list[str] = []
        container_id, created = "", 0
        for name in common.hosted_tools(config.tools):
            if name == "web_search":
                tools.append({"type": "web_search"})
            elif name == "image_generation":
                tools.append({"type": "image_generation"})
            elif name == "file_search":
                if config.vector_store_id:
                    tools.append(
                        {"type": "file_search", "vector_store_ids": [config.vector_store_id]}
                    )
                else:
                    notices.append(NO_KNOWLEDGE)
            elif name == "code_interpreter":
                container_id, fresh = await self._container(turn, container)
                created += fresh
                tools.append({"type": "code_interpreter", "container": container_id})
        return tools, notices, container_id, created

    async def _container(
        self, turn: Turn, container: _Container, *, replace: bool = False
    ) -> tuple[str, bool]:
        """This conversation's container, a new one when it has none or it expired."""
        known = None if replace else container.id
        if known:
            if await self._containers.alive(known):
                return known, False
            log.info("container of %s expired; starting a new one", turn.key)
        container.id = await self._containers.create(f"switchboard {turn.key}")
        await common.container_created(turn, container.id)
        return container.id, True

    async def _upload(self, container_id: str, files: tuple[InputFile, ...]) -> list[str]:
        """Put the message's data files into the container; return their paths there."""
        return [
            await self._containers.put(container_id, (item.name, item.data, item.mime))
            for item in files
        ]

    async def _collect(self, response: Any, into: _Collected) -> None:
        """Function calls, steps, generated files, citations and billable searches of one
        response's output (web searches: the server's billable count when it gives one)."""
        web_before = into.web_searches
        tool_usage = getattr(response, "tool_usage", None)
        billed = getattr(getattr(tool_usage, "web_search", None), "num_requests", None)
        await self._collect_items(response, into)
        if isinstance(billed, int):
            into.web_searches = web_before + billed

    async def _collect_items(self, response: Any, into: _Collected) -> None:
        for item in response.output or []:
            kind = item.type
            if kind == "function_call":
                into.calls.append(ToolCall(item.call_id, item.name, item.arguments))
            elif kind == "code_interpreter_call":
                logs = [o.logs for o in item.outputs or [] if getattr(o, "type", "") == "logs"]
                detail = "\n".join([item.code or "", *(f"--- output\n{text}" for text in logs)])
                into.steps.append(Step(kind, "ran code", detail[:STEP_DETAIL_CHARS]))
            elif kind == "file_search_call":
                into.file_searches += 1
                into.steps.append(Step(kind, "searched: " + "; ".join(item.queries or [])))
            elif kind == "web_search_call":
                into.web_searches += 1
                query = getattr(item.action, "query", None) or ""
                into.steps.append(Step(kind, f"searched the web: {query}".strip()))
            elif kind == "image_generation_call" and item.result:
                number = sum(f.name.startswith("image-") for f in into.files) + 1
                data = base64.b64decode(item.result)
                into.files.append(OutFile(f"image-{number}.png", "image/png", data))
                prompt = getattr(item, "revised_prompt", None) or ""
                into.steps.append(Step(kind, "generated an image", prompt))
            elif kind == "compaction":
                if not into.compacted:
                    into.steps.append(Step(kind, COMPACTED))
                into.compacted = True
            elif kind == "message":
                for part in item.content or []:
                    for note in getattr(part, "annotations", None) or []:
                        await self._annotation(note, into)

    async def _annotation(self, note: Any, into: _Collected) -> None:
        if note.type == "file_citation":
            into.citations.append(note.filename)
        elif note.type == "container_file_citation":
            if note.file_id in into.seen_files or len(into.files) >= MAX_FILES:
                return
            into.seen_files.add(note.file_id)
            name = note.filename.rsplit("/", 1)[-1] or note.file_id
            try:
                content = await self._containers.read(note.container_id, note.file_id)
            except FileTooLarge as exc:
                log.warning("container file %s not posted: %d bytes", note.file_id, exc.size)
                into.notes.append(
                    f"({name} is larger than the {FILE_MAX_BYTES // MB} MB I post here, so I "
                    "left it in code interpreter's container; ask for a smaller file.)"
                )
                return
            mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
            into.files.append(OutFile(name, mime, content))


def _call_output(call: ToolCall, output: str) -> dict[str, Any]:
    return {"type": _OUTPUT, "call_id": call.call_id, "output": output}


def _from_last_compaction(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The part of a conversation the model still reads: from its last compaction item on."""
    for index in range(len(items) - 1, -1, -1):
        if items[index].get("type") == "compaction":
            return items[index:]
    return items


def _content(turn: Turn, uploaded: list[str]) -> list[dict[str, Any]]:
    # The earlier messages and the author each go in a text part of their own, before the words.
    parts: list[dict[str, Any]] = [
        {"type": "input_text", "text": part} for part in (turn.context, turn.speaker) if part
    ]
    text = turn.text
    if uploaded:
        listing = ", ".join(uploaded)
        text = f"{text}\n\n(Files attached for code interpreter: {listing})".strip()
    if text or not (turn.images or parts):
        parts.append({"type": "input_text", "text": text})
    parts += [
        {"type": "input_image", "image_url": url, "detail": turn.image_detail}
        for url in turn.images
    ]
    return parts


def _with_tools(usage: Usage, collected: _Collected, containers: int) -> Usage:
    """Tool fees: file searches, web searches and container sessions started."""
    extra = Usage(
        model=usage.model,
        file_search_calls=collected.file_searches,
        web_search_calls=collected.web_searches,
        container_sessions=containers,
    )
    return common.add_usage(usage, extra)


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
