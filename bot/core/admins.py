"""Who is an admin, and of what: the one place that turns the platform's facts about an actor
(`Actor.is_admin`, `Actor.channel_admin`) and `SWITCHBOARD_ADMINS` into a scope.

- `workspace`: may change anything in this workspace (server): workspace defaults, budget caps,
  access lists, plugins, `/usage workspace`, `/status`.
- `channel`: may change this channel only, within the caps the workspace set (a channel admin
  can tighten a budget but not raise it past the cap, can turn moderation on but not off where
  the workspace has it on, cannot enable plugins).
- `""`: not an admin here.

`SWITCHBOARD_ADMINS` entries are user ids, optionally scoped to one workspace: `T123:U456` is an
admin of workspace (Slack team, Discord server) T123 only; a bare `U456` of every workspace the
bot serves. Listed admins are workspace admins.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.types import Actor, AdminScope, ConversationKey


@dataclass(frozen=True, slots=True)
class AdminList:
    """The parsed `SWITCHBOARD_ADMINS`: (workspace or "" for any, user id) pairs."""

    entries: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def parse(cls, text: str) -> AdminList:
        entries = set()
        for part in (text or "").split(","):
            part = part.strip()
            if not part:
                continue
            workspace, _, user = part.rpartition(":")
            entries.add((workspace.strip(), user.strip()))
        return cls(frozenset(e for e in entries if e[1]))

    def lists(self, workspace: str, user_id: str) -> bool:
        return ("", user_id) in self.entries or (workspace, user_id) in self.entries


class Admins:
    def __init__(self, listed: AdminList) -> None:
        self._listed = listed

    def scope(self, actor: Actor, key: ConversationKey) -> AdminScope:
        if actor.is_admin or self._listed.lists(key.workspace, actor.id):
            return "workspace"
        if actor.channel_admin:
            return "channel"
        return ""

    def workspace_admin(self, actor: Actor, key: ConversationKey) -> bool:
        return self.scope(actor, key) == "workspace"

    def any_admin(self, actor: Actor, key: ConversationKey) -> bool:
        """A channel or workspace admin here."""
        return self.scope(actor, key) != ""
