"""The media capabilities, wired: the slash commands and the media of chat messages."""

from __future__ import annotations

from bot.core.dispatcher import Command
from bot.features.audio import AudioCommands
from bot.features.chat.inputs import MessageMedia
from bot.features.images import ImageCommands
from bot.features.media import MediaContext


def media_commands(media: MediaContext) -> dict[str, Command]:
    """The media slash commands, all stateless (`ordered=False`): they skip the conversation's
    lane and take only the global concurrency limit."""
    images = ImageCommands(media)
    audio = AudioCommands(media)
    return {
        "imagine": Command(images.imagine, "generate images", ordered=False),
        "edit": Command(images.edit, "edit an image", ordered=False),
        "variation": Command(images.variation, "variations of an image", ordered=False),
        "speak": Command(audio.speak, "text to speech", ordered=False),
        "transcribe": Command(audio.transcribe, "speech to text", ordered=False),
        "translate": Command(audio.translate, "speech to English text", ordered=False),
    }


def message_media(media: MediaContext) -> MessageMedia:
    """Images and voice notes of chat messages, and voice replies."""
    return MessageMedia(media, AudioCommands(media))
