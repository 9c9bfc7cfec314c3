"""Commands about the conversation itself."""

from __future__ import annotations

from bot.types import CommandCall, Reply
from storage import conversations
from storage.db import Database


class ConversationCommands:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def reset(self, call: CommandCall) -> Reply:
        """Archive this conversation; the next message starts a new one."""
        archived = await conversations.archive(self._db, call.key)
        text = (
            "Started a new conversation: I no longer see what was said before here."
            if archived
            else "There was no conversation here yet; the next message starts one."
        )
        return Reply(key=call.key, text=text, actor_id=call.actor.id)
