"""Pure functions from discord.py objects (Message, Interaction, Attachment) to the core's
normalised values. They read attributes defensively and never raise on malformed input: what
cannot be understood becomes `None` (an event to ignore) or a safe default.
"""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import re
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from adapters.discord.files import DiscordCdn, too_large
from bot.core.types import (
    Actor,
    Addressing,
    Attachment,
    AttachmentKind,
    CommandCall,
    ConversationKey,
    EarlierMessage,
    Inbound,
)
from bot.text.sanitise import clean_text, safe_filename

log = logging.getLogger(__name__)

PLATFORM = "discord"
DM_WORKSPACE = "@dm"
DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024

# Message types a person writes (DEFAULT, REPLY); the rest are system messages (pins, joins,
# thread-created notices, ...).
_USER_MESSAGE_TYPES = frozenset({0, 19})
_DOCUMENT_MIMES = (
    "text/",
    "application/pdf",
    "application/json",
    "application/msword",
    "application/vnd.",
    "application/x-yaml",
    "application/xml",
    "application/rtf",
)
_THREAD_TYPES = frozenset({10, 11, 12})  # news, public, private thread
_DM_TYPES = frozenset({1, 3})  # DM, group DM
_OPTION_NAME = re.compile(r"[-_\w]{1,32}")
_MIME = re.compile(r"[a-z0-9][\w.+\-]{0,63}/[\w.+\-]{1,127}")

Fetcher = Callable[[], Awaitable[bytes]]


MAX_SNOWFLAKE = 2**64 - 1
MAX_SIZE = 2**53  # a declared size beyond this is a lie; kept finite so MB arithmetic works
MAX_OPTION_CHARS = 6000  # Discord caps string options at 6000 characters


def _int(value: Any) -> int | None:
    """A snowflake-like non-negative int (an int, or a string of ASCII digits), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not (value.isascii() and value.isdigit() and len(value) <= 20):
            return None
    elif not isinstance(value, int):
        return None
    number = int(value)
    return number if 0 <= number <= MAX_SNOWFLAKE else None


def _text(value: Any) -> str:
    return clean_text(value) if isinstance(value, str) else ""


def _type_value(value: Any) -> int | None:
    """An enum (`discord.ChannelType.text`) or plain int as an int."""
    return _int(getattr(value, "value", value))


def is_dm(channel: Any) -> bool:
    return getattr(channel, "guild", None) is None and (
        _type_value(getattr(channel, "type", None)) in _DM_TYPES
        or getattr(channel, "guild_id", None) is None
    )


def is_thread(channel: Any) -> bool:
    return _type_value(getattr(channel, "type", None)) in _THREAD_TYPES


def conversation_key(channel: Any, guild_id: Any = None) -> ConversationKey | None:
    """The conversation a channel is: a text channel in a guild, a thread under its parent
    channel (`thread` = the thread's id, so the parent's assistant settings, budget and knowledge
    apply in it, as on Slack), or a DM. None when the channel has no usable id."""
    channel_id = _int(getattr(channel, "id", None))
    if channel_id is None:
        return None
    guild = getattr(channel, "guild", None)
    gid = (
        _int(getattr(guild, "id", None))
        or _int(guild_id)
        or _int(getattr(channel, "guild_id", None))
    )
    if gid is None:
        return ConversationKey(PLATFORM, DM_WORKSPACE, str(channel_id), "")
    parent_id = _int(getattr(channel, "parent_id", None)) if is_thread(channel) else None
    if parent_id is not None:
        return ConversationKey(PLATFORM, str(gid), str(parent_id), str(channel_id))
    return ConversationKey(PLATFORM, str(gid), str(channel_id), "")


def mentions_user(message: Any, user_id: int | None) -> bool:
    """Whether `message` mentions `user_id` (a user mention; a reply pings the author too)."""
    if user_id is None:
        return False
    try:
        if any(_int(getattr(u, "id", None)) == user_id for u in getattr(message, "mentions", ())):
            return True
        raw = getattr(message, "raw_mentions", None)
        if raw is not None and user_id in {_int(r) for r in raw}:
            return True
    except TypeError:
        return False
    return False


def mentions_role(message: Any, role_id: int | None) -> bool:
    if role_id is None:
        return False
    try:
        return role_id in {_int(r) for r in getattr(message, "raw_role_mentions", ()) or ()}
    except TypeError:
        return False


def strip_mentions(text: str, user_id: int | None, role_id: int | None = None) -> str:
    """`text` without mentions of the bot (user `<@id>`/`<@!id>`, its managed role `<@&id>`)."""
    if not isinstance(text, str):
        return ""
    text = clean_text(text)
    if user_id is not None:
        text = re.sub(rf"<@!?{user_id}>", " ", text)
    if role_id is not None:
        text = re.sub(rf"<@&{role_id}>", " ", text)
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip()


def is_platform_admin(permissions: Any) -> bool:
    """Manage Server, Manage Channels (for the channel at hand) or Administrator."""
    if permissions is None:
        return False
    return bool(
        getattr(permissions, "administrator", False)
        or getattr(permissions, "manage_guild", False)
        or getattr(permissions, "manage_channels", False)
    )


def member_permissions(author: Any, channel: Any) -> Any:
    """The author's permissions in `channel` (None in DMs or when they cannot be computed)."""
    if getattr(channel, "guild", None) is None:
        return None
    try:
        return channel.permissions_for(author)
    except Exception:
        return getattr(author, "guild_permissions", None)


def actor_from_user(user: Any, permissions: Any = None) -> Actor | None:
    user_id = _int(getattr(user, "id", None))
    if user_id is None:
        return None
    name = (
        getattr(user, "display_name", None)
        or getattr(user, "global_name", None)
        or getattr(user, "name", None)
        or ""
    )
    return Actor(
        id=str(user_id),
        name=clean_text(name)[:100] if isinstance(name, str) else "",
        is_bot=bool(getattr(user, "bot", False)),
        is_admin=is_platform_admin(permissions),
        mention=sys.intern(f"<@{user_id}>"),  # one shared string per user
    )


def attachment_kind(mime: str, filename: str, *, voice: bool = False) -> AttachmentKind:
    if voice or mime.startswith("audio/"):
        return "audio"
    if mime.startswith("image/"):
        return "image"
    if mime.startswith(_DOCUMENT_MIMES) or filename.lower().endswith(
        (".csv", ".txt", ".md", ".pdf", ".json", ".docx", ".xlsx", ".pptx")
    ):
        return "document"
    return "other"


def make_fetch(
    attachment: Any, size: int, max_bytes: int, cdn: DiscordCdn | None = None
) -> Fetcher:
    """`fetch` for one Discord attachment: refuses before downloading when the declared size is
    over `max_bytes`, and streams at most the declared size from Discord's CDN (`DiscordCdn`:
    other hosts, redirects elsewhere and bodies larger than declared are refused)."""
    name = safe_filename(getattr(attachment, "filename", ""))
    url = _text(getattr(attachment, "url", ""))

    async def fetch() -> bytes:
        if size > max_bytes:
            raise too_large(name, size, max_bytes)
        source = cdn or DiscordCdn.current()
        return await source.download(url, name, limit=max_bytes, declared=size)

    return fetch


def attachment_from_discord(
    attachment: Any,
    *,
    voice_message: bool = False,
    max_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    cdn: DiscordCdn | None = None,
) -> Attachment | None:
    """A core `Attachment` for a discord.py `Attachment` (None when it has no id or URL).
    Its name is made safe (`safe_filename`): no path, control characters or reserved names."""
    if _int(getattr(attachment, "id", None)) is None or not _text(getattr(attachment, "url", None)):
        return None
    filename = safe_filename(getattr(attachment, "filename", ""))
    size = min(_int(getattr(attachment, "size", 0)) or 0, MAX_SIZE)
    voice = voice_message
    with contextlib.suppress(Exception):
        voice = voice or bool(attachment.is_voice_message())
    mime = _text(getattr(attachment, "content_type", ""))
    mime = mime.split(";", 1)[0].strip().lower()
    if not _MIME.fullmatch(mime):
        mime = ""
    if not mime:
        mime = mimetypes.guess_type(filename)[0] or ("audio/ogg" if voice else "")
    if voice and not mime.startswith("audio/"):
        mime = "audio/ogg"
    return Attachment(
        kind=attachment_kind(mime, filename, voice=voice),
        mime=mime or "application/octet-stream",
        name=filename,
        size=size,
        fetch=make_fetch(attachment, size, max_bytes, cdn),
    )


def attachments_of(
    items: Iterable[Any],
    *,
    voice_message: bool = False,
    max_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    cdn: DiscordCdn | None = None,
) -> tuple[Attachment, ...]:
    out = []
    for item in items or ():
        att = attachment_from_discord(
            item, voice_message=voice_message, max_bytes=max_bytes, cdn=cdn
        )
        if att is not None:
            out.append(att)
    return tuple(out)


def is_from_bot(message: Any, bot_id: int | None) -> tuple[bool, bool]:
    """(is_self, is_other_bot) for a message: the bot's own, or any bot's or webhook's."""
    author = getattr(message, "author", None)
    author_id = _int(getattr(author, "id", None))
    is_self = bot_id is not None and author_id == bot_id
    other = bool(getattr(author, "bot", False)) or getattr(message, "webhook_id", None) is not None
    return is_self, other and not is_self


def bot_in_thread(channel: Any, bot_id: int | None) -> bool | None:
    """For a thread: whether the bot owns it or is one of its members (`Thread.me`, known from
    the gateway); None for a channel that is not a thread."""
    if not is_thread(channel):
        return None
    if bot_id is not None and _int(getattr(channel, "owner_id", None)) == bot_id:
        return True
    return getattr(channel, "me", None) is not None


def addressing(message: Any, bot_id: int | None, bot_role_id: int | None = None) -> Addressing:
    """What Discord says about how `message` reaches the bot: a DM, a mention of the bot (or
    its managed role), a thread it is in, a reply to one of its messages."""
    channel = getattr(message, "channel", None)
    reference = getattr(message, "reference", None)
    reply_to = _int(getattr(reference, "message_id", None))
    author = getattr(getattr(reference, "resolved", None), "author", None)
    return Addressing(
        mentioned=mentions_user(message, bot_id) or mentions_role(message, bot_role_id),
        direct=is_dm(channel),
        in_thread=is_thread(channel),
        bot_in_thread=bot_in_thread(channel, bot_id),
        reply_to="" if reply_to is None else str(reply_to),
        reply_to_bot=bot_id is not None and _int(getattr(author, "id", None)) == bot_id,
    )


def arrived_empty(event: Inbound, message: Any, bot_id: int | None) -> bool:
    """Without the message-content intent Discord sends a message that does not mention the bot
    user without its content: nothing to act on (a mention always arrives whole)."""
    return not (event.text or event.attachments) and not mentions_user(message, bot_id)


def inbound_from_message(
    message: Any,
    bot_id: int | None,
    *,
    bot_role_id: int | None = None,
    max_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    cdn: DiscordCdn | None = None,
) -> Inbound | None:
    """The core event for a Discord message with its facts (`addressing`), or None for what
    is never for the bot (system messages, malformed payloads)."""
    try:
        if _type_value(getattr(message, "type", 0)) not in _USER_MESSAGE_TYPES:
            return None
        message_id = _int(getattr(message, "id", None))
        channel = getattr(message, "channel", None)
        key = conversation_key(channel, getattr(message, "guild_id", None))
        author = getattr(message, "author", None)
        actor = actor_from_user(author, member_permissions(author, channel))
        if message_id is None or key is None or actor is None:
            log.warning("discord: dropped a message without a valid id, channel or author")
            return None
        is_self, _ = is_from_bot(message, bot_id)
        flags = getattr(message, "flags", None)
        voice = bool(getattr(flags, "voice", False))
        attachments = attachments_of(
            getattr(message, "attachments", ()) or (),
            voice_message=voice,
            max_bytes=max_bytes,
            cdn=cdn,
        )
        text = strip_mentions(_text(getattr(message, "content", "")), bot_id, bot_role_id)
        return Inbound(
            key=key,
            actor=actor,
            text=text,
            event_id=f"msg-{message_id}",
            message_id=str(message_id),
            attachments=attachments,
            addressing=addressing(message, bot_id, bot_role_id),
            is_self=is_self,
        )
    except Exception as exc:  # never raise on malformed input
        log.warning("discord: could not read a message: %s", type(exc).__name__)
        return None


def earlier_message(
    message: Any,
    bot_id: int | None,
    *,
    replied_to: bool = False,
    max_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    cdn: DiscordCdn | None = None,
) -> EarlierMessage | None:
    """A message read back from a channel (history, the message replied to) → `EarlierMessage`;
    None for system messages and what cannot be read. Other bots and webhooks are `is_bot`."""
    try:
        if _type_value(getattr(message, "type", 0)) not in _USER_MESSAGE_TYPES:
            return None
        message_id = _int(getattr(message, "id", None))
        author = actor_from_user(getattr(message, "author", None))
        if message_id is None or author is None:
            return None
        is_self, other_bot = is_from_bot(message, bot_id)
        if other_bot and not author.is_bot:
            author = Actor(author.id, author.name, True, False, author.mention)
        flags = getattr(message, "flags", None)
        return EarlierMessage(
            author=author,
            text=strip_mentions(_text(getattr(message, "content", "")), bot_id),
            message_id=str(message_id),
            is_self=is_self,
            replied_to=replied_to,
            attachments=attachments_of(
                getattr(message, "attachments", ()) or (),
                voice_message=bool(getattr(flags, "voice", False)),
                max_bytes=max_bytes,
                cdn=cdn,
            ),
        )
    except Exception as exc:  # never raise on malformed input
        log.warning("discord: could not read an earlier message: %s", type(exc).__name__)
        return None


def _option_text(value: Any) -> str:
    """An option's value as text: strings cleaned, numbers and booleans as typed, capped."""
    if isinstance(value, str):
        return clean_text(value)[:MAX_OPTION_CHARS]
    if isinstance(value, bool | int | float):
        return str(value)[:MAX_OPTION_CHARS]
    snowflake = _int(getattr(value, "id", None))  # a user, role or channel option
    return str(snowflake) if snowflake is not None else ""


def option_values(namespace: Any) -> list[tuple[str, Any]]:
    """(name, value) pairs of an `app_commands.Namespace` (or a mapping)."""
    try:
        if isinstance(namespace, Mapping):
            return list(namespace.items())
        return [(str(k), v) for k, v in namespace]
    except Exception:
        return []


def command_from_interaction(
    interaction: Any,
    name: str,
    *,
    text_options: Iterable[str] = (),
    max_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
    cdn: DiscordCdn | None = None,
) -> CommandCall | None:
    """The core `CommandCall` for a slash-command interaction: `options` as strings,
    attachment options as `Attachment`s, `text` the command's free-text options joined."""
    try:
        interaction_id = _int(getattr(interaction, "id", None))
        key = conversation_key(
            getattr(interaction, "channel", None)
            or _Channel(getattr(interaction, "channel_id", None)),
            getattr(interaction, "guild_id", None),
        )
        if interaction_id is None or key is None:
            log.warning("discord: dropped a command without a valid id or channel")
            return None
        user = getattr(interaction, "user", None)
        permissions = (
            getattr(interaction, "permissions", None) if key.workspace != DM_WORKSPACE else None
        )
        actor = actor_from_user(user, permissions)
        if actor is None:
            log.warning("discord: dropped a command without a valid user")
            return None
        options: dict[str, str] = {}
        files: list[Any] = []
        for option, value in option_values(getattr(interaction, "namespace", None)):
            if value is None or not _OPTION_NAME.fullmatch(option):
                continue  # Discord's option names: 1-32 letters, digits, - or _
            if getattr(value, "url", None) is not None and getattr(value, "filename", None):
                files.append(value)
                options[option] = safe_filename(getattr(value, "filename", ""))
            else:
                options[option] = _option_text(getattr(value, "value", value))
        text = " ".join(options[o] for o in text_options if options.get(o)).strip()
        return CommandCall(
            key=key,
            actor=actor,
            name=name,
            event_id=f"cmd-{interaction_id}",
            text=text,
            options=options,
            attachments=attachments_of(files, max_bytes=max_bytes, cdn=cdn),
        )
    except Exception as exc:
        log.warning("discord: could not read a command: %s", type(exc).__name__)
        return None


class _Channel:
    """A stand-in for an interaction whose channel object is missing (only its id is known)."""

    def __init__(self, channel_id: Any) -> None:
        self.id = channel_id
        self.guild = None
