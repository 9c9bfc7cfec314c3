"""What Slack lets the bot do in each channel, learnt as it goes: chat streaming and the AI-app
status line. One per adapter, shared by the outbox and every stream it opens."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.errors import describe

log = logging.getLogger(__name__)


class ChannelAbilities:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._no_stream: set[str] = set()  # channels where chat.startStream was refused
        self._no_status: set[str] = set()

    def can_stream(self, channel: str) -> bool:
        return channel not in self._no_stream

    def streaming_failed(self, channel: str, exc: BaseException) -> None:
        if channel not in self._no_stream:
            self._no_stream.add(channel)
            log.info(
                "slack: chat streaming is not available in %s (%s); showing answers with "
                "chat.update instead",
                channel,
                describe(exc),
            )

    async def set_status(self, channel: str, thread_ts: str, status: str) -> bool:
        """The AI-app status line ("is thinking…") under the thread; "" clears it."""
        if channel in self._no_status:
            return False
        try:
            await self._client.assistant_threads_setStatus(
                channel_id=channel, thread_ts=thread_ts, status=status
            )
            return True
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            if error not in ("ratelimited", "internal_error", "fatal_error"):
                self._no_status.add(channel)
            log.debug("slack: no status in %s: %s", channel, describe(exc))
            return False
        except Exception as exc:
            log.debug("slack: no status in %s: %s", channel, type(exc).__name__)
            return False
