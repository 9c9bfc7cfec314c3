"""Function tools run in worker processes, off the event loop, with a hard timeout.

A tool is ordinary Python: a plugin (or a built-in with a bug) can loop, compute for minutes or
block on I/O without awaiting. Run on the event loop, that freezes every conversation, and
`asyncio.wait_for` cannot interrupt code that never yields. So tools run in separate processes:

- each worker process builds its own registry (the built-ins and every installed plugin, the
  same as the bot's) and runs one call at a time, by tool name;
- the bot waits for the answer in a thread, so the event loop stays free;
- a call that outlives its timeout gets its worker killed (SIGKILL: nothing can ignore it) and
  replaced by a fresh one on the next call; a worker that dies is replaced the same way;
- workers are fresh interpreters (`python -c`, not a fork: no copy of the bot's threads,
  sockets or memory), started without the bot's secrets in their environment, at most `size`
  of them, each limited to `MEMORY_LIMIT` of address space; they hold no database handle
  (`ToolContext.db` is None).

Tools that must touch the bot's own state (`channel_usage` reads the database) are marked
`in_process` and run on the loop as before: only built-ins may be (plugins never are).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from bot.core.types import ConversationKey
from bot.tools.errors import ToolError

log = logging.getLogger(__name__)

MEMORY_LIMIT = 1024 * 1024 * 1024  # address space of one worker (bytes)


class WorkerFailed(Exception):
    """The worker died or could not run the call (not the tool's own error)."""


@dataclass(frozen=True, slots=True)
class Call:
    tool: str
    args: dict[str, Any]
    key: ConversationKey
    user_id: str


def _limit_memory() -> None:
    with contextlib.suppress(Exception):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


SECRET_PREFIXES = ("OPENAI_", "SLACK_", "DISCORD_", "SWITCHBOARD_", "DATABASE_")
_BOOT = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[2]); "
    "from bot.tools.workers import main; main(int(sys.argv[1]))"
)


def main(fd: int) -> None:
    """The worker process's entry point (see `_Worker`)."""
    serve(Connection(fd))


def serve(conn: Connection) -> None:
    """The worker's loop: receive a `Call`, run the tool, send back (kind, text)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bot stops its workers itself
    _limit_memory()
    from bot.tools.builtins import BUILTIN_TOOLS
    from bot.tools.registry import ToolContext, ToolRegistry

    registry = ToolRegistry(BUILTIN_TOOLS)  # as `bot.tools.build_registry` does
    registry.load_plugins()
    while True:
        try:
            call = conn.recv()
        except (EOFError, OSError):
            return
        try:
            tool = registry.get(call.tool)
            if tool is None:
                conn.send(("failed", f"no tool named {call.tool!r} in the worker"))
                continue
            context = ToolContext(call.key, call.user_id, None)  # type: ignore[arg-type]
            output = asyncio.run(tool.run(call.args, context))
            conn.send(("ok", str(output)))
        except ToolError as exc:
            conn.send(("tool_error", exc.message))
        except MemoryError:
            conn.send(("failed", "it ran out of memory"))
        except BaseException as exc:  # a tool's exception is reported, the worker lives on
            conn.send(("failed", type(exc).__name__))


class _Worker:
    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_PREFIXES)}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-P", "-c", _BOOT, str(theirs.fileno()), json.dumps(sys.path)],
                pass_fds=(theirs.fileno(),),
                env=env,
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())

    def call(self, call: Call, timeout: float) -> tuple[str, str] | None:
        """Blocking: send `call` and wait up to `timeout` for its answer (None: no answer)."""
        self.conn.send(call)
        if not self.conn.poll(timeout):
            return None
        answer: tuple[str, str] = self.conn.recv()
        return answer

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()
        with contextlib.suppress(Exception):
            self.process.wait(5)
        with contextlib.suppress(Exception):
            self.conn.close()


class ToolWorkers:
    """A small pool of tool worker processes, started on first use."""

    def __init__(self, size: int = 2) -> None:
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._closed = False

    async def run(self, call: Call, timeout: float) -> str:  # noqa: ASYNC109 (it kills)
        """The tool's output; `ToolError` for the tool's own error, `TimeoutError` when it ran
        out of time (its worker is killed), `WorkerFailed` when the worker could not run it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with asyncio.timeout(timeout):
            await self._slots.acquire()
        try:
            worker = self._idle.pop() if self._idle else await asyncio.to_thread(self._start)
            self._busy.add(worker)
            left = max(0.0, deadline - loop.time())
            try:
                answer = await asyncio.to_thread(worker.call, call, left)
            except (EOFError, OSError, asyncio.CancelledError) as exc:
                self._busy.discard(worker)
                await asyncio.to_thread(worker.kill)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                raise WorkerFailed("the tool's worker process stopped") from None
            self._busy.discard(worker)
            if answer is None:
                log.warning("tool %s ran out of time: its worker process is killed", call.tool)
                await asyncio.to_thread(worker.kill)
                raise TimeoutError
            if self._closed:
                await asyncio.to_thread(worker.kill)
            else:
                self._idle.append(worker)
        finally:
            self._slots.release()
        kind, text = answer
        if kind == "ok":
            return text
        if kind == "tool_error":
            raise ToolError(text)
        raise WorkerFailed(text)

    @property
    def busy(self) -> tuple[_Worker, ...]:
        """The workers running a call now."""
        return tuple(self._busy)

    def _start(self) -> _Worker:
        return _Worker()

    async def close(self) -> None:
        self._closed = True
        workers = [*self._idle, *self._busy]
        self._idle.clear()
        for worker in workers:
            await asyncio.to_thread(worker.kill)
