"""`/cancel` and `/steps`: the commands about the answers themselves."""

from __future__ import annotations

import asyncio
import contextlib

from bot.core.running import RunningAnswers
from bot.core.types import CommandCall, Reply
from storage import runs
from storage.db import Database
from storage.steps import StepRow, load_steps

CANCEL_WAIT = 30.0  # seconds /cancel waits for the answer to close before replying anyway
DETAIL_LIMIT = 1_500  # characters of one step's code or output shown
TOTAL_LIMIT = 12_000  # characters of the whole /steps message (the adapter splits it)

KIND_NAMES = {
    "code_interpreter_call": "Ran code",
    "function_call": "Called a tool",
    "file_search_call": "Searched files",
    "web_search_call": "Searched the web",
    "mcp_call": "Called a connector",
    "image_generation_call": "Generated an image",
}


def actor_label(call: CommandCall) -> str:
    return call.actor.name or call.actor.id


class RunCommands:
    def __init__(self, db: Database, running: RunningAnswers) -> None:
        self._db = db
        self._running = running

    async def cancel(self, call: CommandCall) -> Reply:
        """Stop the answer in progress here. Registered unordered: it must not wait in the lane
        behind the very answer it stops. Sent at channel level (no thread), it stops only the
        caller's own answer, and asks which when they have several running."""
        running = None
        if call.key.thread:
            running = self._running.find(call.key, call.actor.id)
        else:
            mine = self._running.of_actor(call.key, call.actor.id)
            if len(mine) > 1:
                text = (
                    f"You have {len(mine)} answers in progress in this channel's threads; send "
                    "/cancel in the thread of the one to stop."
                )
                return Reply(key=call.key, text=text, actor_id=call.actor.id, ephemeral=True)
            running = mine[0] if mine else None
            if running is None and self._running.find(call.key, call.actor.id) is not None:
                text = "The answer in progress here is for someone else; only they can cancel it."
                return Reply(key=call.key, text=text, actor_id=call.actor.id, ephemeral=True)
        if running is None or not running.stop("cancelled", by=actor_label(call)):
            text = "Nothing is being answered here right now, so there is nothing to cancel."
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(running.finished.wait(), CANCEL_WAIT)
            text = "Stopped the answer in progress."
        return Reply(key=call.key, text=text, actor_id=call.actor.id, ephemeral=True)

    async def steps(self, call: CommandCall) -> Reply:
        run = await runs.last_answer(self._db, call.key, call.actor.id)
        if run is None:
            text = "I haven't answered anything here yet, so there are no steps to show."
        else:
            text = render_steps(run.status, await load_steps(self._db, run.id))
        return Reply(key=call.key, text=text, actor_id=call.actor.id, ephemeral=True)


def render_steps(status: str, steps: list[StepRow]) -> str:
    """A readable account of `steps`: one numbered line each, code and outputs in code blocks,
    long parts truncated."""
    if status in ("queued", "in_progress", "requires_action"):
        head = "The last answer here is still being written; steps so far:"
    elif status != "completed":
        head = f"The last answer here ended {status}; steps recorded:"
    else:
        head = "What I did for the last answer here:"
    if not steps:
        if status == "completed":
            return (
                "For the last answer here I ran no code and called no tools: I answered directly."
            )
        return f"{head.rstrip(':')}: none."
    lines = [head]
    for number, (kind, title, detail) in enumerate(steps, 1):
        name = KIND_NAMES.get(kind, kind.replace("_", " "))
        lines.append(f"{number}. *{name}*" + (f": {_one_line(title)}" if title else ""))
        if detail.strip():
            lines.append(_block(detail))
    text = "\n".join(lines)
    if len(text) > TOTAL_LIMIT:
        text = text[:TOTAL_LIMIT]
        if text.count("```") % 2:
            text += "\n```"
        text += "\n…(more steps left out)"
    return text


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _block(detail: str) -> str:
    body = detail.rstrip()
    if len(body) > DETAIL_LIMIT:
        body = body[:DETAIL_LIMIT] + f"\n… ({len(detail) - DETAIL_LIMIT:,} more characters)"
    body = body.replace("```", "`\u200b``")  # a fence inside would end the block early
    return f"```\n{body}\n```"
