"""Reading what was said before the bot was asked, for `Inbound.context`: the earlier messages
of a thread (the channel's history before the question, and the message that started the
thread when there is one) and the message a question replies to (Discord's message reference,
usually delivered with the message itself, else fetched).

Only when the core asks (a closure on the event, like an attachment's fetch). discord.py
paginates the history and keeps within Discord's rate limits (it sleeps on 429s, see
`adapters.discord.adapter`); the whole read is bounded by `READ_DEADLINE`. Without "Read
Message History" Discord returns no history at all (and 403 for one message), so the bot's
permissions in the channel are checked first and the refusal reported as `missing`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord

from adapters.discord.normalise import earlier_message, is_thread
from bot.core.types import ContextFetch, EarlierMessage, PlatformContext

log = logging.getLogger(__name__)

READ_DEADLINE = 10.0  # seconds the context of one message may take
READ_HISTORY = "the Read Message History permission in this channel"


class DiscordHistory:
    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes

    def fetcher(self, message: discord.Message, bot_id: int | None) -> ContextFetch:
        async def fetch(limit: int) -> PlatformContext:
            try:
                return await asyncio.wait_for(self.read(message, bot_id, limit), READ_DEADLINE)
            except TimeoutError:
                log.warning("discord: reading the context of a message took too long; left out")
                return PlatformContext()

        return fetch

    async def read(
        self, message: discord.Message, bot_id: int | None, limit: int
    ) -> PlatformContext:
        channel: Any = message.channel
        allowed = self._can_read(message)
        missing = ""
        found: list[EarlierMessage] = []
        if limit > 0 and is_thread(channel):
            if allowed:
                found = await self._thread(channel, message, bot_id, limit)
            else:
                missing = READ_HISTORY
        replied, refused = await self._replied_to(message, bot_id, allowed)
        missing = missing or refused
        if replied is not None and all(m.message_id != replied.message_id for m in found):
            found.append(replied)
        elif replied is not None:
            found = [replied if m.message_id == replied.message_id else m for m in found]
        return PlatformContext(earlier=tuple(found), missing=missing)

    def _can_read(self, message: discord.Message) -> bool:
        guild = message.guild
        if guild is None or guild.me is None:
            return True
        try:
            return bool(message.channel.permissions_for(guild.me).read_message_history)  # type: ignore[union-attr]
        except Exception:
            return True  # let Discord say no

    async def _thread(
        self, thread: Any, message: discord.Message, bot_id: int | None, limit: int
    ) -> list[EarlierMessage]:
        raw = [m async for m in thread.history(limit=limit, before=message)]  # newest first
        raw.reverse()
        if len(raw) < limit:  # back at the thread's start: its starter message, if any
            starter = await self._starter(thread)
            if starter is not None:
                raw.insert(0, starter)
        found = [self._earlier(m, bot_id) for m in raw]
        return [m for m in found if m is not None]

    async def _starter(self, thread: Any) -> discord.Message | None:
        """The parent channel's message a thread was started from (same id), when readable."""
        parent = getattr(thread, "parent", None)
        if parent is None:
            return None
        try:
            return await parent.fetch_message(thread.id)
        except (discord.NotFound, discord.Forbidden):
            return None
        except discord.HTTPException as exc:
            log.info("discord: no thread starter message (HTTP %s)", exc.status)
            return None

    async def _replied_to(
        self, message: discord.Message, bot_id: int | None, allowed: bool
    ) -> tuple[EarlierMessage | None, str]:
        reference = message.reference
        if reference is None or reference.message_id is None:
            return None, ""
        target = reference.resolved
        if isinstance(target, discord.DeletedReferencedMessage):
            return None, ""
        if not isinstance(target, discord.Message):
            if reference.channel_id != message.channel.id:
                return None, ""  # a reply across channels: only what Discord sent along
            if not allowed:
                return None, READ_HISTORY
            try:
                target = await message.channel.fetch_message(reference.message_id)
            except discord.Forbidden:
                return None, READ_HISTORY
            except discord.HTTPException:
                return None, ""
        if bot_id is not None and target.author.id == bot_id:
            return None, ""  # the bot's own answer: already in the conversation
        return self._earlier(target, bot_id, replied_to=True), ""

    def _earlier(
        self, message: discord.Message, bot_id: int | None, *, replied_to: bool = False
    ) -> EarlierMessage | None:
        return earlier_message(message, bot_id, replied_to=replied_to, max_bytes=self._max_bytes)
