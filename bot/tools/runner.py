"""Running the function calls a model asked for: arguments parsed and validated against the
tool's schema before anything runs, calls of one round run concurrently with a per-call
timeout, and every failure (bad JSON, schema violation, unknown tool, exception, timeout)
turned into an error output the model reads, never an exception that breaks the turn."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from jsonschema.exceptions import best_match

from bot.backends.base import Step
from bot.tools.errors import ToolError
from bot.tools.registry import Tool, ToolContext, ToolRegistry, function_names
from bot.tools.workers import Call, ToolWorkers, WorkerFailed

log = logging.getLogger(__name__)

STEP_TITLE_CHARS = 200
STEP_DETAIL_CHARS = 2_000


@dataclass(frozen=True, slots=True)
class ToolCall:
    call_id: str
    name: str
    arguments: str  # JSON text, as the model wrote it


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    call: ToolCall
    output: str
    ok: bool

    def step(self) -> Step:
        return Step(
            kind="function_call",
            title=_clip(f"{self.call.name}({_compact(self.call.arguments)})", STEP_TITLE_CHARS),
            detail=_clip(self.output, STEP_DETAIL_CHARS),
        )


class ToolRunner:
    """The registry plus the deployment's limits; shared by both backends."""

    def __init__(
        self,
        registry: ToolRegistry,
        *,
        timeout: float = 20.0,
        max_rounds: int = 5,
        max_output_chars: int = 16_000,
        workers: ToolWorkers | None = None,
    ) -> None:
        """`workers`: the processes tools run in (`bot.tools.workers`); one pool per runner
        unless the caller shares one (and closes it)."""
        self.workers = workers or ToolWorkers()
        self.registry = registry
        self.timeout = timeout
        self.max_rounds = max_rounds
        self.max_output_chars = max_output_chars

    def offered(self, tools: Iterable[str]) -> list[Tool]:
        """The registry's tools that a channel's `tools` setting enables (unknown names, e.g.
        a plugin since uninstalled, are logged and left out)."""
        found = []
        for name in function_names(tools):
            tool = self.registry.get(name)
            if tool is None:
                log.warning("the channel enables the function %r, which no tool provides", name)
            else:
                found.append(tool)
        return found

    @property
    def cap_message(self) -> str:
        return (
            f"Not run: this answer already used {self.max_rounds} rounds of tool calls, the "
            "most allowed. Answer now with what you have, without calling tools."
        )

    @property
    def cap_notice(self) -> str:
        """Shown to the user when the model had no answer even after the cap."""
        return (
            f"(I stopped after {self.max_rounds} rounds of tool calls without reaching a final "
            "answer.)"
        )

    async def run(
        self, calls: Sequence[ToolCall], context: ToolContext, allowed: Iterable[str]
    ) -> list[ToolOutcome]:
        """Every call's outcome, in the order of `calls` (they run concurrently)."""
        names = frozenset(allowed)
        return list(await asyncio.gather(*(self._one(c, context, names) for c in calls)))

    async def _one(
        self, call: ToolCall, context: ToolContext, allowed: frozenset[str]
    ) -> ToolOutcome:
        tool = self.registry.get(call.name) if call.name in allowed else None
        if tool is None:
            offered = ", ".join(sorted(allowed)) or "none"
            return self._failed(call, f"there is no tool named {call.name!r} (tools: {offered})")
        try:
            args = json.loads(call.arguments or "{}")
        except ValueError as exc:
            return self._failed(call, f"the arguments are not valid JSON ({exc.msg})")
        if not isinstance(args, dict):
            return self._failed(call, "the arguments must be a JSON object")
        violation = best_match(self.registry.validator(tool.name).iter_errors(args))
        if violation is not None:
            where = "/".join(str(p) for p in violation.absolute_path) or "arguments"
            return self._failed(call, f"invalid arguments at {where}: {violation.message}")
        started = time.monotonic()
        try:
            if tool.in_process:
                output = await asyncio.wait_for(tool.run(args, context), self.timeout)
            else:
                job = Call(tool.name, args, context.key, context.user_id)
                output = await self.workers.run(job, self.timeout)
        except ToolError as exc:
            return self._failed(call, exc.message)
        except TimeoutError:
            return self._failed(call, f"the tool did not finish within {self.timeout:g} seconds")
        except WorkerFailed as exc:
            log.error("tool %s failed in its worker process: %s", call.name, exc)
            return self._failed(call, f"the tool failed ({exc})")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("tool %s raised", call.name)
            return self._failed(call, f"the tool failed ({type(exc).__name__})")
        log.info("tool %s ran in %.2fs", call.name, time.monotonic() - started)
        return ToolOutcome(call, _clip(str(output), self.max_output_chars), ok=True)

    def _failed(self, call: ToolCall, reason: str) -> ToolOutcome:
        log.info("tool call %s refused or failed: %s", call.name, reason)
        return ToolOutcome(call, f"error: {reason}", ok=False)


def _compact(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return arguments


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
