"""Shared plumbing of the media capabilities: the backends they call, one metered run per
OpenAI media call (kind, model, usage, cost), friendly errors, and the commands a message can
spell. Their wiring is `bot.features.media_commands`."""

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
from bot.core.config import Settings
from bot.core.errors import UserError
from bot.core.types import CommandCall, ConversationKey, Inbound, Usage
from bot.files.supported import MB, Limits
from bot.spend.pricing import PriceTable
from storage import runs
from storage.db import Database

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
    prices: PriceTable
    images: ImageBackend
    audio: AudioBackend
    speech: SpeechEngine
    completer: Completer  # the text fallback of /translate

    @classmethod
    def create(
        cls, db: Database, settings: Settings, backends: Backends, prices: PriceTable
    ) -> MediaContext:
        return cls(
            db,
            settings,
            prices,
            backends.images,
            backends.audio,
            backends.speech,
            backends.completer,
        )

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
