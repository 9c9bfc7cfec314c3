"""The console adapter: chat with the configured assistant from a terminal.

Interactive (a TTY): answers stream as they arrive. Piped: one message per input line, each answer
printed whole, and the program exits once the last answer is printed after end of input.
Lines starting with `/` are commands (`/reset`).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import itertools
import threading
import uuid
from typing import TYPE_CHECKING, TextIO

from bot.core.types import DIRECT, Actor, CommandCall, ConversationKey, Inbound, Reply

if TYPE_CHECKING:
    from bot.core.dispatcher import Dispatcher

PLATFORM = "console"
KEY = ConversationKey(PLATFORM, "local", "console")
PROMPT = "you> "


class ConsoleStream:
    def __init__(self, console: ConsoleAdapter) -> None:
        self._console = console
        self._shown: list[str] = []

    async def append(self, delta: str) -> None:
        if self._console.interactive:
            if not self._shown:
                self._console.write("assistant> ")
            self._console.write(delta)
        self._shown.append(delta)

    async def finish(self, text: str) -> None:
        shown = "".join(self._shown)
        if self._console.interactive:
            if not shown:
                self._console.write("assistant> ")
            self._console.write(
                (text[len(shown) :] if text.startswith(shown) else f"\n{text}") + "\n"
            )
        else:
            self._console.write(text + "\n")

    async def abort(self) -> None:
        shown = "".join(self._shown)
        if shown:
            tail = " …(interrupted)\n"
            self._console.write(tail if self._console.interactive else shown + tail)


class ConsoleAdapter:
    def __init__(
        self, dispatcher: Dispatcher, stdin: TextIO, stdout: TextIO, *, interactive: bool
    ) -> None:
        self._dispatcher = dispatcher
        self._stdin = stdin
        self._stdout = stdout
        self.interactive = interactive
        self._actor = Actor(id=_user_name(), name=_user_name(), is_admin=True)
        self._ids = itertools.count(1)
        self._session = uuid.uuid4().hex[:12]  # event ids must stay unique across runs (dedupe)
        dispatcher.register_outbox(PLATFORM, self)

    def write(self, text: str) -> None:
        self._stdout.write(text)
        self._stdout.flush()

    async def send(self, reply: Reply) -> None:
        prefix = "assistant> " if self.interactive else ""
        self.write(f"{prefix}{reply.text}\n")

    def open_stream(self, key: ConversationKey, in_reply_to: str, actor: Actor) -> ConsoleStream:
        return ConsoleStream(self)

    async def run(self, stop: asyncio.Event) -> None:
        """Read lines until end of input or `stop`; then wait for the answers still due."""
        lines = _read_lines_in_thread(self._stdin)
        while not stop.is_set():
            if self.interactive:
                self.write(PROMPT)
            line_task = asyncio.ensure_future(lines.get())
            stop_task = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait(
                {line_task, stop_task}, return_when=asyncio.FIRST_COMPLETED
            )
            stop_task.cancel()
            if line_task not in done:
                line_task.cancel()
                break
            line = line_task.result()
            if line is None:
                break
            # One line at a time, also when piped: a transcript, so a /reset on the next line
            # comes after the answer before it instead of cancelling it.
            await self._dispatcher.submit(self._event(line.rstrip("\r\n")))
            idle = asyncio.ensure_future(self._dispatcher.wait_idle())
            halt = asyncio.ensure_future(stop.wait())
            await asyncio.wait({idle, halt}, return_when=asyncio.FIRST_COMPLETED)
            idle.cancel()
            halt.cancel()

    def _event(self, text: str) -> Inbound | CommandCall:
        event_id = f"console-{self._session}-{next(self._ids)}"
        if text.startswith("/") and len(text) > 1:
            name, _, rest = text[1:].partition(" ")
            return CommandCall(KEY, self._actor, name.lower(), event_id, text=rest.strip())
        return Inbound(KEY, self._actor, text, event_id, message_id=event_id, addressing=DIRECT)


def _read_lines_in_thread(stdin: TextIO) -> asyncio.Queue[str | None]:
    """Blocking reads in a daemon thread, so a pending read never keeps the process alive."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def reader() -> None:
        try:
            for line in stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=reader, name="console-stdin", daemon=True).start()
    return queue


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "console"
