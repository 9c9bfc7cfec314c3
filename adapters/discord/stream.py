"""Showing an answer progressively on Discord: one message edited as text arrives.

`DiscordStream` is the core's `TextStream`, on the skeleton both platforms share
(`adapters.streaming.BufferedStream`). `append` only buffers and, on the first delta,
starts one flusher task, which shows the first text at once and then the buffered text whenever
the channel's write budget allows (`ChannelThrottle`, shared by every stream of the adapter, so
two answers in one channel share the channel's budget while other channels are unaffected).
`finish` stops the flusher and shows the authoritative text at once, split at 2,000 characters
(further parts are new messages, in order): the budget always keeps one write for it. The first
message replies to the user's message. A typing indicator runs from `TYPING_AFTER` seconds after
`open_stream` until the first text is shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import discord

from adapters.streaming import INTERRUPTED, BufferedStream
from bot.text.split import DISCORD, Splitter

log = logging.getLogger(__name__)

# Discord shares one write bucket per channel between posting and editing messages (5 writes
# per 5 s, as its X-RateLimit headers report). Streamed edits come every EDIT_INTERVAL seconds
# at most and only while WRITE_LIMIT - 1 writes are in the last (WRITE_LIMIT - 1) *
# EDIT_INTERVAL seconds, so one write is always left for the final text.
WRITE_LIMIT = 5
EDIT_INTERVAL = 1.25
FIRST_DELAY = 0.0  # the first text shows as soon as it arrives
TYPING_AFTER = 1.0  # no typing call for answers whose text starts sooner than this
TYPING_EVERY = 8.0  # one typing call shows ~10 s
# People the answer names are pinged; never @everyone/@here nor a role.
PEOPLE_ONLY = discord.AllowedMentions(everyone=False, users=True, roles=False, replied_user=True)
_IN_FLIGHT = math.inf


class ChannelThrottle:
    """Each channel's message-write budget: at most `limit` writes in any `window` seconds
    (default `interval * (limit - 1)`), streamed edits at least `interval` apart and only while
    a write is left over for the final text, final writes whenever the budget allows.

    A write counts from when it starts until `window` after it ends (`note`), so the count is
    never below what Discord counts, whichever way its window is aligned.
    """

    def __init__(
        self,
        interval: float = EDIT_INTERVAL,
        *,
        limit: int = WRITE_LIMIT,
        window: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 2:
            raise ValueError("a write budget needs room for a streamed edit and the final text")
        self.interval = interval
        self.limit = limit
        self.window = interval * (limit - 1) if window is None else window
        self._clock = clock
        self._writes: dict[int, deque[list[float]]] = {}  # channel -> [start or end time]
        self._last_start: dict[int, float] = {}

    def delay(self, channel_id: int, *, final: bool = False) -> float:
        """Seconds until a write may start in the channel (0: now)."""
        now = self._clock()
        writes = self._current(channel_id, now)
        room = self.limit if final else self.limit - 1
        wait = 0.0
        if len(writes) >= room:
            ends = sorted(w[0] for w in writes)
            oldest = ends[len(writes) - room]
            # a write still in flight frees its place only once it ends: look again shortly
            wait = self.interval / 4 if oldest == _IN_FLIGHT else oldest + self.window - now
        if not final:
            wait = max(wait, self._last_start.get(channel_id, -math.inf) + self.interval - now)
        return max(0.0, wait)

    async def wait(self, channel_id: int, *, final: bool = False) -> None:
        """Wait until a write may start, then count it as started (call `note` when it ends)."""
        pause = self.delay(channel_id, final=final)
        while pause > 0:  # the budget frees up with time, not on an event
            await asyncio.sleep(pause)
            pause = self.delay(channel_id, final=final)
        now = self._clock()
        self._writes.setdefault(channel_id, deque()).append([_IN_FLIGHT])
        self._last_start[channel_id] = now
        if len(self._last_start) > 1024:
            self._prune(now)

    def note(self, channel_id: int) -> None:
        """The oldest write in flight in the channel ended (done or failed)."""
        for write in self._writes.get(channel_id, ()):
            if write[0] == _IN_FLIGHT:
                write[0] = self._clock()
                return

    def _current(self, channel_id: int, now: float) -> deque[list[float]]:
        writes = self._writes.get(channel_id)
        if writes is None:
            return deque()
        while writes and writes[0][0] <= now - self.window:
            writes.popleft()
        return writes

    def _prune(self, now: float) -> None:
        """Forget channels without writes in the window (memory stays bounded)."""
        for channel_id in list(self._last_start):
            if not self._current(channel_id, now):
                self._writes.pop(channel_id, None)
                del self._last_start[channel_id]


class DiscordStream(BufferedStream):
    """The core's `TextStream` on Discord (see the module docstring)."""

    def __init__(
        self,
        channel: Any,
        *,
        reference: discord.MessageReference | None,
        throttle: ChannelThrottle,
        first_delay: float = FIRST_DELAY,
        typing_after: float = TYPING_AFTER,
        splitter: Splitter = DISCORD,
    ) -> None:
        super().__init__()
        self._channel = channel
        self._channel_id = int(channel.id)
        self._reference = reference
        self._throttle = throttle
        self._first_delay = first_delay
        self._splitter = splitter
        self._messages: list[discord.Message] = []
        self._shown: list[str] = []
        self._typing: asyncio.Task[None] | None = asyncio.ensure_future(
            self._keep_typing(typing_after)
        )

    @property
    def messages(self) -> list[discord.Message]:
        return list(self._messages)

    # -- BufferedStream -----------------------------------------------------------------------

    async def _show_final(self, text: str) -> None:
        await self._sync(self._splitter.split(text) or ["…"])

    async def _show_interrupted(self) -> None:
        if self._text.strip():  # what arrived is shown, even if not flushed yet
            parts = self._splitter.split(self._text)
            last = parts[-1]
            if len(last) + len(INTERRUPTED) <= self._splitter.limit:
                parts[-1] = last + INTERRUPTED
            else:
                parts.append(INTERRUPTED.strip())
            await self._sync(parts)

    def _abort_failed(self, exc: Exception) -> None:
        log.warning("discord: could not mark an answer unfinished: %s", type(exc).__name__)

    async def _stop(self) -> None:
        await super()._stop()
        self._stop_typing()

    # -- internals ----------------------------------------------------------------------------

    def _stop_typing(self) -> None:
        if self._typing is not None:
            self._typing.cancel()
            self._typing = None

    async def _keep_typing(self, after: float) -> None:
        with contextlib.suppress(Exception):
            if after > 0:
                await asyncio.sleep(after)
            while True:
                await self._channel.typing()
                await asyncio.sleep(TYPING_EVERY)

    async def _flush_loop(self) -> None:
        try:
            if self._first_delay > 0:
                await asyncio.sleep(self._first_delay)
            while not self._done:
                pause = self._throttle.delay(self._channel_id)
                if pause > 0:
                    await asyncio.sleep(pause)
                    continue
                self._wake.clear()
                async with self._lock:
                    if self._done:
                        return
                    more = await self._step(self._splitter.split(self._text))
                if not more:
                    await self._wake.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the final flush will try again
            log.warning("discord: streaming an answer failed: %s", type(exc).__name__)

    async def _step(self, parts: list[str]) -> bool:
        """One streamed write: the first part not yet shown as it is now. Whether another
        part still differs (earlier parts never change once the text has moved past them)."""
        for index, part in enumerate(parts):
            if index < len(self._messages):
                if self._shown[index] != part:
                    await self._write(self._edit(index, part), final=False)
                    return index + 1 < len(parts)
                continue
            await self._write(self._append(part), final=False)
            return index + 1 < len(parts)
        return False

    async def _sync(self, parts: list[str]) -> None:
        """Make the shown messages equal `parts`: edit changed ones, post new ones in order,
        delete ones no longer needed."""
        for index, part in enumerate(parts):
            if index < len(self._messages):
                if self._shown[index] != part:
                    await self._write(self._edit(index, part), final=True)
                continue
            await self._write(self._append(part), final=True)
        for extra in self._messages[len(parts) :]:
            with contextlib.suppress(discord.HTTPException):
                await extra.delete()
        del self._messages[len(parts) :]
        del self._shown[len(parts) :]

    async def _write(self, write: Coroutine[Any, Any, None], *, final: bool) -> None:
        """Run one post or edit within the channel's write budget."""
        try:
            await self._throttle.wait(self._channel_id, final=final)
        except BaseException:
            write.close()
            raise
        try:
            await write
        finally:
            self._throttle.note(self._channel_id)

    async def _edit(self, index: int, part: str) -> None:
        await self._messages[index].edit(content=part)
        self._shown[index] = part

    async def _append(self, part: str) -> None:
        message = await self._post(part, first=not self._messages)
        self._messages.append(message)
        self._shown.append(part)
        self._stop_typing()

    async def _post(self, content: str, *, first: bool) -> discord.Message:
        if first and self._reference is not None:
            try:
                return await self._channel.send(
                    content, reference=self._reference, allowed_mentions=PEOPLE_ONLY
                )
            except discord.HTTPException as exc:
                if exc.status >= 500 or exc.status == 429:
                    raise
                # the message we answer may be gone: answer without the reply link
        return await self._channel.send(content, allowed_mentions=PEOPLE_ONLY)
