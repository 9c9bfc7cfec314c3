"""Chat: answer a message with the channel's assistant, streamed, and record the run."""

from __future__ import annotations

import asyncio
import logging

import openai

from bot.assistant import AssistantConfig, resolve_assistant
from bot.backends.base import Backend, Turn
from bot.capabilities.inputs import MessageInputs, MessageMedia
from bot.config import Settings
from bot.delivery import Outbox
from bot.errors import UserError, explain_error
from bot.pricing import PriceTable
from bot.types import Inbound, Reply
from storage import conversations, runs
from storage.db import Database
from storage.messages import append_messages

log = logging.getLogger(__name__)

EMPTY_ANSWER = "(The model returned an empty answer.)"


def check_message(event: Inbound, settings: Settings) -> None:
    """Refuse what cannot be answered, before any work is queued for it."""
    if not event.text.strip() and not event.attachments:
        raise UserError("I got an empty message. Write your question after mentioning me.")
    if len(event.text) > settings.max_input_chars:
        raise UserError(
            f"That message is {len(event.text):,} characters long; I take at most "
            f"{settings.max_input_chars:,}. Please shorten it."
        )


class ChatCapability:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        backend: Backend,
        prices: PriceTable,
        media: MessageMedia | None = None,
    ):
        self._db = db
        self._settings = settings
        self._backend = backend
        self._prices = prices
        self._media = media

    @property
    def backend_name(self) -> str:
        return self._backend.name

    async def answer(self, event: Inbound, run_id: int, outbox: Outbox) -> None:
        config = await resolve_assistant(self._db, self._settings, event.key)
        conversation = await conversations.ensure_active(self._db, event.key, self._backend.name)
        await runs.start_run(
            self._db,
            run_id,
            backend=self._backend.name,
            model=config.model,
            conversation_id=conversation.id,
        )
        inputs = MessageInputs(event.text)
        if self._media is not None and event.attachments:
            try:  # images and voice notes: refused or transcribed before the answer starts
                inputs = await self._media.prepare(event, config)
            except BaseException as exc:
                await asyncio.shield(self._close_run(run_id, "failed", _describe(exc)))
                raise
        turn = Turn(
            key=event.key,
            user_id=event.actor.id,
            text=inputs.text,
            config=config,
            conversation_id=conversation.id,
            backend_conversation_id=conversation.backend_conversation_id,
            images=inputs.images,
            image_detail=inputs.detail,
            data_files=inputs.data_files,
        )
        stream = outbox.open_stream(event.key, event.message_id, event.actor)
        shown_before = f"{inputs.shown_before}\n\n" if inputs.shown_before else ""
        try:
            if shown_before:
                await stream.append(shown_before)
            result = await self._backend.reply(turn, stream.append)
        except asyncio.CancelledError:
            await asyncio.shield(
                self._close_run(run_id, "interrupted", "shutdown during the answer")
            )
            await stream.abort()
            raise
        except Exception as exc:
            friendly = explain_error(exc, model=config.model)
            await self._close_run(run_id, "failed", _describe(friendly or exc))
            await stream.abort()
            if friendly is None or friendly is exc:
                raise
            raise friendly from exc

        text = result.text or EMPTY_ANSWER
        if result.citations:
            text = f"{text}\n\nSources: {', '.join(dict.fromkeys(result.citations))}"
        if result.notice:
            text = f"{text}\n\n{result.notice}"
        answer, text = text, shown_before + text
        try:
            await stream.finish(text)
        except Exception as exc:
            await self._close_run(run_id, "failed", f"delivery failed: {type(exc).__name__}")
            raise
        cost = self._prices.cost(result.usage)
        async with self._db.batch() as conn:
            await runs.finish_run(conn, run_id, "completed", response_id=result.response_id)
            await runs.record_usage(conn, run_id, result.usage, cost)
            if result.history:
                await append_messages(conn, conversation.id, run_id, result.history)
        if result.files:
            await outbox.send(
                Reply(event.key, text="", files=result.files, in_reply_to=event.message_id)
            )
        if _switched_on(config.voice_replies) and self._media is not None and result.text:
            await self._voice_reply(event, config, answer, outbox)

    async def _voice_reply(
        self, event: Inbound, config: AssistantConfig, answer: str, outbox: Outbox
    ) -> None:
        """The answer, also as an audio file; a failure here costs only the audio."""
        assert self._media is not None
        try:
            audio = await self._media.voice_reply(event, config, answer)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            friendly = explain_error(exc)
            log.warning("voice reply failed at %s: %s", event.key, _describe(exc))
            note = friendly.message if friendly else "something went wrong"
            reply = Reply(event.key, text=f"(No voice reply: {note})", in_reply_to=event.message_id)
        else:
            reply = Reply(event.key, text="", files=(audio,), in_reply_to=event.message_id)
        await outbox.send(reply)

    async def _close_run(self, run_id: int, status: runs.RunStatus, error: str) -> None:
        await runs.close_run(self._db, run_id, status, error)


def _switched_on(value: object) -> bool:
    """A boolean channel setting, also when an admin stored it as text ("on", "false"…)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes")
    return bool(value)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UserError):
        return exc.log_detail or exc.message
    if isinstance(exc, openai.APIStatusError):
        return f"{type(exc).__name__} {exc.status_code} {exc.code or ''}".strip()
    return type(exc).__name__
