"""The one small protocol every backend implements, and the values it exchanges."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.core.assistant_config import AssistantConfig
from bot.core.ledger import Emit
from bot.core.types import ConversationKey, OutFile, Usage
from storage.messages import HistoryMessage

OnDelta = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class InputFile:
    """A data file attached to the message (CSV, XLSX, PDF…), for code interpreter."""

    name: str
    mime: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the model did on the way to an answer, for `/steps`: `kind` is the item type
    (code_interpreter_call, function_call, file_search_call, web_search_call, …), `title` one
    line (the function and its arguments, the search queries), `detail` the code or the output."""

    kind: str
    title: str
    detail: str = ""


class ServerIds(Protocol):
    """Where a backend reports the server-side objects it makes for a conversation, as soon as
    they exist (the caller keeps them, also when the answer then fails or is stopped)."""

    async def conversation_created(self, backend_conversation_id: str) -> None:
        """A server-side conversation now holds this conversation's history."""
        ...

    async def container_created(self, container_id: str) -> None:
        """Code interpreter runs in this container for the conversation from now on."""
        ...


@dataclass(frozen=True, slots=True)
class Turn:
    """One user turn to answer: what was said, by whom, where, under which assistant config."""

    key: ConversationKey
    user_id: str
    text: str
    config: AssistantConfig
    conversation_id: int
    backend_conversation_id: str | None = None
    # The conversation was made for this turn, so it holds no history yet.
    fresh: bool = False
    # The conversation's code interpreter container, if it has one (looked up by the caller
    # when the assistant has code interpreter).
    container_id: str | None = None
    # Images attached to the message, as data URLs, and the channel's vision detail setting.
    images: tuple[str, ...] = ()
    image_detail: str = "auto"
    # Data files for code interpreter (when the assistant has that tool).
    data_files: tuple[InputFile, ...] = ()
    # Where the backend reports what happens (response id, tool rounds): the run's ledger.
    emit: Emit | None = None
    server_ids: ServerIds | None = None
    # In a group conversation: who wrote `text` ("Alice (<@U123>):"), and the earlier messages
    # of the thread or the message replied to, rendered for the model. Both go to the model
    # with this turn (as text before `text`) and stay in the conversation's history with it.
    speaker: str = ""
    context: str = ""

    def parts(self) -> list[str]:
        """The texts of this turn's user message, in order (empty ones left out)."""
        return [part for part in (self.context, self.speaker, self.text) if part]

    def full_text(self) -> str:
        """The user message as one text (what the chat backend stores as history)."""
        return "\n".join(self.parts())


@dataclass(frozen=True, slots=True)
class TurnResult:
    text: str
    usage: Usage
    response_id: str | None = None
    # History to persist with the run (chat backend only).
    history: tuple[HistoryMessage, ...] = ()
    # Shown after the answer, e.g. "(cut short: the answer hit the output token limit)".
    notice: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    # Files the model made (code interpreter plots and CSVs), posted after the answer.
    files: tuple[OutFile, ...] = ()
    # What the model did (code run, tools called, searches), for `/steps`.
    steps: tuple[Step, ...] = ()
    # File names the answer cited (file search), shown under it as sources.
    citations: tuple[str, ...] = ()
    system_fingerprint: str | None = None  # chat backend, when a seed was sent


class Backend(Protocol):
    name: str

    async def reply(self, turn: Turn, on_delta: OnDelta) -> TurnResult:
        """Answer `turn`, calling `on_delta` with each text delta as it arrives. Raise
        `bot.core.errors.UserError` (or an OpenAI SDK exception: `bot.backends.errors`
        explains it) on failure. Server-side objects made meanwhile are reported to
        `turn.server_ids`; the backend writes no storage."""
        ...

    async def cancel(self, response_id: str) -> None:
        """Stop a response running server-side (background mode); a no-op where there is none."""
        ...

    async def close(self) -> None:
        """Clean up what the backend keeps server-side for later turns (before the client
        closes)."""
        ...

    async def recover(self, response_id: str) -> TurnResult | None:
        """After a crash: the finished answer of `response_id` if the server completed it
        meanwhile, else None (still running, failed, unknown, or a backend without this)."""
        ...
