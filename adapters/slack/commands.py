"""Slash commands, the "Edit image" message shortcut and its modal, wired into a bolt app.

Every listener acknowledges first (Slack's 3 seconds) and then hands a `CommandCall` to the
dispatcher, which returns at once; the answer is delivered later through the outbox.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import normalise
from adapters.slack.errors import describe
from bot.core.commands import COMMANDS
from bot.core.types import CommandCall

if TYPE_CHECKING:
    from adapters.slack.files import SlackFiles
    from adapters.slack.outbox import SlackOutbox
    from bot.core.dispatcher import Dispatcher

log = logging.getLogger(__name__)

ADMIN_CACHE_SECONDS = 300.0
NO_IMAGE = "Use “Edit image” on a message that has an image attached."
NO_PROMPT = "Say what should change in the image."


class AdminCache:
    """Workspace admins and owners from `users.info`, cached briefly."""

    def __init__(self, client: AsyncWebClient, ttl: float = ADMIN_CACHE_SECONDS) -> None:
        self._client = client
        self._ttl = ttl
        self._cache: dict[str, tuple[bool, float]] = {}

    async def is_admin(self, user_id: str) -> bool:
        hit = self._cache.get(user_id)
        now = time.monotonic()
        if hit is not None and now - hit[1] < self._ttl:
            return hit[0]
        try:
            response = await self._client.users_info(user=user_id)
            admin = normalise.user_is_admin(response.get("user"))
        except SlackApiError as exc:
            log.warning("slack: users.info for %s failed: %s", user_id, describe(exc))
            return False
        except Exception as exc:
            log.warning("slack: users.info for %s failed: %s", user_id, type(exc).__name__)
            return False
        self._cache[user_id] = (admin, now)
        return admin


class SlackCommands:
    def __init__(
        self,
        dispatcher: Dispatcher,
        outbox: SlackOutbox,
        files: SlackFiles,
        admins: AdminCache,
    ) -> None:
        self._dispatcher = dispatcher
        self._outbox = outbox
        self._files = files
        self._admins = admins

    def register(self, app: AsyncApp) -> None:
        for info in COMMANDS:
            app.command(f"/{info.name}")(self.on_command)
        app.shortcut(normalise.EDIT_SHORTCUT)(self.on_edit_shortcut)
        app.view(normalise.EDIT_MODAL)(self.on_edit_submission)

    async def on_command(self, ack: Callable[..., Awaitable[Any]], body: dict) -> None:
        await ack()
        user = str(body.get("user_id") or "")
        call = normalise.command_call(body, is_admin=await self._admins.is_admin(user))
        if call is None:
            log.warning("slack: a slash command payload could not be read")
            return
        self._outbox.remember_response_url(
            call.key.channel, call.actor.id, str(body.get("response_url") or "")
        )
        await self._submit(call)

    async def on_edit_shortcut(
        self,
        ack: Callable[..., Awaitable[Any]],
        body: dict,
        client: AsyncWebClient,
        respond: Callable[..., Awaitable[Any]],
    ) -> None:
        await ack()
        metadata = normalise.edit_modal_metadata(body)
        if metadata is None:
            await respond(text=NO_IMAGE, response_type="ephemeral")
            return
        channel = str((body.get("channel") or {}).get("id") or "")
        user = str((body.get("user") or {}).get("id") or "")
        self._outbox.remember_response_url(channel, user, str(body.get("response_url") or ""))
        try:
            await client.views_open(
                trigger_id=body.get("trigger_id"), view=normalise.edit_modal_view(metadata)
            )
        except SlackApiError as exc:
            log.warning("slack: could not open the edit modal: %s", describe(exc))
            await respond(
                text="I couldn't open the edit form in time; please try again.",
                response_type="ephemeral",
            )

    async def on_edit_submission(self, ack: Callable[..., Awaitable[Any]], body: dict) -> None:
        if not normalise.edit_prompt(body):
            await ack(response_action="errors", errors={normalise.PROMPT_BLOCK: NO_PROMPT})
            return
        await ack()
        user = str((body.get("user") or {}).get("id") or "")
        call = normalise.edit_call(
            body, self._files.fetcher, is_admin=await self._admins.is_admin(user)
        )
        if call is None:
            log.warning("slack: an edit-image submission could not be read")
            return
        await self._submit(call)

    async def _submit(self, call: CommandCall) -> None:
        try:
            await self._dispatcher.submit(call)
        except Exception as exc:
            log.error(
                "slack: could not hand /%s (event %s) to the dispatcher: %s",
                call.name,
                call.event_id,
                type(exc).__name__,
            )
