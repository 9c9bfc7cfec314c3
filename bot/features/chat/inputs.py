"""The media of a chat message: images for vision (data URLs, never a platform's private URL)
and voice notes / audio files transcribed, ready for one `Turn`; plus voice replies."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from bot.backends.base import InputFile
from bot.core.assistant_config import AssistantConfig
from bot.core.errors import UserError
from bot.core.types import Attachment, Inbound, OutFile
from bot.features.audio import AudioCommands, quote
from bot.features.media import MediaContext
from bot.files import pictures
from bot.files.supported import MB, check_attachment, check_document, fetch_checked, fetch_document

log = logging.getLogger(__name__)

DETAILS = ("low", "high", "auto")
DOCUMENTS_NEED_A_TOOL = (
    "(I did not read {names}: documents need an admin to enable code interpreter here "
    "(`/assistant set tools code_interpreter`) or to add them as knowledge "
    "(`/assistant knowledge add`).)"
)


@dataclass(frozen=True, slots=True)
class MessageInputs:
    text: str  # what the model is asked: the message text plus any transcripts
    images: tuple[str, ...] = ()  # data URLs
    detail: str = "auto"
    shown_before: str = ""  # shown before the answer: quoted transcripts, notes
    data_files: tuple[InputFile, ...] = ()  # for code interpreter


class MessageMedia:
    def __init__(self, media: MediaContext, audio: AudioCommands) -> None:
        self._media = media
        self._audio = audio

    async def prepare(self, event: Inbound, config: AssistantConfig) -> MessageInputs:
        if not event.attachments:
            return MessageInputs(event.text)
        limits = self._media.limits
        images, audio, documents = [], [], []
        for attachment in event.attachments:
            if attachment.kind == "document":
                documents.append(attachment)
                continue
            kind = check_attachment(attachment, None, limits)
            (images if kind == "image" else audio).append(attachment)
        notes: list[str] = []
        data_files = await self._documents(documents, config, notes)
        most = self._media.settings.max_images
        if len(images) > most:
            notes.append(f"(I looked at the first {most} of your {len(images)} images.)")
            images = images[:most]
        urls = []
        for attachment in images:
            data = await fetch_checked(attachment, "image", limits)
            prepared = await asyncio.to_thread(
                pictures.prepare_for_vision,
                data,
                attachment.name,
                max_side=self._media.settings.image_max_side,
                max_bytes=limits.image_bytes,
            )
            urls.append(prepared.data_url())
        transcripts = []
        for attachment in audio:
            text = await self._audio.transcribe_attachment(
                attachment, event.key, user_id=event.actor.id, event_id=event.event_id
            )
            transcripts.append(text.strip())
        heard = "\n".join(t for t in transcripts if t)
        await self._media.screen(
            event.key,
            heard,
            user_id=event.actor.id,
            event_id=event.event_id,
            what="What you said in the recording",
            withheld="was not sent to the assistant",
            moderated=config.moderation,
        )
        if audio and not heard:
            if not event.text.strip() and not urls:
                raise UserError("I couldn't hear any speech in that recording.")
            notes.append("(I heard no speech in the recording.)")
        shown = [quote(heard)] if heard else []
        text = "\n\n".join(part for part in (event.text.strip(), heard) if part)
        detail = config.vision_detail if config.vision_detail in DETAILS else "auto"
        return MessageInputs(
            text=text,
            images=tuple(urls),
            detail=detail,
            shown_before="\n".join(shown + notes),
            data_files=data_files,
        )

    async def earlier_images(
        self, attachments: tuple[Attachment, ...], room: int
    ) -> tuple[str, ...]:
        """Images of earlier messages, for vision: at most `room`, each prepared as an attached
        image is; one that cannot be read is left out (it is context, not the question)."""
        limits = self._media.limits
        urls: list[str] = []
        for attachment in attachments[: max(0, room)]:
            try:
                check_attachment(attachment, "image", limits)
                data = await fetch_checked(attachment, "image", limits)
                prepared = await asyncio.to_thread(
                    pictures.prepare_for_vision,
                    data,
                    attachment.name,
                    max_side=self._media.settings.image_max_side,
                    max_bytes=limits.image_bytes,
                )
            except Exception as exc:
                log.info("left out an earlier image (%s): %s", attachment.name, type(exc).__name__)
                continue
            urls.append(prepared.data_url())
        return tuple(urls)

    async def _documents(
        self, documents: list[Attachment], config: AssistantConfig, notes: list[str]
    ) -> tuple[InputFile, ...]:
        """Documents for code interpreter when the channel has it; otherwise a note saying
        what would make them readable."""
        if not documents:
            return ()
        if "code_interpreter" not in config.tools:
            names = ", ".join(f"“{d.name}”" for d in documents)
            notes.append(DOCUMENTS_NEED_A_TOOL.format(names=names))
            return ()
        limit = int(self._media.settings.document_max_mb * MB)
        for document in documents:
            check_document(document, limit)
        files = []
        for document in documents:
            data = await fetch_document(document, limit)
            files.append(
                InputFile(document.name, document.mime or "application/octet-stream", data)
            )
        return tuple(files)

    async def voice_reply(self, event: Inbound, config: AssistantConfig, text: str) -> OutFile:
        return await self._audio.synthesize(
            text[:4096],
            event.key,
            user_id=event.actor.id,
            event_id=event.event_id,
            voice=config.voice,
        )
