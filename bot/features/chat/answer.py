"""Chat: answer a message with the channel's assistant, streamed, and record the run."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time

from bot.backends.base import Backend, Turn, TurnResult
from bot.backends.errors import describe, explain_error
from bot.core.assistant_config import AssistantConfig, resolve_assistant
from bot.core.config import Settings
from bot.core.delivery import DeliveryFailed, Outbox, TextStream, delivery_reason
from bot.core.errors import UserError
from bot.core.ledger import Outcome, Run, RunStatus, TextShown
from bot.core.running import AnswerStopped, RunningAnswer, RunningAnswers, StopCause
from bot.core.types import Inbound, Reply
from bot.features.chat.context import ConversationContext, Gathered
from bot.features.chat.inputs import MessageInputs, MessageMedia
from bot.features.chat.speakers import group_instructions, is_group
from storage import conversations
from storage.containers import get_container, set_container
from storage.db import Database
from storage.runs import RunRecord

log = logging.getLogger(__name__)

EMPTY_ANSWER = "(The model returned an empty answer.)"


class ChatCapability:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        backend: Backend,
        running: RunningAnswers,
        media: MessageMedia | None = None,
    ):
        self._db = db
        self._settings = settings
        self._backend = backend
        self._media = media
        self._running = running
        self._context = ConversationContext(settings)

    @property
    def backend_name(self) -> str:
        return self._backend.name

    @property
    def running(self) -> RunningAnswers:
        return self._running

    async def answer(self, event: Inbound, run: Run, outbox: Outbox) -> None:
        """Answer `event` on `run`. Returns normally also when the answer was cancelled or
        expired (the user has been told); a shutdown's cancellation propagates."""
        limit = self._settings.run_timeout
        waited = time.time() - event.received_at
        if waited > limit:
            await run.close("expired", f"waited {waited:.0f}s for its turn")
            raise UserError(
                f"Your message waited longer than {limit:g} s for its turn and was not "
                "answered. Please send it again if you still need an answer."
            )
        running = RunningAnswer(event.key, run, event.actor)
        self._running.add(running)
        timer = asyncio.get_running_loop().call_later(limit, running.stop, "expired")
        try:
            await self._answer(event, run, outbox, running)
        finally:
            timer.cancel()
            self._running.remove(running)
            running.finished.set()

    async def _answer(
        self, event: Inbound, run: Run, outbox: Outbox, running: RunningAnswer
    ) -> None:
        config = await resolve_assistant(self._db, self._settings, event.key)
        # A conversation made by this turn: the bot joins it now (earlier messages are read).
        conversation = await conversations.get_active(self._db, event.key, self._backend.name)
        fresh = conversation is None
        if conversation is None:
            conversation = await conversations.create_active(
                self._db, event.key, self._backend.name
            )
        await run.start(
            backend=self._backend.name, model=config.model, conversation_id=conversation.id
        )
        inputs = MessageInputs(event.text)
        try:
            if self._media is not None and event.attachments:
                # images and voice notes: refused or transcribed before the answer starts
                inputs = await running.run(self._media.prepare(event, config))
            gathered = await running.run(self._context.gather(event, config.model, fresh=fresh))
            earlier_images = await running.run(self._earlier_images(gathered, inputs))
        except AnswerStopped as stopped:
            await self._stopped(event, running, stopped.cause, None, "", outbox)
            return
        except BaseException as exc:
            status: RunStatus = (
                "interrupted" if isinstance(exc, asyncio.CancelledError) else "failed"
            )
            await asyncio.shield(run.close(status, describe(exc)))
            raise
        if is_group(event):
            config = dataclasses.replace(
                config, instructions=group_instructions(config.instructions, event.key.platform)
            )
        kept = _KeptIds(self._db, conversation.id)
        turn = Turn(
            key=event.key,
            user_id=event.actor.id,
            text=inputs.text,
            speaker=gathered.speaker,
            context=gathered.context,
            config=config,
            conversation_id=conversation.id,
            backend_conversation_id=conversation.backend_conversation_id,
            fresh=fresh,
            container_id=(
                await get_container(self._db, conversation.id)
                if "code_interpreter" in config.tools
                else None
            ),
            images=inputs.images + earlier_images,
            image_detail=inputs.detail if inputs.images else _detail(config.vision_detail),
            data_files=inputs.data_files,
            emit=run.emit,
            server_ids=kept,
        )
        stream = outbox.open_stream(event.key, event.message_id, event.actor)
        shown: list[str] = []

        async def show(delta: str) -> None:
            first = not shown and delta.strip()
            shown.append(delta)
            await stream.append(delta)
            if first:
                # Written while the stream posts the first words (its flusher runs meanwhile):
                # the mark lands as the text does, without delaying it behind other writes.
                await run.emit(TextShown())

        before = "\n".join(n for n in (gathered.notice, inputs.shown_before) if n)
        shown_before = f"{before}\n\n" if before else ""
        try:
            if shown_before:
                await show(shown_before)
            result = await running.run(self._backend.reply(turn, show))
            running.settled = True
        except AnswerStopped as stopped:
            await self._stopped(event, running, stopped.cause, stream, "".join(shown), outbox)
            return
        except asyncio.CancelledError:
            # Shutdown (not /cancel, not expiry: those raise AnswerStopped above).
            await asyncio.shield(run.close("interrupted", "shutdown during the answer"))
            await stream.abort()
            raise
        except Exception as exc:
            friendly = explain_error(exc, model=config.model, role="chat")
            await run.close("failed", describe(friendly or exc))
            await stream.abort()
            if friendly is None or friendly is exc:
                raise
            raise friendly from exc
        finally:
            await kept.settled()

        answer = compose_answer(result)
        text = shown_before + answer
        try:
            await stream.finish(text)
        except Exception as exc:
            raise await self._undelivered(run, "answer", exc) from exc
        await self._record(run, conversation.id, result, event)
        if result.files:
            try:
                await outbox.send(
                    Reply(event.key, text="", files=result.files, in_reply_to=event.message_id)
                )
            except Exception as exc:
                raise await self._undelivered(run, "files", exc) from exc
        if _switched_on(config.voice_replies) and self._media is not None and result.text:
            await self._voice_reply(event, config, answer, outbox)

    async def _earlier_images(self, gathered: Gathered, inputs: MessageInputs) -> tuple[str, ...]:
        """The earlier messages' images, within the images a message may bring."""
        if self._media is None or not gathered.images:
            return ()
        room = self._settings.max_images - len(inputs.images)
        return await self._media.earlier_images(gathered.images, room)

    async def _record(
        self, run: Run, conversation_id: int | None, result: TurnResult, event: Inbound
    ) -> None:
        """A completed run's final writes, in one trip, its event out of the inbox with them."""
        outcome = Outcome(
            usage=result.usage,
            response_id=result.response_id,
            steps=[(s.kind, s.title, s.detail) for s in result.steps],
            history=result.history,
            conversation_id=conversation_id,
        )
        await run.complete(outcome, settles=event)

    async def _stopped(
        self,
        event: Inbound,
        running: RunningAnswer,
        cause: StopCause,
        stream: TextStream | None,
        shown: str,
        outbox: Outbox,
    ) -> None:
        """Close an answer stopped on purpose: the run marked, the server-side response
        cancelled, the stream closed with what was shown and why it stopped."""
        if cause == "cancelled":
            who = f" by @{running.stopped_by}" if running.stopped_by else ""
            note = f"(cancelled{who})"
            detail = f"cancelled{who}"
        else:
            limit = self._settings.run_timeout
            note = f"(This answer took longer than {limit:g} s and was stopped.)"
            detail = f"ran longer than {limit:g}s"
        await asyncio.shield(running.ledger_run.close(cause, detail))
        log.info("run %d at %s %s", running.run_id, event.key, detail)
        if running.response_id is not None:
            try:
                await self._backend.cancel(running.response_id)
            except Exception as exc:
                log.warning(
                    "could not cancel response of run %d at OpenAI: %s",
                    running.run_id,
                    describe(exc),
                )
        # Append-only after what was shown, so a chat stream can end without a rewrite.
        text = f"{shown}\n\n{note}" if shown.strip() else note
        if stream is None:
            await outbox.send(Reply(event.key, text=text, in_reply_to=event.message_id))
            return
        try:
            await stream.finish(text)
        except Exception as exc:
            log.warning("could not close a stopped answer at %s: %s", event.key, describe(exc))
            await stream.abort()

    async def deliver_recovered(
        self, event: Inbound, stale: RunRecord, run: Run, outbox: Outbox
    ) -> bool:
        """After a restart: when the server finished the answer of `stale` meanwhile (a known
        response id the backend can `recover`), deliver it and complete the run. False when
        there is nothing to deliver; a response still running is then cancelled, so it does not
        run on beside the notice or the new answer that replaces it."""
        if not stale.response_id:
            return False
        try:
            result = await self._backend.recover(stale.response_id)
        except Exception as exc:
            log.warning("recovering response of run %d failed: %s", stale.id, describe(exc))
            result = None
        if result is None:
            try:
                await self._backend.cancel(stale.response_id)
            except Exception as exc:
                log.warning(
                    "could not cancel response of run %d at OpenAI: %s", stale.id, describe(exc)
                )
            return False
        await outbox.send(
            Reply(
                event.key,
                text=compose_answer(result),
                files=result.files,
                in_reply_to=event.message_id,
            )
        )
        await self._record(run, stale.conversation_id, result, event)
        log.info(
            "run %d at %s: delivered the answer recovered after a restart", stale.id, event.key
        )
        return True

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
            log.warning("voice reply failed at %s: %s", event.key, describe(exc))
            note = friendly.message if friendly else "something went wrong"
            reply = Reply(event.key, text=f"(No voice reply: {note})", in_reply_to=event.message_id)
        else:
            reply = Reply(event.key, text="", files=(audio,), in_reply_to=event.message_id)
        await outbox.send(reply)

    async def _undelivered(self, run: Run, what: str, exc: Exception) -> DeliveryFailed:
        """The platform refused the answer after its retries: the run fails with the reason
        (the dispatcher's error boundary logs it)."""
        reason = f"delivery failed ({what}): {delivery_reason(exc)}"
        await run.close("failed", reason)
        return DeliveryFailed(reason)


def compose_answer(result: TurnResult) -> str:
    """The answer as shown: the text, its cited sources, and the backend's notice."""
    text = result.text or EMPTY_ANSWER
    if result.citations:
        text = f"{text}\n\nSources: {', '.join(dict.fromkeys(result.citations))}"
    if result.notice:
        text = f"{text}\n\n{result.notice}"
    return text


def _detail(value: str) -> str:
    return value if value in ("low", "high", "auto") else "auto"


def _switched_on(value: object) -> bool:
    """A boolean channel setting, also when an admin stored it as text ("on", "false"…)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes")
    return bool(value)


class _KeptIds:
    """`bot.backends.base.ServerIds` for one conversation: stores what the backend made at
    once, so a failed or stopped answer still leaves the next turn the same conversation and
    container. The write starts at once but the model request does not wait for it (it would
    add a database round trip before every new conversation's first request); `settled`, which
    the answer awaits when the backend returns or fails, waits for it, so the conversation's
    next turn (lanes run them one at a time) always finds the ids."""

    def __init__(self, db: Database, conversation_id: int) -> None:
        self._db = db
        self._conversation_id = conversation_id
        self._writes: list[asyncio.Future[None]] = []

    async def conversation_created(self, backend_conversation_id: str) -> None:
        self._writes.append(
            asyncio.ensure_future(
                conversations.set_backend_id(
                    self._db, self._conversation_id, backend_conversation_id
                )
            )
        )

    async def container_created(self, container_id: str) -> None:
        self._writes.append(
            asyncio.ensure_future(set_container(self._db, self._conversation_id, container_id))
        )

    async def settled(self) -> None:
        """Every write started here has finished; one that failed is logged (the next turn
        then starts a new server-side conversation or container)."""
        writes, self._writes = self._writes, []
        for write in writes:
            try:
                await asyncio.shield(write)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error(
                    "could not keep the id of a new server-side object of conversation %d: %s",
                    self._conversation_id,
                    describe(exc),
                )
