"""Retention: what the bot keeps about people's messages is deleted after a while.

`prune_content` deletes, older than a cut-off: the chat backend's message history, the steps of
answers (code, tool arguments and outputs) and moderation flags (with their excerpts). Runs,
usage and costs stay: they are the spending record (ids and numbers, no message text). The
deduplication ids of handled events are pruned by `storage.events.prune_events`.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Database


@dataclass(frozen=True, slots=True)
class Pruned:
    messages: int
    steps: int
    flags: int

    @property
    def total(self) -> int:
        return self.messages + self.steps + self.flags


async def prune_content(db: Database, before: float) -> Pruned:
    """Delete message history, answer steps and moderation flags created before `before`."""
    messages = await db.execute("DELETE FROM messages WHERE created_at < ?", (before,))
    steps = await db.execute(
        "DELETE FROM run_steps WHERE run_id IN (SELECT id FROM runs WHERE created_at < ?)",
        (before,),
    )
    flags = await db.execute("DELETE FROM moderation_flags WHERE created_at < ?", (before,))
    return Pruned(messages.rowcount, steps.rowcount, flags.rowcount)
