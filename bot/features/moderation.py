"""Optional moderation of incoming messages (per channel), with the configured moderation model:
the dispatcher screens each message; the media features screen what they send on (`/speak`
text, `/imagine` and `/edit` prompts, voice-note transcripts) with `screen_text`.

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
from bot.core.types import ConversationKey, Inbound
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
        await self.screen_text(event.key, event.actor.id, event.event_id, event.text)

    async def screen_text(
        self,
        key: ConversationKey,
        user_id: str,
        event_id: str,
        text: str,
        *,
        what: str = "This message",
        withheld: str = "was not sent to the assistant",
    ) -> None:
        """Raise a `UserError` when `text` is flagged: a message, or what a command or a voice
        note would send on (`what` names it in the refusal, `withheld` says what did not
        happen)."""
        if not text.strip():
            return
        model = self._settings.moderation_model
        try:
            verdict = await self._backend.check(text, model=model)
        except Exception as exc:
            log.warning(
                "moderation unavailable (%s) key=%s event=%s: message let through",
                type(exc).__name__,
                key,
                event_id,
            )
            return
        if not verdict.flagged:
            return
        categories = list(verdict.categories)
        await record_flag(
            self._db,
            key,
            user_id,
            event_id,
            categories,
            text[:EXCERPT_CHARS],
        )
        log.warning(
            "moderation flagged key=%s event=%s user=%s: %s",
            key,
            event_id,
            user_id,
            ", ".join(categories),
        )
        raise UserError(
            f"{what} was flagged by moderation ("
            + ", ".join(categories)
            + f") and {withheld}. Admins of this workspace can see flagged messages."
        )
