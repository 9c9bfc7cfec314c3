"""Slash commands, the "Edit image" message shortcut and its modal, wired into a bolt app.

Every listener acknowledges first (Slack's 3 seconds) and then hands a `CommandCall` to the
dispatcher, which returns at once; the answer is delivered later through the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import normalise
from adapters.slack.errors import describe
from adapters.slack.people import SlackPeople
from bot.core.commands import COMMANDS
from bot.core.types import CommandCall
from bot.text.mentions import MENTIONS

if TYPE_CHECKING:
    from adapters.slack.files import SlackFiles
    from adapters.slack.outbox import SlackOutbox
    from bot.core.dispatcher import Dispatcher

log = logging.getLogger(__name__)

NO_IMAGE = "Use “Edit image” on a message that has an image attached."
NO_PROMPT = "Say what should change in the image."


class SlackCommands:
    def __init__(
        self,
        dispatcher: Dispatcher,
        outbox: SlackOutbox,
        files: SlackFiles,
        people: SlackPeople,
    ) -> None:
        self._dispatcher = dispatcher
        self._outbox = outbox
        self._files = files
        self._people = people

    def register(self, app: AsyncApp) -> None:
        for info in COMMANDS:
            app.command(f"/{info.name}")(self.on_command)
        app.shortcut(normalise.EDIT_SHORTCUT)(self.on_edit_shortcut)
        app.view(normalise.EDIT_MODAL)(self.on_edit_submission)

    async def on_command(self, ack: Callable[..., Awaitable[Any]], body: dict) -> None:
        await ack()
        call = normalise.command_call(body)
        if call is None:
            log.warning("slack: a slash command payload could not be read")
            return
        call = replace(call, actor=await self._people.actor(call.key.workspace, call.actor))
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
        call = normalise.edit_call(body, self._files.fetcher)
        if call is None:
            log.warning("slack: an edit-image submission could not be read")
            return
        call = replace(call, actor=await self._people.actor(call.key.workspace, call.actor))
        await self._submit(call)

    async def _submit(self, call: CommandCall) -> None:
        MENTIONS.note(call.key, call.text, call.actor.id)
        try:
            await self._dispatcher.submit(call)
        except Exception as exc:
            log.error(
                "slack: could not hand /%s (event %s) to the dispatcher: %s",
                call.name,
                call.event_id,
                type(exc).__name__,
            )
