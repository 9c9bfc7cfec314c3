"""Who may use the bot: the workspace's allow and block lists (`/assistant access`).

Entries are `user:ID`, `role:ID` (a Discord role or a Slack user group) and `channel:ID`, kept in
the workspace's assistant settings (`access_allow`, `access_block`). The rules:

- a user on the block list, with a blocked role, or in a blocked channel is refused;
- when the allow list names users or roles, only those users (or members of those roles) may use
  the bot; when it names channels, the bot works in those channels only;
- workspace admins are never refused (so nobody can lock the admins out).

A refused event gets one private notice and nothing else: no run is started, nothing reaches
OpenAI (the dispatcher checks before queueing anything), and the refusal is on record (a run of
kind `access`, status `failed`, with the reason).
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.core.types import Actor, ConversationKey

KINDS = ("user", "role", "channel")
REFUSED = (
    "You can't use the assistant here: an admin of this workspace has restricted who may. "
    "Ask them if you think this is a mistake."
)


def facts(actor: Actor, key: ConversationKey) -> set[str]:
    """The entries that describe this actor at `key`."""
    return {
        f"user:{actor.id}",
        f"channel:{key.channel}",
        *(f"role:{role}" for role in actor.roles),
    }


def refusal(
    actor: Actor,
    key: ConversationKey,
    allow: Iterable[str],
    block: Iterable[str],
) -> str:
    """Why `actor` may not use the bot at `key` ("" when they may), for the log and the audit.
    The caller exempts workspace admins."""
    mine = facts(actor, key)
    blocked = sorted(mine & set(block))
    if blocked:
        return "blocked (" + ", ".join(blocked) + ")"
    allowed = set(allow)
    channels = {e for e in allowed if e.startswith("channel:")}
    people = allowed - channels
    if people and not mine & people:
        return "not on the allow list"
    if channels and f"channel:{key.channel}" not in channels:
        return "channel not on the allow list"
    return ""
