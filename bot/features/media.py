"""Shared plumbing of the media features: one metered run per OpenAI media call (kind, model,
usage, cost, recorded by the run ledger) and friendly errors."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from openai import AsyncOpenAI

from bot.backends.retry import RetryPolicy
from bot.backends.speech import SpeechEngine, make_speech_engine
from bot.core.config import Settings
from bot.core.errors import UserError, explain_error
from bot.core.ledger import Outcome, RunLedger
from bot.core.types import ConversationKey, Usage
from bot.files.supported import MB, Limits
from storage.db import Database

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class MediaContext:
    db: Database
    settings: Settings
    client: AsyncOpenAI
    ledger: RunLedger
    retry: RetryPolicy
    speech: SpeechEngine

    @classmethod
    def create(
        cls,
        db: Database,
        settings: Settings,
        client: AsyncOpenAI,
        ledger: RunLedger,
        retry: RetryPolicy | None = None,
    ) -> MediaContext:
        """`retry`: the app's shared policy (and so its circuit breaker)."""
        retry = retry or RetryPolicy(
            attempts=settings.openai_max_retries, max_wait=settings.openai_retry_max_wait
        )
        speech = make_speech_engine(settings.speech_engine, client, settings.speech_model, retry)
        return cls(db, settings, client, ledger, retry, speech)

    @property
    def limits(self) -> Limits:
        return Limits(
            image_bytes=int(self.settings.image_max_mb * MB),
            audio_bytes=int(self.settings.audio_max_mb * MB),
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


def retired(call: Callable[[], Awaitable[T]]) -> Awaitable[T]:
    """Start an SDK call marked deprecated (the variations and translations endpoints, used
    only when an operator opts in) without its DeprecationWarning."""
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
