"""Delivering the core's replies on Slack: the `Outbox` the dispatcher is given."""

from __future__ import annotations

import logging
import time

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack.abilities import ChannelAbilities
from adapters.slack.errors import describe
from adapters.slack.files import upload_files
from adapters.slack.mentions import neutralise
from adapters.slack.stream import SlackStream
from adapters.slack.write_allowance import WriteAllowance
from bot.core.delivery import DeliveryFailed
from bot.core.types import Actor, ConversationKey, Reply
from bot.text.split import SLACK

log = logging.getLogger(__name__)

RESPONSE_URL_TTL = 25 * 60  # Slack honours a response_url for 30 minutes (5 uses)
# Errors meaning the bot cannot post into the conversation itself (not invited, private);
# a slash command's response_url still works there.
_CANNOT_POST = frozenset({"not_in_channel", "channel_not_found", "user_not_in_channel"})
_PRIVATE_FILES_NOTE = "(Files can't be shown privately here; ask again in a DM with me.)"


class SlackOutbox:
    """`send` posts a reply (split at Slack's limits) into the conversation's thread, then its
    files; ephemeral replies go to `Reply.actor_id` only. `open_stream` gives a `SlackStream`."""

    def __init__(self, client: AsyncWebClient, budget: WriteAllowance | None = None) -> None:
        self.client = client
        self.budget = budget or WriteAllowance()
        self.abilities = ChannelAbilities(client)
        self._response_urls: dict[tuple[str, str], tuple[str, float]] = {}

    # -- streaming support -------------------------------------------------------------------

    def open_stream(self, key: ConversationKey, in_reply_to: str, actor: Actor) -> SlackStream:
        return SlackStream(
            self.client,
            self.budget,
            self.abilities,
            channel=key.channel,
            thread_ts=key.thread,
            team=key.workspace,
            user=actor.id,
        )

    # -- response_url fallback ---------------------------------------------------------------

    def remember_response_url(self, channel: str, user: str, url: str) -> None:
        """A slash command's or shortcut's response_url: the way to answer in a conversation
        the bot is not a member of."""
        if url:
            now = time.monotonic()
            self._response_urls = {
                k: v for k, v in self._response_urls.items() if now - v[1] < RESPONSE_URL_TTL
            }
            self._response_urls[(channel, user)] = (url, now)

    def _response_url(self, channel: str, user: str) -> str | None:
        entry = self._response_urls.get((channel, user))
        if entry is None or time.monotonic() - entry[1] >= RESPONSE_URL_TTL:
            return None
        return entry[0]

    # -- Outbox ------------------------------------------------------------------------------

    async def send(self, reply: Reply) -> None:
        """Deliver `reply` (the client's retry handlers retry what is worth it, see
        `adapters.slack.delivery_retry`); `DeliveryFailed` with Slack's reason when a part failed."""
        try:
            await self._send(reply)
        except (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryFailed(f"slack: {describe(exc)}") from exc

    async def _send(self, reply: Reply) -> None:
        channel = reply.key.channel
        thread = reply.key.thread or None
        parts = SLACK.split(neutralise(reply.text)) if reply.text.strip() else []
        if reply.ephemeral and reply.actor_id:
            if reply.files:
                log.warning("slack: an ephemeral reply had files; they were not posted")
                parts = parts or [_PRIVATE_FILES_NOTE]
            for part in parts:
                await self._post_ephemeral(channel, thread, reply.actor_id, part)
            return
        for part in parts:
            await self._post(channel, thread, reply.actor_id, part)
        if reply.files:
            await upload_files(self.client, channel, thread, reply.files)

    async def _post(self, channel: str, thread: str | None, user: str, text: str) -> None:
        try:
            await self.client.chat_postMessage(
                channel=channel, thread_ts=thread, markdown_text=text
            )
        except SlackApiError as exc:
            if not await self._via_response_url(exc, channel, user, text, "in_channel"):
                raise

    async def _post_ephemeral(self, channel: str, thread: str | None, user: str, text: str) -> None:
        try:
            await self.client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=thread, markdown_text=text
            )
        except SlackApiError as exc:
            if not await self._via_response_url(exc, channel, user, text, "ephemeral"):
                raise

    async def _via_response_url(
        self, exc: SlackApiError, channel: str, user: str, text: str, response_type: str
    ) -> bool:
        error = exc.response.get("error") if exc.response is not None else None
        url = self._response_url(channel, user) if user else None
        if error not in _CANNOT_POST or url is None:
            return False
        webhook = AsyncWebhookClient(url, session=getattr(self.client, "session", None))
        response = await webhook.send(text=text, response_type=response_type)
        if response.status_code != 200:
            log.warning(
                "slack: answering through a response_url failed (HTTP %s)", response.status_code
            )
            return False
        return True
