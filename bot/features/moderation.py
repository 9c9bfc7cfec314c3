"""Optional moderation of incoming messages (per channel), with the configured moderation model.

A flagged message is refused with a clear reply, logged, and recorded in `moderation_flags` for
admins (counted in `/usage channel|workspace`). If the moderation call itself fails, the message
goes through (fail open) and a warning is logged: an outage of moderation should not silence
the bot.
"""

from __future__ import annotations

import logging

from bot.backends.moderation import ModerationBackend
from bot.core.config import Settings
from bot.core.errors import UserError
from bot.core.types import Inbound
from storage.db import Database
from storage.moderation import record_flag

log = logging.getLogger(__name__)

EXCERPT_CHARS = 200


class Moderation:
    def __init__(self, backend: ModerationBackend, db: Database, settings: Settings):
        self._backend = backend
        self._db = db
        self._settings = settings

    async def screen(self, event: Inbound) -> None:
        """Raise a `UserError` when the message is flagged."""
        if not event.text.strip():
            return
        model = self._settings.moderation_model
        try:
            verdict = await self._backend.check(event.text, model=model)
        except Exception as exc:
            log.warning(
                "moderation unavailable (%s) key=%s event=%s: message let through",
                type(exc).__name__,
                event.key,
                event.event_id,
            )
            return
        if not verdict.flagged:
            return
        categories = list(verdict.categories)
        await record_flag(
            self._db,
            event.key,
            event.actor.id,
            event.event_id,
            categories,
            event.text[:EXCERPT_CHARS],
        )
        log.warning(
            "moderation flagged key=%s event=%s user=%s: %s",
            event.key,
            event.event_id,
            event.actor.id,
            ", ".join(categories),
        )
        raise UserError(
            "This message was flagged by moderation ("
            + ", ".join(categories)
            + ") and was not sent to the assistant. Admins of this workspace can see flagged messages."
        )
