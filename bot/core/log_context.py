"""What a log line is about: the conversation, event and run being handled, kept in context
variables (they follow the task that handles the event) so every line logged meanwhile, by any
module, can carry them (`LOG_FORMAT=json` adds them as fields)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_conversation: ContextVar[str] = ContextVar("log_conversation", default="")
_event: ContextVar[str] = ContextVar("log_event", default="")
_run: ContextVar[int | None] = ContextVar("log_run", default=None)


@contextlib.contextmanager
def about(conversation: object, event: str) -> Iterator[None]:
    """Lines logged inside concern this conversation and event."""
    tokens = (_conversation.set(str(conversation)), _event.set(event), _run.set(None))
    try:
        yield
    finally:
        _conversation.reset(tokens[0])
        _event.reset(tokens[1])
        _run.reset(tokens[2])


def about_run(run_id: int) -> None:
    """Lines logged from here on in this task concern this run (until the event's scope ends)."""
    _run.set(run_id)


def current() -> dict[str, object]:
    """The fields that apply now (none outside an event's handling)."""
    fields: dict[str, object] = {}
    if conversation := _conversation.get():
        fields["conversation"] = conversation
    if event := _event.get():
        fields["event"] = event
    if (run := _run.get()) is not None:
        fields["run"] = run
    return fields
