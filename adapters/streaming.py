"""The skeleton both platforms' streamed answers share (the core's `TextStream`).

`append` only buffers the text and, on the first delta, starts one flusher task; `finish` and
`abort` stop the flusher at once and then write under the same lock. Stopping cancels the
flusher while it waits (for its next tick or its write budget) and awaits it while it writes,
since cancelling a write could post a message and lose track of it.

What differs per platform stays in the subclass: the flusher's cadence (Discord: each
channel's write budget, woken by new text; Slack: a fixed tick and the workspace's method
budget), how the final text is shown, and how an interrupted answer is marked.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod

INTERRUPTED = " …(interrupted)"


class BufferedStream(ABC):
    def __init__(self) -> None:
        self._text = ""
        self._done = False
        self._lock = asyncio.Lock()  # held by every write, streamed or final
        self._wake = asyncio.Event()  # set when text arrives and when the stream stops
        self._flusher: asyncio.Task[None] | None = None

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
            await self._show_final(text or self._text)

    async def abort(self) -> None:
        """Never raises: a failure to mark the answer is only logged (`_abort_failed`)."""
        try:
            await self._stop()
            async with self._lock:
                await self._show_interrupted()
        except Exception as exc:
            self._abort_failed(exc)

    async def _stop(self) -> None:
        self._done = True
        self._wake.set()
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            if not self._lock.locked():
                flusher.cancel()
            await asyncio.wait({flusher})

    @abstractmethod
    async def _flush_loop(self) -> None:
        """Show the buffered text progressively until `_done`; take `_lock` for each write."""

    @abstractmethod
    async def _show_final(self, text: str) -> None:
        """Show `text`, the authoritative answer, at once."""

    @abstractmethod
    async def _show_interrupted(self) -> None:
        """Show what arrived, marked as interrupted (nothing when nothing arrived)."""

    @abstractmethod
    def _abort_failed(self, exc: Exception) -> None:
        """Log that an interrupted answer could not be marked."""
