"""Showing an answer progressively on Discord: one message edited as text arrives.

`DiscordStream` is the core's `TextStream`. `append` only buffers and, on the first delta,
starts one flusher task; the flusher shows the buffered text at most once per `interval`
seconds **per channel** (a `ChannelThrottle` shared by every stream of the adapter, so two
answers in one channel share the channel's cadence while other channels are unaffected).
`finish` stops the flusher and shows the authoritative text at once, split at 2,000 characters
(further parts are new messages, in order). The first message replies to the user's message.
A typing indicator runs from `open_stream` until the first text is shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import discord

from adapters.discord.split import MESSAGE_LIMIT, split_text

log = logging.getLogger(__name__)

EDIT_INTERVAL = 1.2  # seconds between edits in one channel while streaming
FIRST_DELAY = 0.3  # the first text shows this soon after it arrives (a few words gathered)
TYPING_EVERY = 8.0  # one typing call shows ~10 s
INTERRUPTED = " …(interrupted)"
NO_PINGS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)


class ChannelThrottle:
    """At most one streamed edit per `interval` seconds per channel."""

    def __init__(self, interval: float = EDIT_INTERVAL) -> None:
        self.interval = interval
        self._next: dict[int, float] = {}

    async def wait(self, channel_id: int) -> None:
        """Reserve the channel's next slot and sleep until it comes."""
        now = time.monotonic()
        slot = max(now, self._next.get(channel_id, 0.0))
        self._next[channel_id] = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)
        self._prune(now)

    def note(self, channel_id: int) -> None:
        """A write just finished: the channel's next edit comes `interval` after it at the
        earliest (also after an unthrottled final flush)."""
        now = time.monotonic()
        self._next[channel_id] = max(self._next.get(channel_id, 0.0), now + self.interval)

    def _prune(self, now: float) -> None:
        if len(self._next) > 1024:
            for cid in [c for c, t in self._next.items() if t < now]:
                del self._next[cid]


class DiscordStream:
    def __init__(
        self,
        channel: Any,
        *,
        reference: discord.MessageReference | None,
        throttle: ChannelThrottle,
        first_delay: float = FIRST_DELAY,
        limit: int = MESSAGE_LIMIT,
    ) -> None:
        self._channel = channel
        self._channel_id = int(channel.id)
        self._reference = reference
        self._throttle = throttle
        self._first_delay = first_delay
        self._limit = limit
        self._text = ""
        self._messages: list[discord.Message] = []
        self._shown: list[str] = []
        self._lock = asyncio.Lock()
        self._done = False
        self._flusher: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._typing: asyncio.Task[None] | None = asyncio.ensure_future(self._keep_typing())

    @property
    def messages(self) -> list[discord.Message]:
        return list(self._messages)

    # -- TextStream ---------------------------------------------------------------------------

    async def append(self, delta: str) -> None:
        if self._done or not delta:
            return
        self._text += delta
        self._wake.set()
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush_loop())

    async def finish(self, text: str) -> None:
        await self._stop()
        async with self._lock:
            await self._sync(split_text(text or self._text, self._limit) or ["…"])
        self._throttle.note(self._channel_id)

    async def abort(self) -> None:
        try:
            await self._stop()
            async with self._lock:
                if self._text.strip():  # what arrived is shown, even if not flushed yet
                    parts = split_text(self._text, self._limit)
                    last = parts[-1]
                    if len(last) + len(INTERRUPTED) <= self._limit:
                        parts[-1] = last + INTERRUPTED
                    else:
                        parts.append(INTERRUPTED.strip())
                    await self._sync(parts)
        except Exception as exc:
            log.warning("discord: could not mark an answer unfinished: %s", type(exc).__name__)

    # -- internals ----------------------------------------------------------------------------

    async def _stop(self) -> None:
        """Stop the flusher at once: cancelled while it waits for its slot, awaited while it
        is writing (cancelling a write could post a message and lose track of it)."""
        self._done = True
        self._wake.set()
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            if not self._lock.locked():
                flusher.cancel()
            await asyncio.wait({flusher})
        self._stop_typing()

    def _stop_typing(self) -> None:
        if self._typing is not None:
            self._typing.cancel()
            self._typing = None

    async def _keep_typing(self) -> None:
        with contextlib.suppress(Exception):
            while True:
                await self._channel.typing()
                await asyncio.sleep(TYPING_EVERY)

    async def _flush_loop(self) -> None:
        try:
            await asyncio.sleep(self._first_delay)
            while not self._done:
                await self._throttle.wait(self._channel_id)
                if self._done:
                    return
                async with self._lock:
                    if self._done:
                        return
                    self._wake.clear()
                    parts = split_text(self._text, self._limit)
                    if parts:
                        await self._sync(parts)
                        # the interval counts from when the write is done, so a slow write
                        # never lets the next one follow it closely
                        self._throttle.note(self._channel_id)
                await self._wake.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the final flush will try again
            log.warning("discord: streaming an answer failed: %s", type(exc).__name__)

    async def _sync(self, parts: list[str]) -> None:
        """Make the shown messages equal `parts`: edit changed ones, post new ones in order,
        delete ones no longer needed."""
        for index, part in enumerate(parts):
            if index < len(self._messages):
                if self._shown[index] != part:
                    await self._messages[index].edit(content=part)
                    self._shown[index] = part
                continue
            message = await self._post(part, first=index == 0)
            self._messages.append(message)
            self._shown.append(part)
            self._stop_typing()
        for extra in self._messages[len(parts) :]:
            with contextlib.suppress(discord.HTTPException):
                await extra.delete()
        del self._messages[len(parts) :]
        del self._shown[len(parts) :]

    async def _post(self, content: str, *, first: bool) -> discord.Message:
        if first and self._reference is not None:
            try:
                return await self._channel.send(
                    content, reference=self._reference, allowed_mentions=NO_PINGS
                )
            except discord.HTTPException as exc:
                if exc.status >= 500 or exc.status == 429:
                    raise
                # the message we answer may be gone: answer without the reply link
        return await self._channel.send(content, allowed_mentions=NO_PINGS)
