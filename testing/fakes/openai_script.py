"""What the fake model does in one generation, when a test wants more than text.

`FakeOpenAI.answer` may return a plain string (the answer text) or a `ModelOutput`:

    fake.answer = lambda turn: (
        ModelOutput(calls=[FunctionCall("calculate", {"expression": "2+2"})])
        if not turn.tool_outputs
        else f"it is {turn.tool_outputs[0][1]}"
    )

Hosted tool runs (`CodeRun`, `FileSearch`, `WebSearch`, `ImageGen`) are only allowed when the
request offers the matching tool (else the fake answers 400, as a real model could not have
called it). Function calls are emitted even for names the request did not offer, so a test can
exercise a client's "unknown tool" path; with ``tool_choice: "none"`` they are dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FunctionCall:
    """A function call item / chat tool call. ``arguments`` given as a dict is JSON-encoded;
    a string is sent as it is (use one to send invalid JSON)."""

    name: str
    arguments: str | dict[str, Any] = "{}"
    call_id: str = ""

    @property
    def arguments_text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass(frozen=True)
class CodeRun:
    """A ``code_interpreter_call`` in the request's container: ``files`` (name, bytes) are
    created there and cited in the answer text with ``container_file_citation`` annotations."""

    code: str
    logs: str = ""
    files: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class FileSearch:
    """A ``file_search_call``; ``cite`` names files cited with ``file_citation`` annotations."""

    queries: tuple[str, ...]
    cite: tuple[str, ...] = ()


@dataclass(frozen=True)
class WebSearch:
    query: str


@dataclass(frozen=True)
class ImageGen:
    """An ``image_generation_call`` whose result is a small PNG."""

    revised_prompt: str = ""


HostedRun = CodeRun | FileSearch | WebSearch | ImageGen


@dataclass(frozen=True)
class ModelOutput:
    text: str = ""
    calls: tuple[FunctionCall, ...] | list[FunctionCall] = ()
    hosted: tuple[HostedRun, ...] | list[HostedRun] = field(default_factory=tuple)
