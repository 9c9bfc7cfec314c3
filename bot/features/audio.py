"""Speech to text (/transcribe, /translate, voice notes on messages) and text to speech
(/speak, voice replies), each call a metered run."""

from __future__ import annotations

import asyncio
import re

from bot.backends.speech import check_format, check_voice
from bot.core.errors import UserError
from bot.core.types import Attachment, CommandCall, ConversationKey, OutFile, Reply, Usage
from bot.features.media import MediaContext
from bot.features.media_options import Option, parse
from bot.files.recordings import prepare_for_transcription
from bot.files.supported import fetch_checked
from bot.text.sanitise import shorten

LONG_TEXT = 1500  # longer transcripts also come as a .txt file
TRANSLATE_INSTRUCTIONS = (
    "Translate the user's text into English. Reply with the translation only, nothing else. "
    "If it is already English, repeat it unchanged."
)
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


def quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.strip().splitlines())


class AudioCommands:
    def __init__(self, media: MediaContext) -> None:
        self._media = media

    # -- speech to text -----------------------------------------------------------------------

    async def transcribe_attachment(
        self,
        attachment: Attachment,
        key: ConversationKey,
        *,
        user_id: str,
        event_id: str,
        language: str | None = None,
    ) -> str:
        data = await fetch_checked(attachment, "audio", self._media.limits)
        parts = await asyncio.to_thread(prepare_for_transcription, data, attachment.name)
        model = self._media.settings.transcribe_model

        async def work() -> tuple[str, Usage]:
            texts: list[str] = []
            usage = Usage(model=model)
            for part in parts:
                heard = await self._media.audio.transcribe(
                    (part.name, part.data, part.mime),
                    model=model,
                    seconds=part.seconds,
                    language=language,
                )
                texts.append(heard.text.strip())
                usage = _add(usage, heard.usage)
            return "\n".join(t for t in texts if t), usage

        return await self._media.metered(
            key,
            user_id=user_id,
            event_id=event_id,
            kind="transcription",
            model=model,
            work=work,
        )

    async def transcribe(self, call: CommandCall) -> Reply:
        parsed = parse(call.text, call.options, (Option("language"),))
        language = str(parsed.values.get("language") or parsed.text or "").strip().lower()
        if language and not _LANGUAGE.match(language):
            raise UserError(
                f"“{shorten(language, 20)}” is not a language code; use an ISO-639-1 code such "
                "as en, fr, de."
            )
        attachment = _audio_of(call)
        text = await self.transcribe_attachment(
            attachment,
            call.key,
            user_id=call.actor.id,
            event_id=call.event_id,
            language=language or None,
        )
        return _text_reply(call, f"Transcript of “{attachment.name}”", text, "transcript")

    async def translate(self, call: CommandCall) -> Reply:
        attachment = _audio_of(call)
        settings = self._media.settings
        if settings.translation == "endpoint":
            text = await self._translate_endpoint(call, attachment)
        else:
            original = await self.transcribe_attachment(
                attachment, call.key, user_id=call.actor.id, event_id=call.event_id
            )
            text = await self.translate_text(call, original) if original.strip() else ""
        return _text_reply(call, f"English translation of “{attachment.name}”", text, "translation")

    async def _translate_endpoint(self, call: CommandCall, attachment: Attachment) -> str:
        data = await fetch_checked(attachment, "audio", self._media.limits)
        parts = await asyncio.to_thread(prepare_for_transcription, data, attachment.name)
        model = self._media.settings.translation_model

        async def work() -> tuple[str, Usage]:
            texts = []
            for part in parts:
                text = await self._media.audio.translate(
                    (part.name, part.data, part.mime), model=model
                )
                texts.append(text.strip())
            seconds = sum(p.seconds for p in parts)
            return "\n".join(t for t in texts if t), Usage(model=model, audio_seconds=seconds)

        return await self._media.metered(
            call.key,
            user_id=call.actor.id,
            event_id=call.event_id,
            kind="translation",
            model=model,
            work=work,
        )

    async def translate_text(self, call: CommandCall, text: str) -> str:
        """The fallback: a text model translates the transcript (the chat model)."""
        model = self._media.settings.chat_model

        async def work() -> tuple[str, Usage]:
            done = await self._media.completer.complete(
                model=model, instructions=TRANSLATE_INSTRUCTIONS, text=text
            )
            return done.text, done.usage

        return await self._media.metered(
            call.key,
            user_id=call.actor.id,
            event_id=call.event_id,
            kind="translation",
            model=model,
            work=work,
        )

    # -- text to speech -----------------------------------------------------------------------

    async def speak(self, call: CommandCall) -> Reply:
        parsed = parse(call.text, call.options, (Option("voice"),), text_option="text")
        if not parsed.text:
            raise UserError("Give me the text to say, e.g. `/speak Good morning! voice=coral`.")
        engine = self._media.speech
        voice = str(parsed.values.get("voice") or self._media.settings.speech_voice)
        voice = check_voice(voice, engine.voices, engine.model)
        await self._media.screen(
            call.key,
            parsed.text,
            user_id=call.actor.id,
            event_id=call.event_id,
            what="This text",
            withheld="was not spoken",
        )
        audio = await self.synthesize(
            parsed.text, call.key, user_id=call.actor.id, event_id=call.event_id, voice=voice
        )
        return Reply(call.key, text=f"Voice: {voice}", files=(audio,), actor_id=call.actor.id)

    async def synthesize(
        self, text: str, key: ConversationKey, *, user_id: str, event_id: str, voice: str = ""
    ) -> OutFile:
        """`text` spoken by the speech engine, as one metered "speech" run (priced from the
        engine's usage when it reports one, else by characters)."""
        settings = self._media.settings
        engine = self._media.speech
        voice = check_voice(voice or settings.speech_voice, engine.voices, engine.model)
        fmt = check_format(settings.speech_format)

        async def work() -> tuple[OutFile, Usage]:
            speech = await engine.synthesize(text, voice=voice, fmt=fmt)
            usage = speech.usage or Usage(model=speech.model, characters=speech.characters)
            return OutFile(f"speech.{speech.extension}", speech.mime, speech.data), usage

        return await self._media.metered(
            key, user_id=user_id, event_id=event_id, kind="speech", model=engine.model, work=work
        )


def _audio_of(call: CommandCall) -> Attachment:
    if not call.attachments:
        raise UserError(
            f"/{call.name} needs an audio file or voice note attached to the command. "
            f"(On Slack: mention me with `/{call.name}` and attach the file to that message.)"
        )
    return call.attachments[0]


def _text_reply(call: CommandCall, title: str, text: str, stem: str) -> Reply:
    if not text.strip():
        return Reply(call.key, text=f"{title}: I heard no speech.", actor_id=call.actor.id)
    if len(text) <= LONG_TEXT:
        return Reply(call.key, text=f"{title}:\n{quote(text)}", actor_id=call.actor.id)
    shown = text[:LONG_TEXT].rsplit(" ", 1)[0] + " …"
    return Reply(
        call.key,
        text=f"{title} (the whole text is in the attached file):\n{quote(shown)}",
        files=(OutFile(f"{stem}.txt", "text/plain", text.encode()),),
        actor_id=call.actor.id,
    )


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(
        model=a.model,
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        audio_seconds=a.audio_seconds + b.audio_seconds,
    )
