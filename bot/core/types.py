"""The normalised values that flow between adapters and the core. No platform SDK types here."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

AttachmentKind = Literal["image", "audio", "document", "other"]


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Where a conversation lives. `thread == ""` means the whole channel (never NULL in SQLite)."""

    platform: str
    workspace: str
    channel: str
    thread: str = ""

    def __str__(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.channel}:{self.thread or '-'}"

    @property
    def channel_key(self) -> ConversationKey:
        return ConversationKey(self.platform, self.workspace, self.channel)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who sent an event. The adapter sets `is_admin` from platform permissions, `name` to the
    display name when the payload carries one, and `mention` to the platform's own way of
    mentioning this person (`<@U123>` on Slack, `<@123>` on Discord)."""

    id: str
    name: str = ""
    is_bot: bool = False
    is_admin: bool = False
    mention: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file on an inbound event. `fetch` holds the platform's auth, so tokens stay in the adapter."""

    kind: AttachmentKind
    mime: str
    name: str
    size: int
    fetch: Callable[[], Awaitable[bytes]] = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Addressing:
    """What the platform says about how a message reaches the bot. Facts only: whether the bot
    answers is the core's decision (`bot.core.addressing`).

    `mentioned`: the bot (or its role) is mentioned. `direct`: a one-to-one conversation with the
    bot (a DM, the console). `in_thread`: the message is a reply inside a thread, not at the top
    level of its channel. `bot_in_thread`: where the platform knows thread membership (Discord:
    the bot owns or joined the thread) True or False; None where it has no such notion (Slack).
    `reply_to`: the message replied to, when the platform names one; `reply_to_bot`: that
    message is the bot's."""

    mentioned: bool = False
    direct: bool = False
    in_thread: bool = False
    bot_in_thread: bool | None = None
    reply_to: str = ""
    reply_to_bot: bool = False


@dataclass(frozen=True, slots=True)
class EarlierMessage:
    """A message posted before the one the bot answers, read back from the platform: `is_self`
    the bot's own, `author.is_bot` another bot's; `replied_to` the message the answered one
    replies to (Discord's message reference)."""

    author: Actor
    text: str
    message_id: str = ""
    is_self: bool = False
    replied_to: bool = False
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class PlatformContext:
    """What an adapter found out when asked (`Inbound.context`): the author's display name when
    the event did not carry it, earlier messages oldest first, and `missing`: the permission
    the platform refused while reading them, in words for an admin ("the `channels:history`
    scope"), "" when nothing was refused."""

    author_name: str = ""
    earlier: tuple[EarlierMessage, ...] = ()
    missing: str = ""


# Reads the platform, with the adapter's credentials, only when the core asks: the argument is
# how many earlier messages of the thread at most (0: none, only the author's name and the
# message replied to). Like `Attachment.fetch`, it never calls the core.
ContextFetch = Callable[[int], Awaitable[PlatformContext]]


# A source where every message is for the bot alone (the console, events read back from the inbox).
DIRECT = Addressing(direct=True)


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message on a platform the bot can see. `addressing` holds the platform's facts about
    how it reaches the bot; `is_self` marks the bot's own messages and `actor.is_bot` other
    bots' (neither is answered)."""

    key: ConversationKey
    actor: Actor
    text: str
    event_id: str
    message_id: str = ""
    attachments: tuple[Attachment, ...] = ()
    addressing: Addressing = DIRECT
    is_self: bool = False
    received_at: float = field(default_factory=time.time, compare=False)
    # Earlier messages and names, read from the platform on demand (None: nothing to read, e.g.
    # a DM, the console, an event replayed from the inbox after a restart).
    context: ContextFetch | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class CommandCall:
    """A slash command or shortcut: `name` without the slash, `text` the raw argument string,
    `options` the platform's named options when it has them (Discord), `attachments` its files."""

    key: ConversationKey
    actor: Actor
    name: str
    event_id: str
    text: str = ""
    options: Mapping[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    received_at: float = field(default_factory=time.time, compare=False)


Event = Inbound | CommandCall


@dataclass(frozen=True, slots=True)
class OutFile:
    name: str
    mime: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Reply:
    """Something for the adapter to deliver. `ephemeral` replies are shown to `actor_id` only where
    the platform can (Slack, Discord interactions); elsewhere they are ordinary replies."""

    key: ConversationKey
    text: str = ""
    files: tuple[OutFile, ...] = ()
    in_reply_to: str = ""
    ephemeral: bool = False
    actor_id: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    """What one run consumed; priced by `bot.spend.pricing.PriceTable.cost`."""

    model: str
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    image_input_tokens: int = 0
    image_output_tokens: int = 0
    images: int = 0
    # Realtime speech: the audio part of input_tokens (not cached) and of output_tokens.
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    audio_seconds: float = 0.0
    characters: int = 0
    file_search_calls: int = 0
    web_search_calls: int = 0
    container_sessions: int = 0
