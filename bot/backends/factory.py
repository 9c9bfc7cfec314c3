"""Everything on the OpenAI side, built over one client: the one place that looks at
`settings.backend` (Responses API or Chat Completions)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.backends.audio import AudioBackend
from bot.backends.base import Backend
from bot.backends.chat_completions import ChatCompletionsBackend
from bot.backends.client import OpenAIClient
from bot.backends.completion import ChatCompleter, Completer, ResponsesCompleter
from bot.backends.conversations import ServerConversations
from bot.backends.files import KnowledgeFiles
from bot.backends.images import ImageBackend
from bot.backends.models import ModelCatalog
from bot.backends.moderation import ModerationBackend
from bot.backends.realtime_speech import RealtimeSpeechEngine
from bot.backends.responses import ResponsesBackend
from bot.backends.retry import RetryPolicy, retry_policy
from bot.backends.speech import AudioSpeechEngine, SpeechEngine, engine_kind
from bot.core.config import Settings
from bot.tools import ToolRegistry, ToolRunner
from storage.db import Database


@dataclass(frozen=True, slots=True)
class Backends:
    """What the features are given instead of a client."""

    chat: Backend
    completer: Completer  # one-shot answers on the same API as `chat`
    # Server-side conversations to delete on `/reset` (None: the backend keeps none).
    conversations: ServerConversations | None
    images: ImageBackend
    audio: AudioBackend
    speech: SpeechEngine
    knowledge: KnowledgeFiles
    models: ModelCatalog
    moderation: ModerationBackend


def make_backend(
    settings: Settings,
    client: OpenAIClient,
    db: Database,
    registry: ToolRegistry | None = None,
    retry: RetryPolicy | None = None,
) -> Backend:
    """The chat backend alone (what `make_backends` puts in `Backends.chat`)."""
    return _chat_side(settings, client, db, registry, retry)[0]


def make_backends(
    settings: Settings,
    client: OpenAIClient,
    db: Database,
    registry: ToolRegistry,
    retry: RetryPolicy,
) -> Backends:
    """`retry`: the app's shared policy (and so its circuit breaker). `db` only gives function
    tools their context and the chat backend its history: backends write no storage."""
    chat, completer, conversations = _chat_side(settings, client, db, registry, retry)
    return Backends(
        chat=chat,
        completer=completer,
        conversations=conversations,
        images=ImageBackend(client, retry),
        audio=AudioBackend(client, retry),
        speech=make_speech_engine(settings.speech_engine, client, settings.speech_model, retry),
        knowledge=KnowledgeFiles(client, retry),
        models=ModelCatalog(client, retry),
        moderation=ModerationBackend(client, retry),
    )


def make_speech_engine(
    name: str, client: OpenAIClient, model: str, retry: RetryPolicy
) -> SpeechEngine:
    """The engine `SWITCHBOARD_SPEECH_ENGINE=name` speaks `model` with: the Realtime API for
    `gpt-realtime*` models (or always, with `realtime`), else `/audio/speech`."""
    if engine_kind(name, model) == "realtime":
        return RealtimeSpeechEngine(client, model, retry)
    return AudioSpeechEngine(client, model, retry)


def _chat_side(
    settings: Settings,
    client: OpenAIClient,
    db: Database,
    registry: ToolRegistry | None,
    retry: RetryPolicy | None,
) -> tuple[Backend, Completer, ServerConversations | None]:
    retry = retry or retry_policy(settings)
    tools = ToolRunner(
        registry if registry is not None else ToolRegistry(),
        timeout=settings.tool_timeout_seconds,
        max_rounds=settings.max_tool_rounds,
    )
    if settings.backend == "chat":
        chat = ChatCompletionsBackend(
            client,
            db,
            retry,
            history_tokens=settings.history_tokens,
            tools=tools,
            context_window=settings.context_window,
        )
        return chat, ChatCompleter(client, retry), None
    responses = ResponsesBackend(
        client,
        db,
        retry,
        tools=tools,
        background=settings.background,
        context_window=settings.context_window,
    )
    return responses, ResponsesCompleter(client, retry), ServerConversations(client, retry)
