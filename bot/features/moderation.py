"""Optional moderation of incoming messages (per channel), with the configured moderation model:
the dispatcher screens each message; the media features screen what they send on (`/speak`
text, `/imagine` and `/edit` prompts, voice-note transcripts) with `screen_text`.

A flagged message is refused with a clear reply, logged, and recorded in `moderation_flags` for
admins (counted in `/usage channel|workspace`). If the moderation call itself fails, the message
goes through (fail open) and a warning is logged: an outage of moderation should not silence
the bot.
"""

from __future__ import annotations

import json
import logging
import time

from openai import AsyncOpenAI

from bot.backends.retry import RetryPolicy
from bot.core.config import Settings
from bot.core.errors import UserError
from bot.core.types import ConversationKey, Inbound
from storage.db import Database

log = logging.getLogger(__name__)

EXCERPT_CHARS = 200


class Moderation:
    def __init__(self, client: AsyncOpenAI, db: Database, settings: Settings, retry: RetryPolicy):
        self._client = client
        self._db = db
        self._settings = settings
        self._retry = retry

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
            result = await self._retry.call(
                lambda: self._client.moderations.create(model=model, input=text)
            )
        except Exception as exc:
            log.warning(
                "moderation unavailable (%s) key=%s event=%s: message let through",
                type(exc).__name__,
                key,
                event_id,
            )
            return
        flagged = [r for r in result.results if r.flagged]
        if not flagged:
            return
        categories = sorted(
            name for name, hit in flagged[0].categories.model_dump(by_alias=True).items() if hit
        )
        await self._db.write(
            "INSERT INTO moderation_flags (platform, workspace, channel, user_id, event_id, "
            "categories, excerpt, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key.platform,
                key.workspace,
                key.channel,
                user_id,
                event_id,
                json.dumps(categories),
                text[:EXCERPT_CHARS],
                time.time(),
            ),
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
