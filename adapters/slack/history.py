"""Reading what was said before the bot was asked, for `Inbound.context`: the earlier messages
of a thread (`conversations.replies`) and people's display names (`users.info`).

Only when the core asks (the fetcher is a closure on the event, like an attachment's fetch):
the adapter never calls the core, and a message that needs no context costs at most one
`users.info` lookup (names are cached).

`conversations.replies` is paginated (`PAGE_SIZE` messages a page, at most `MAX_PAGES` pages,
keeping the most recent `limit` before the question and always the thread's parent) and kept
within its rate tier: Tier 3, about 50 calls a minute per workspace, counted by a token bucket
(`WriteAllowance` used as a plain bucket); with the bucket empty the bot reads no further and
answers with what it has. A 429 (commercially distributed apps outside the Marketplace get far
lower limits) is honoured by the client's retry handler, within `READ_DEADLINE` seconds.
A refused scope (`missing_scope`) or a channel the bot is not in is reported as `missing`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import normalise
from adapters.slack.errors import describe
from adapters.slack.write_allowance import WriteAllowance
from bot.core.types import ContextFetch, Inbound, PlatformContext

log = logging.getLogger(__name__)

REPLIES = "conversations.replies"
REPLIES_PER_MINUTE = 50.0  # Tier 3
PAGE_SIZE = 200
MAX_PAGES = 5
READ_DEADLINE = 10.0  # seconds the context of one message may take, 429 waits included
NAME_TTL = 3600.0
MAX_NAMES = 10_000
MAX_LOOKUPS = 25  # names looked up for one thread; the others are shown by their mention
_NOT_IN_CHANNEL = frozenset({"not_in_channel", "channel_not_found"})


def _ts_key(ts: str) -> tuple[int, int]:
    whole, _, fraction = ts.partition(".")
    try:
        return int(whole), int(fraction or 0)
    except ValueError:
        return 0, 0


def history_scope(channel: str) -> str:
    """The scope `conversations.replies` needs in `channel` (by its id's first letter)."""
    return {"C": "channels:history", "G": "groups:history", "D": "im:history"}.get(
        channel[:1], "channels:history"
    )


class SlackHistory:
    def __init__(
        self,
        client: AsyncWebClient,
        identity: Callable[[], normalise.BotIdentity],
        fetch_factory: normalise.FetchFactory | None = None,
        *,
        replies_per_minute: float = REPLIES_PER_MINUTE,
    ) -> None:
        self._client = client
        self._identity = identity
        self._fetch_factory = fetch_factory
        self._allowance = WriteAllowance({REPLIES: (replies_per_minute, 0.0)})
        self._names: dict[str, tuple[str, float]] = {}

    def fetcher(self, event: Inbound) -> ContextFetch:
        """The context reader for `event`: the thread it is in (its parent's ts is the
        event's `reply_to`), the messages before it."""
        key, author = event.key, event.actor
        thread_ts, before = event.addressing.reply_to, event.message_id

        async def fetch(limit: int) -> PlatformContext:
            try:
                return await asyncio.wait_for(
                    self.read(key.workspace, key.channel, thread_ts, before, author.id, limit),
                    READ_DEADLINE,
                )
            except TimeoutError:
                log.warning("slack: reading the context at %s took too long; left out", key)
                return PlatformContext(author_name=self._cached(author.id))

        return fetch

    async def read(
        self, team: str, channel: str, thread_ts: str, before: str, author: str, limit: int
    ) -> PlatformContext:
        author_name = await self.name(author)
        if limit <= 0 or not thread_ts:
            return PlatformContext(author_name=author_name)
        raw, missing = await self._replies(team, channel, thread_ts, before, limit)
        users = list(dict.fromkeys(str(m.get("user")) for m in raw if m.get("user")))
        names = {user: await self.name(user) for user in users[:MAX_LOOKUPS]}
        found = [
            normalise.earlier_message(m, self._identity(), self._fetch_factory, names) for m in raw
        ]
        earlier = tuple(m for m in found if m is not None)
        return PlatformContext(author_name=author_name, earlier=earlier, missing=missing)

    async def _replies(
        self, team: str, channel: str, thread_ts: str, before: str, limit: int
    ) -> tuple[list[Mapping[str, Any]], str]:
        """The thread's parent and its most recent replies before `before` (oldest first),
        and the permission refused ("" if none)."""
        parent: Mapping[str, Any] | None = None
        recent: deque[Mapping[str, Any]] = deque(maxlen=limit)
        cursor: str | None = None
        missing = ""
        for _ in range(MAX_PAGES):
            if not self._allowance.take(team, REPLIES):
                log.info("slack: %s allowance spent in %s; reading no further", REPLIES, team)
                break
            try:
                response = await self._client.conversations_replies(
                    channel=channel,
                    ts=thread_ts,
                    limit=PAGE_SIZE,
                    cursor=cursor,
                    latest=before or None,
                    inclusive=False,
                )
            except SlackApiError as exc:
                missing = self._refused(exc, channel)
                if not missing:
                    log.warning(
                        "slack: could not read the thread in %s: %s", channel, describe(exc)
                    )
                break
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning("slack: could not read the thread in %s: %s", channel, describe(exc))
                break
            for message in response.get("messages") or []:
                ts = str(message.get("ts") or "")
                if before and _ts_key(ts) >= _ts_key(before):
                    continue
                if ts == thread_ts:
                    parent = message
                else:
                    recent.append(message)
            metadata = response.get("response_metadata") or {}
            cursor = metadata.get("next_cursor") if isinstance(metadata, dict) else None
            if not response.get("has_more") or not cursor:
                break
        messages = list(recent)
        if parent is not None:
            messages = [parent, *messages[len(messages) - max(0, limit - 1) :]]
        return messages, missing

    @staticmethod
    def _refused(exc: SlackApiError, channel: str) -> str:
        response = exc.response
        error = response.get("error") if response is not None else None
        if error == "missing_scope":
            needed = response.get("needed") if response is not None else None
            return f"the `{needed or history_scope(channel)}` scope"
        if error in _NOT_IN_CHANNEL:
            return "access to this channel (invite it with /invite)"
        return ""

    # -- names ----------------------------------------------------------------------------------

    def _cached(self, user: str) -> str:
        found = self._names.get(user)
        return found[0] if found and time.monotonic() - found[1] < NAME_TTL else ""

    async def name(self, user: str) -> str:
        """`user`'s display name (cached an hour); "" when Slack will not say."""
        if not user:
            return ""
        cached = self._names.get(user)
        if cached is not None and time.monotonic() - cached[1] < NAME_TTL:
            return cached[0]
        try:
            response = await self._client.users_info(user=user)
            name = normalise.user_name(response.get("user"))
        except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.info("slack: no name for %s: %s", user, describe(exc))
            name = ""
        if len(self._names) >= MAX_NAMES:
            self._names.clear()
        self._names[user] = (name, time.monotonic())
        return name
