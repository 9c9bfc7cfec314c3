"""Shared plumbing of the media features: the backends they call, one metered run per OpenAI
media call (kind, model, usage, cost, recorded by the run ledger), moderation of what they send
on, and friendly errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.backends.audio import AudioBackend
from bot.backends.completion import Completer
from bot.backends.errors import explain_error
from bot.backends.factory import Backends
from bot.backends.images import ImageBackend
from bot.backends.speech import SpeechEngine
from bot.core.assistant_config import resolve_assistant
from bot.core.config import Settings
from bot.core.errors import UserError
from bot.core.ledger import Outcome, RunLedger
from bot.core.types import ConversationKey, Usage
from bot.features.moderation import Moderation
from bot.files.supported import MB, Limits
from storage.db import Database

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class MediaContext:
    db: Database
    settings: Settings
    ledger: RunLedger
    images: ImageBackend
    audio: AudioBackend
    speech: SpeechEngine
    completer: Completer  # the text fallback of /translate
    moderation: Moderation | None = None  # screens what the features send on

    @classmethod
    def create(
        cls, db: Database, settings: Settings, backends: Backends, ledger: RunLedger
    ) -> MediaContext:
        return cls(
            db,
            settings,
            ledger,
            backends.images,
            backends.audio,
            backends.speech,
            backends.completer,
            Moderation(backends.moderation, db, settings),
        )

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
        run = await self.ledger.open(key, user_id=user_id, event_id=event_id, kind=kind)
        await run.start(backend="openai", model=model, conversation_id=None)
        try:
            result, usage = await work()
        except asyncio.CancelledError:
            await asyncio.shield(run.close("interrupted", "shutdown during the call"))
            raise
        except Exception as exc:
            friendly = explain_media_error(exc, model=model, kind=kind)
            detail = friendly.log_detail or friendly.message if friendly else type(exc).__name__
            await run.close("failed", detail[:500])
            if friendly is None or friendly is exc:
                raise
            raise friendly from exc
        await run.complete(Outcome(usage=usage))
        return result


def switched_on(value: object) -> bool:
    """A boolean channel setting, also when an admin stored it as text ("on", "false"…)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes")
    return bool(value)


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
