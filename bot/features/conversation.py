"""Commands about the conversation itself."""

from __future__ import annotations

import logging

from bot.backends.conversations import ServerConversations
from bot.core.types import CommandCall, Reply
from storage import conversations
from storage.db import Database

log = logging.getLogger(__name__)


class ConversationCommands:
    def __init__(self, db: Database, server: ServerConversations | None = None) -> None:
        """`server`: where the backend keeps conversations server-side (None: it keeps none)."""
        self._db = db
        self._server = server

    async def reset(self, call: CommandCall) -> Reply:
        """Archive this conversation; the next message starts a new one. An answer in progress
        here was already cancelled when the command arrived (`Command.preempt`). The server-side
        conversation (responses backend) is deleted at OpenAI, best-effort: a failure is logged
        and does not undo the reset."""
        records = await conversations.active_at(self._db, call.key)
        archived = await conversations.archive(self._db, call.key)
        for record in records:
            if record.backend_conversation_id and self._server is not None:
                await self._delete_at_openai(record.backend_conversation_id)
        text = (
            "Started a new conversation: I no longer see what was said before here."
            if archived
            else "There was no conversation here yet; the next message starts one."
        )
        return Reply(key=call.key, text=text, actor_id=call.actor.id)

    async def _delete_at_openai(self, conversation_id: str) -> None:
        assert self._server is not None
        try:
            await self._server.delete(conversation_id)
        except Exception as exc:
            log.warning(
                "reset: could not delete conversation %s at OpenAI: %s",
                conversation_id,
                type(exc).__name__,
            )
        else:
            log.info("reset: deleted conversation %s at OpenAI", conversation_id)
