"""The console adapter: chat with the configured assistant from a terminal.

Interactive (a TTY): a one-line banner, then answers stream as they arrive. Piped: one message
per input line, each answer printed whole on stdout (the banner and logs go to stderr), and the
program exits once the last answer is printed after end of input; `failures` counts the lines
that got no answer (an error instead, or a refusal), for the exit status. Lines starting with
`/` are commands (`/reset`); `/help` lists them, from the command table.

Log lines are held while a line is being answered and written after it (`LogGate`), so they
never land inside an answer; an error the user was shown as the answer is not logged again.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import itertools
import threading
import uuid
from typing import TYPE_CHECKING, TextIO

from adapters.console.logs import LogGate
from bot.core.commands import COMMANDS, CommandSpec
from bot.core.ledger import Ended, LedgerNote, Run
from bot.core.types import DIRECT, Actor, CommandCall, ConversationKey, Inbound, Reply

if TYPE_CHECKING:
    from bot.core.dispatcher import Dispatcher

PLATFORM = "console"
KEY = ConversationKey(PLATFORM, "local", "console")
PROMPT = "you> "
HELP = "help"
# A run ending so means the line got no answer (`interrupted` is a shutdown, not a failure).
FAILED = frozenset({"failed", "expired"})


def help_text(available: frozenset[str]) -> str:
    """The commands of the command table, one a line, as typed in the console."""
    lines = ["Type a message to chat. Commands:"]
    for spec in COMMANDS:
        usage = f"/{spec.name} {spec.usage}".rstrip()
        note = _console_note(spec, available)
        lines.append(f"  {usage} - {spec.description}{note}")
    lines.append(f"  /{HELP} - this list")
    lines.append("Ctrl-D (end of input) quits.")
    return "\n".join(lines)


def _console_note(spec: CommandSpec, available: frozenset[str]) -> str:
    if spec.name not in available:
        return " (not in this build)"
    if any(o.kind == "file" and o.required for o in spec.options):
        return " (needs a file: not in the console)"
    return ""


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
        self,
        dispatcher: Dispatcher,
        stdin: TextIO,
        stdout: TextIO,
        *,
        interactive: bool,
        stderr: TextIO | None = None,
        logs: LogGate | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self._stdin = stdin
        self._stdout = stdout
        self._stderr = stderr
        self._logs = logs or LogGate()
        self.interactive = interactive
        self._actor = Actor(id=_user_name(), name=_user_name(), is_admin=True)
        self._ids = itertools.count(1)
        self._session = uuid.uuid4().hex[:12]  # event ids must stay unique across runs (dedupe)
        self._ended: list[str] = []  # how the runs of the line being answered ended
        self.failures = 0  # lines that got no answer
        dispatcher.register_outbox(PLATFORM, self)

    def on_ledger(self, run: Run, note: LedgerNote) -> None:
        """A ledger listener: how the console's runs end (the line's outcome)."""
        if isinstance(note, Ended) and run.key.platform == PLATFORM:
            self._ended.append(note.status)

    def banner(self, line: str) -> None:
        """The start-up line, with how to get help: on the terminal, or (piped) on stderr, so
        stdout holds only the answers."""
        text = f"{line}. /{HELP} lists the commands; Ctrl-D quits.\n"
        if self.interactive or self._stderr is None:
            self.write(text)
        else:
            self._stderr.write(text)
            self._stderr.flush()

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
            text = line.rstrip("\r\n")
            if text.strip().lower() == f"/{HELP}":
                self.write(help_text(self._dispatcher.commands.names) + "\n")
                continue
            # One line at a time, also when piped: a transcript, so a /reset on the next line
            # comes after the answer before it instead of cancelling it.
            self._logs.hold()
            try:
                await self._answer(self._event(text), stop)
            finally:
                self._logs.release()

    async def _answer(self, event: Inbound | CommandCall, stop: asyncio.Event) -> None:
        self._ended.clear()
        await self._dispatcher.submit(event)
        idle = asyncio.ensure_future(self._dispatcher.wait_idle())
        halt = asyncio.ensure_future(stop.wait())
        await asyncio.wait({idle, halt}, return_when=asyncio.FIRST_COMPLETED)
        idle.cancel()
        halt.cancel()
        if not stop.is_set() and not self._answered(event):
            self.failures += 1

    def _answered(self, event: Inbound | CommandCall) -> bool:
        """A message is answered when its run completed; a command unless it is unknown or its
        run failed. Refusals (an empty message, a budget) open no run: not answered."""
        if any(status in FAILED for status in self._ended):
            return False
        if isinstance(event, CommandCall):
            return event.name in self._dispatcher.commands.names
        return "completed" in self._ended

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
