"""Small pieces the backends share: usage summed over the rounds of a turn, the run's events
reported only when there is a run, the names of the hosted tools, and files and retired
endpoints of the SDK."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

from bot.backends.base import OnDelta, Turn
from bot.core.ledger import ResponseStarted, ToolRound, ToolRoundDone
from bot.core.types import Usage

T = TypeVar("T")
HOSTED_TOOLS: Final = ("code_interpreter", "file_search", "web_search", "image_generation")
# A file to send: (name, bytes, MIME type).
Upload = tuple[str, bytes, str]


def add_usage(total: Usage, more: Usage) -> Usage:
    summed = {
        f.name: getattr(total, f.name) + getattr(more, f.name)
        for f in dataclasses.fields(Usage)
        if f.name != "model"
    }
    return Usage(model=total.model, **summed)


def hosted_tools(tools: Sequence[str]) -> list[str]:
    return [t for t in HOSTED_TOOLS if t in tools]


async def response_started(turn: Turn, response_id: str) -> None:
    if turn.emit is not None and response_id:
        await turn.emit(ResponseStarted(response_id))


async def tools_running(turn: Turn, names: Sequence[str]) -> None:
    if turn.emit is not None:
        await turn.emit(ToolRound(tuple(names)))


async def tools_done(turn: Turn) -> None:
    if turn.emit is not None:
        await turn.emit(ToolRoundDone())


def join_notices(*notices: str) -> str:
    return "\n".join(n for n in notices if n)


async def show_delta(delta: str, parts: list[str], shown: list[str], on_delta: OnDelta) -> None:
    """Stream one text delta of this round (`parts`) and of the whole turn (`shown`); a later
    round's first text is set apart from what an earlier round showed."""
    if not parts and shown and not shown[-1].endswith("\n"):
        shown.append("\n\n")
        await on_delta("\n\n")
    parts.append(delta)
    shown.append(delta)
    await on_delta(delta)


def retired(call: Callable[[], Awaitable[T]]) -> Awaitable[T]:
    """Start an SDK call marked deprecated (the translations endpoint, used only when an
    operator opts in) without its DeprecationWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return call()


async def conversation_created(turn: Turn, backend_conversation_id: str) -> None:
    if turn.server_ids is not None:
        await turn.server_ids.conversation_created(backend_conversation_id)


async def container_created(turn: Turn, container_id: str) -> None:
    if turn.server_ids is not None:
        await turn.server_ids.container_created(container_id)
