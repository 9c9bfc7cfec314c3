"""Shared plumbing of the media capabilities: one metered run per OpenAI media call (kind,
model, usage, cost), friendly errors, moderation of what they send on, and the wiring `app.py`
uses."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from openai import AsyncOpenAI

from bot.backends.retry import RetryPolicy
from bot.backends.speech import SpeechEngine, make_speech_engine
from bot.core.assistant_config import resolve_assistant
from bot.core.config import Settings
from bot.core.errors import UserError, explain_error
from bot.core.types import CommandCall, ConversationKey, Inbound, Usage
from bot.features.moderation import Moderation
from bot.files.supported import MB, Limits
from bot.spend.pricing import PriceTable
from storage import runs
from storage.db import Database

if TYPE_CHECKING:
    from bot.core.dispatcher import Command
    from bot.features.chat.inputs import MessageMedia

log = logging.getLogger(__name__)

T = TypeVar("T")
# Typed at the start of a message to the bot (`@Switchboard /transcribe fr` + a file), these run
# as the command with the message's files: Slack's slash commands cannot carry files.
# `assistant` too, for `knowledge add` and a schema file for `set format`.
MESSAGE_COMMANDS = frozenset(
    {"imagine", "edit", "variation", "speak", "transcribe", "translate", "assistant"}
)


@dataclass(slots=True)
class MediaContext:
    db: Database
    settings: Settings
    client: AsyncOpenAI
    prices: PriceTable
    retry: RetryPolicy
    speech: SpeechEngine
    moderation: Moderation | None = None

    @classmethod
    def create(
        cls,
        db: Database,
        settings: Settings,
        client: AsyncOpenAI,
        prices: PriceTable,
        retry: RetryPolicy | None = None,
    ) -> MediaContext:
        """`retry`: the app's shared policy (and so its circuit breaker)."""
        retry = retry or RetryPolicy(
            attempts=settings.openai_max_retries, max_wait=settings.openai_retry_max_wait
        )
        speech = make_speech_engine(settings.speech_engine, client, settings.speech_model, retry)
        moderation = Moderation(client, db, settings, retry)
        return cls(db, settings, client, prices, retry, speech, moderation)

    def message_media(self) -> MessageMedia:
        from bot.features.audio import AudioCommands
        from bot.features.chat.inputs import MessageMedia

        return MessageMedia(self, AudioCommands(self))

    @property
    def limits(self) -> Limits:
        return Limits(
            image_bytes=int(self.settings.image_max_mb * MB),
            audio_bytes=int(self.settings.audio_max_mb * MB),
        )

    async def screen(
        self,
        key: ConversationKey,
        text: str,
        *,
        user_id: str,
        event_id: str,
        what: str,
        withheld: str,
        moderated: object = None,
    ) -> None:
        """Moderation of `text` a feature is about to send on, when moderation is on for the
        channel (`moderated`: the channel's setting when the caller has it at hand)."""
        if self.moderation is None:
            return
        if moderated is None:
            moderated = (await resolve_assistant(self.db, self.settings, key)).moderation
        if not switched_on(moderated):
            return
        await self.moderation.screen_text(
            key, user_id, event_id, text, what=what, withheld=withheld
        )

    async def metered(
        self,
        key: ConversationKey,
        *,
        user_id: str,
        event_id: str,
        kind: str,
        model: str,
        work: Callable[[], Awaitable[tuple[T, Usage]]],
    ) -> T:
        """Run `work` as one run of `kind`: queued → in_progress → completed with its usage and
        cost, or failed with a friendly error raised."""
        run_id = await runs.create_run(self.db, key, user_id=user_id, event_id=event_id, kind=kind)
        await runs.start_run(self.db, run_id, backend="openai", model=model, conversation_id=None)
        try:
            result, usage = await work()
        except asyncio.CancelledError:
            await asyncio.shield(self._close(run_id, "interrupted", "shutdown during the call"))
            raise
        except Exception as exc:
            friendly = explain_media_error(exc, model=model, kind=kind)
            detail = friendly.log_detail or friendly.message if friendly else type(exc).__name__
            await self._close(run_id, "failed", detail[:500])
            if friendly is None or friendly is exc:
                raise
            raise friendly from exc
        cost = self.prices.cost(usage)
        async with self.db.batch() as conn:
            await runs.finish_run(conn, run_id, "completed")
            await runs.record_usage(conn, run_id, usage, cost)
        return result

    async def _close(self, run_id: int, status: runs.RunStatus, error: str) -> None:
        await runs.close_run(self.db, run_id, status, error)


def switched_on(value: object) -> bool:
    """A boolean channel setting, also when an admin stored it as text ("on", "false"…)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes")
    return bool(value)


def retired(call: Callable[[], Awaitable[T]]) -> Awaitable[T]:
    """Start an SDK call marked deprecated (the translations endpoint, used only when an
    operator opts in) without its DeprecationWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return call()


# The model role behind each media run kind ("translation" may use one of several models).
MEDIA_ROLES = {
    "image": "image",
    "edit": "image",
    "variation": "image",
    "transcription": "transcribe",
    "speech": "speech",
}


def explain_media_error(exc: BaseException, *, model: str, kind: str = "") -> UserError | None:
    """`explain_error`, naming the setting that chose the model of this kind of run."""
    return explain_error(exc, model=model, role=MEDIA_ROLES.get(kind, ""))


def media_commands(media: MediaContext) -> dict[str, Command]:
    """The media slash commands, all stateless (`ordered=False`): they skip the conversation's
    lane and take only the global concurrency limit."""
    from bot.core.dispatcher import Command
    from bot.features.audio import AudioCommands
    from bot.features.images import ImageCommands

    images = ImageCommands(media)
    audio = AudioCommands(media)
    return {
        "imagine": Command(images.imagine, "generate images", ordered=False),
        "edit": Command(images.edit, "edit an image", ordered=False),
        "variation": Command(images.variation, "variations of an image", ordered=False),
        "speak": Command(audio.speak, "text to speech", ordered=False),
        "transcribe": Command(audio.transcribe, "speech to text", ordered=False),
        "translate": Command(audio.translate, "speech to English text", ordered=False),
    }


def message_command(event: Inbound) -> CommandCall | None:
    """The command a message spells (`/transcribe fr` with a file attached), or None."""
    text = event.text.strip()
    if not text.startswith("/"):
        return None
    name, _, rest = text[1:].partition(" ")
    if name.lower() not in MESSAGE_COMMANDS:
        return None
    return CommandCall(
        event.key,
        event.actor,
        name.lower(),
        event.event_id,
        text=rest.strip(),
        attachments=event.attachments,
        received_at=event.received_at,
    )
