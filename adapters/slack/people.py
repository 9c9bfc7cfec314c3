"""What Slack says about a user, as facts on the `Actor`: whether they are an admin or owner of
*the event's* workspace, and which user groups they belong to (for access lists).

A user counts as an admin only when `users.info` says so *and* the user belongs to the team the
event came from: a Slack Connect partner or an Enterprise Grid member of another workspace may be
an admin at home, never here. Guests (restricted users) never count.

Both lookups are cached for a few minutes; a `user_change` event forgets the user at once
(`forget`), so a demoted admin loses their rights without waiting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.errors import describe
from bot.core.types import Actor

log = logging.getLogger(__name__)

CACHE_SECONDS = 300.0
MAX_GROUPS = 1_000
MAX_USERS = 10_000


def user_is_admin(user: Any, team: str) -> bool:
    """`users.info` user → an admin or owner of `team` (not of another team, not a guest)."""
    if not isinstance(user, Mapping):
        return False
    if user.get("is_restricted") is True or user.get("is_ultra_restricted") is True:
        return False
    if team and str(user.get("team_id") or "") != team:
        return False
    return any(user.get(k) is True for k in ("is_admin", "is_owner", "is_primary_owner"))


@dataclass(frozen=True, slots=True)
class _Entry:
    value: Any
    at: float


class SlackPeople:
    def __init__(self, client: AsyncWebClient, ttl: float = CACHE_SECONDS) -> None:
        self._client = client
        self._ttl = ttl
        self._users: dict[str, _Entry] = {}
        self._groups: dict[str, _Entry] = {}
        self._groups_warned = False

    async def actor(self, team: str, actor: Actor) -> Actor:
        """`actor` with the facts of `team`: admin status and user groups."""
        admin = await self.is_admin(team, actor.id)
        groups = await self.groups_of(team, actor.id)
        return replace(actor, is_admin=admin, roles=groups)

    def forget(self, user_id: str) -> None:
        """A user changed (`user_change`): look them up afresh next time."""
        self._users.pop(user_id, None)
        self._groups.clear()

    async def is_admin(self, team: str, user_id: str) -> bool:
        return user_is_admin(await self.user(user_id), team)

    async def user(self, user_id: str) -> Mapping[str, Any] | None:
        """`users.info`'s user, cached (one lookup serves the admin check and the name the
        model sees); None when Slack will not say (not cached: asked again next time)."""
        hit = self._users.get(user_id)
        now = time.monotonic()
        if hit is not None and now - hit.at < self._ttl:
            return hit.value  # type: ignore[no-any-return]
        try:
            response = await self._client.users_info(user=user_id)
        except SlackApiError as exc:
            log.warning("slack: users.info for %s failed: %s", user_id, describe(exc))
            return None
        except Exception as exc:
            log.warning("slack: users.info for %s failed: %s", user_id, type(exc).__name__)
            return None
        found = response.get("user")
        if not isinstance(found, Mapping):
            return None
        if len(self._users) >= MAX_USERS:
            self._users.clear()
        self._users[user_id] = _Entry(found, now)
        return found

    async def groups_of(self, team: str, user_id: str) -> tuple[str, ...]:
        members = await self._team_groups(team)
        return tuple(sorted(g for g, users in members.items() if user_id in users))

    async def _team_groups(self, team: str) -> dict[str, frozenset[str]]:
        hit = self._groups.get(team)
        now = time.monotonic()
        if hit is not None and now - hit.at < self._ttl:
            return hit.value  # type: ignore[no-any-return]
        found: dict[str, frozenset[str]] = {}
        try:
            response = await self._client.usergroups_list(include_users=True)
            for group in (response.get("usergroups") or [])[:MAX_GROUPS]:
                if isinstance(group, Mapping) and group.get("id"):
                    users = group.get("users") or []
                    found[str(group["id"])] = frozenset(str(u) for u in users)
        except Exception as exc:  # no usergroups:read scope, Slack down: no groups known
            if not self._groups_warned:
                self._groups_warned = True
                reason = describe(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
                log.warning(
                    "slack: usergroups.list failed (%s): access lists by user group do not "
                    "apply until it works (the app needs the usergroups:read scope)",
                    reason,
                )
        self._groups[team] = _Entry(found, now)
        return found
