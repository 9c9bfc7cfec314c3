"""Showing an answer progressively on Slack.

`SlackStream` is the core's `TextStream`, on the skeleton both platforms share
(`adapters.streaming.BufferedStream`). `append` only buffers; a flusher task pushes the
buffered text every `interval` seconds, and `finish` pushes the authoritative final text at
once. Two ways of showing text:

- **chat streaming** (`chat.startStream` / `appendStream` / `stopStream` through slack-sdk's
  `AsyncChatStream`) for answers in a thread (channel threads, DM threads, AI-app assistant
  threads). Slack requires streamed messages to be thread replies.
- **post + throttled `chat.update`** (at most one edit per second per message) for answers at
  the top level of a DM, and wherever `chat.startStream` answers `ok: false` (streaming not
  available to this app or in this conversation).

Progressive writes also draw on the workspace's budget for their method (`WriteAllowance`,
shared by every stream of the adapter), so many answers at once never exceed Slack's
per-workspace method limits; a skipped write only means the next one shows more.

Long answers become several messages in order (`bot.text.split.SLACK`): each at most 3,900
characters, cut at a paragraph, line or word boundary near the end of the window, never inside
a ``` code block without closing it and reopening it in the next message. The cut of a part
depends only on the text up to that part's window, so parts that are complete never change as
more text arrives; while streaming, the still-growing last part is shown only up to the
earliest point where it could be cut (`SLACK.safe_prefix`), so chat streaming (append-only)
never has to take anything back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError, SlackRequestError

from adapters.slack.abilities import ChannelAbilities
from adapters.slack.errors import describe
from adapters.slack.mentions import neutralise
from adapters.slack.write_allowance import APPEND, UPDATE, WriteAllowance
from adapters.streaming import INTERRUPTED, BufferedStream
from bot.core.types import ConversationKey
from bot.text.mentions import MENTIONS
from bot.text.split import SLACK

if TYPE_CHECKING:
    from slack_sdk.web.async_chat_stream import AsyncChatStream
    from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

STREAM_INTERVAL = 1.0  # seconds between appendStream calls
UPDATE_INTERVAL = 1.0  # at most one chat.update per second per message
FIRST_FLUSH = 0.0  # the first text shows as soon as it arrives
THINKING = "is thinking…"
STATUS_AFTER = 1.0  # no status call for answers whose text starts sooner than this
# Model-written posts show no link previews: a prompt-injected link cannot leak data through
# the preview Slack fetches, nor dress itself up.
NO_UNFURLS = {"unfurl_links": False, "unfurl_media": False}


def display_parts(text: str, *, final: bool) -> list[str]:
    """What to show for `text`: every part, the last one (still growing unless `final`)
    shown only up to `SLACK.safe_prefix` so nothing shown ever has to be taken back; channel-wide
    mentions neutralised (`adapters.slack.mentions`)."""
    parts = SLACK.split(neutralise(text))
    if not final and parts:
        parts[-1] = parts[-1][: SLACK.safe_prefix]
        if not parts[-1]:
            parts.pop()
    return parts


@dataclass
class _Shown:
    """One message of an answer: its ts, the text it shows, and its live chat stream if any."""

    ts: str
    text: str | None  # None: unknown (a failed stream call), so the next sync rewrites it
    streamer: AsyncChatStream | None = None
    updated_at: float = 0.0


class SlackStream(BufferedStream):
    """The core's `TextStream` for one answer (see the module docstring)."""

    def __init__(
        self,
        client: AsyncWebClient,
        budget: WriteAllowance,
        abilities: ChannelAbilities,
        *,
        channel: str,
        thread_ts: str,
        team: str,
        user: str,
        status_after: float = STATUS_AFTER,
    ) -> None:
        super().__init__()
        self._client = client
        self._budget = budget
        self._abilities = abilities
        self._channel = channel
        self._thread = thread_ts or None
        self._team = team
        self._key = ConversationKey("slack", team, channel)
        self._user = user
        self._streaming = bool(self._thread) and abilities.can_stream(channel)
        self._synced: str | None = None
        self._shown: list[_Shown] = []
        self._warned = False
        self._status: asyncio.Task[bool] | None = None
        self._status_sent = False  # the status call left (it may still be on its way)
        if self._thread:
            self._status = asyncio.ensure_future(self._thinking(status_after))

    @property
    def streaming(self) -> bool:
        return self._streaming

    @property
    def message_ts(self) -> list[str]:
        return [m.ts for m in self._shown]

    # -- BufferedStream ------------------------------------------------------------------------

    async def _show_final(self, text: str) -> None:
        await self._sync(text, final=True)

    async def _show_interrupted(self) -> None:
        if self._text.strip():
            await self._sync(self._text + INTERRUPTED, final=True)
        elif self._shown:
            await self._sync(INTERRUPTED.strip(), final=True)
        else:
            await self._wait_status()
            if self._thread and self._status_sent:
                await self._abilities.set_status(self._channel, self._thread, "")

    def _abort_failed(self, exc: Exception) -> None:
        log.warning(
            "slack: could not mark an answer as interrupted in %s: %s",
            self._channel,
            describe(exc),
        )

    # -- internals ------------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        """A write every tick (not on each delta): the first at once, then one per interval."""
        wait = FIRST_FLUSH
        while not self._done:
            await asyncio.sleep(wait)  # cancelled when the stream stops (`BufferedStream`)
            wait = STREAM_INTERVAL if self._streaming else UPDATE_INTERVAL
            async with self._lock:
                if self._done or self._text == self._synced:
                    continue
                if self._shown and not self._budget.take(self._team, self._method()):
                    continue  # the workspace's budget is spent: a later write shows more
                try:
                    await self._sync(self._text, final=False)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # keep going: finish() delivers the whole text
                    level = logging.DEBUG if self._warned else logging.WARNING
                    self._warned = True
                    log.log(
                        level,
                        "slack: progressive update failed in %s: %s",
                        self._channel,
                        describe(exc),
                    )

    def _method(self) -> str:
        """The API method the next progressive write will use."""
        return APPEND if self._streaming and self._shown[-1].streamer is not None else UPDATE

    async def _thinking(self, after: float) -> bool:
        """ "is thinking…" under the thread once the answer's text has kept the user waiting
        `after` seconds: an answer whose first words come sooner makes no status call (the
        status would only flash before them)."""
        if after > 0:
            await asyncio.sleep(after)
        assert self._thread is not None
        self._status_sent = True
        return await self._abilities.set_status(self._channel, self._thread, THINKING)

    async def _wait_status(self) -> None:
        """Before any text: a status not sent yet never will be; one on its way is waited for,
        so "is thinking…" never lands after the answer."""
        if self._status is None or self._status.done():
            return
        if not self._status_sent:
            # Never waited for: cancelling it takes two more turns of the event loop, a full
            # pass each in a burst, and it can no longer send anything.
            self._status.cancel()
            return
        with contextlib.suppress(Exception):
            await self._status

    async def _sync(self, text: str, *, final: bool) -> None:
        await self._wait_status()  # never let "is thinking…" land after the answer
        parts = display_parts(MENTIONS.neutralise(self._key, text), final=final)
        for index, part in enumerate(parts):
            closed = final or index < len(parts) - 1
            if index < len(self._shown):
                await self._update(self._shown[index], part, closed=closed)
            else:
                self._shown.append(await self._create(part, closed=closed))
        if final:
            for extra in self._shown[len(parts) :]:
                await self._delete(extra)
            del self._shown[len(parts) :]
        self._synced = text

    async def _create(self, part: str, *, closed: bool) -> _Shown:
        if self._streaming and self._thread:
            streamer = await self._client.chat_stream(
                channel=self._channel,
                thread_ts=self._thread,
                recipient_team_id=self._team or None,
                recipient_user_id=self._user or None,
                buffer_size=1,  # this class buffers; each call here is one API call
            )
            try:
                if closed:
                    await streamer.stop(markdown_text=part)
                else:
                    await streamer.append(markdown_text=part)
            except (SlackApiError, SlackRequestError) as exc:
                if streamer.ts is None:  # startStream refused: no streaming here
                    self._streaming = False
                    self._abilities.streaming_failed(self._channel, exc)
                else:  # started, then failed: rewrite the message with chat.update
                    shown = _Shown(ts=streamer.ts, text=None)
                    await self._update(shown, part, closed=True)
                    return shown
            else:
                assert streamer.ts is not None
                return _Shown(
                    ts=streamer.ts,
                    text=part,
                    streamer=None if closed else streamer,
                    updated_at=time.monotonic(),
                )
        response = await self._client.chat_postMessage(
            channel=self._channel, thread_ts=self._thread, markdown_text=part, **NO_UNFURLS
        )
        return _Shown(ts=str(response["ts"]), text=part, updated_at=time.monotonic())

    async def _update(self, shown: _Shown, part: str, *, closed: bool) -> None:
        if shown.streamer is not None:
            if shown.text is not None and part.startswith(shown.text):
                delta = part[len(shown.text) :]
                try:
                    if closed:
                        await shown.streamer.stop(markdown_text=delta or None)
                        shown.streamer = None
                    elif delta:
                        await shown.streamer.append(markdown_text=delta)
                    shown.text = part
                    return
                except (SlackApiError, SlackRequestError) as exc:
                    log.info(
                        "slack: a chat stream in %s ended early (%s); editing instead",
                        self._channel,
                        describe(exc),
                    )
                    shown.streamer = None
                    shown.text = None
            else:  # the final text differs from what was streamed: stop, then rewrite
                with contextlib.suppress(SlackApiError, SlackRequestError):
                    await shown.streamer.stop()
                shown.streamer = None
        if shown.text == part:
            return
        elapsed = time.monotonic() - shown.updated_at
        if elapsed < UPDATE_INTERVAL:
            if not closed:
                return  # the next tick will do it
            await asyncio.sleep(UPDATE_INTERVAL - elapsed)
        if closed:
            self._budget.take(self._team, UPDATE, final=True)
        await self._client.chat_update(channel=self._channel, ts=shown.ts, markdown_text=part)
        shown.text = part
        shown.updated_at = time.monotonic()

    async def _delete(self, shown: _Shown) -> None:
        if shown.streamer is not None:
            with contextlib.suppress(SlackApiError, SlackRequestError):
                await shown.streamer.stop()
        with contextlib.suppress(SlackApiError):
            await self._client.chat_delete(channel=self._channel, ts=shown.ts)
