"""What was said before the bot was asked: the earlier messages of a thread the bot joins, and
the message a question replies to, read from the platform (`Inbound.context`) and given to the
model once, with the turn that brings the bot in.

- Read when the bot is mentioned in a thread it had no conversation in (`fresh`): up to
  `SWITCHBOARD_CONTEXT_MESSAGES` earlier messages; on later turns the conversation already
  holds them. The message a question replies to (Discord) is read every time: it is new.
- Bounded by count and by tokens (`SWITCHBOARD_CONTEXT_TOKENS`, and never more than a quarter
  of the model's context window): the most recent messages are kept, each one capped.
- Attributed by speaker like every message (`bot.features.chat.speakers`); other bots'
  messages and the bot's own are marked.
- A permission the platform refused (Slack `*:history` scopes, Discord "Read Message History")
  is told once per channel and process, and logged; the bot then answers without the context.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.backends.context import estimate_tokens
from bot.core.config import Settings
from bot.core.types import Attachment, EarlierMessage, Inbound, PlatformContext
from bot.features.chat.speakers import is_group, label, speaker_line

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2_000
WINDOW_SHARE = 4  # earlier messages take at most a quarter of the context window
EARLIER_INTRO = (
    "(Earlier messages in this conversation, oldest first, posted before you were asked; "
    "for context:)"
)
MISSING_NOTICE = (
    "(I could not read the earlier messages here: the bot lacks {missing}. An admin can grant "
    "it; until then I answer from the messages I am sent.)"
)


@dataclass(frozen=True, slots=True)
class Gathered:
    """What a turn gets from the conversation's context."""

    speaker: str = ""  # the line naming the author, in a group conversation
    context: str = ""  # the earlier messages, rendered for the model
    images: tuple[Attachment, ...] = ()  # images of those messages (newest first)
    notice: str = ""  # shown before the answer (a refused permission, once)


class ConversationContext:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._told: set[tuple[str, str, str]] = set()  # channels told about a refused permission

    async def gather(self, event: Inbound, model: str, *, fresh: bool) -> Gathered:
        """The author line and earlier messages for `event` (never raises: without context
        the bot still answers)."""
        if not is_group(event):
            return Gathered()
        wanted = self._settings.context_messages if fresh and event.addressing.in_thread else 0
        found = PlatformContext()
        if event.context is not None:
            try:
                found = await event.context(wanted)
            except Exception as exc:
                log.warning("could not read the context at %s: %s", event.key, type(exc).__name__)
        earlier = [m for m in found.earlier if m.message_id != event.message_id]
        limit = min(
            self._settings.context_tokens, self._settings.context_window(model) // WINDOW_SHARE
        )
        kept = _within(earlier, limit)
        images = tuple(a for m in reversed(kept) for a in m.attachments if a.kind == "image")
        return Gathered(
            speaker=speaker_line(event.actor, found.author_name),
            context=render(kept),
            images=images,
            notice=self._notice(event, found.missing),
        )

    def _notice(self, event: Inbound, missing: str) -> str:
        if not missing:
            return ""
        where = (event.key.platform, event.key.workspace, event.key.channel)
        log.warning("cannot read earlier messages at %s: the bot lacks %s", event.key, missing)
        if where in self._told:
            return ""
        self._told.add(where)
        return MISSING_NOTICE.format(missing=missing)


def _within(messages: list[EarlierMessage], limit: int) -> list[EarlierMessage]:
    """The most recent messages whose lines fit `limit` tokens (the message replied to is kept
    first of all), oldest first."""
    kept: list[EarlierMessage] = []
    used = 0
    ordered = sorted(reversed(messages), key=lambda m: not m.replied_to)  # stable: newest first
    for message in ordered:
        cost = estimate_tokens(_line(message))
        if used + cost > limit:
            break
        used += cost
        kept.append(message)
    order = {id(m): index for index, m in enumerate(messages)}
    return sorted(kept, key=lambda m: order[id(m)])


def _line(message: EarlierMessage) -> str:
    who = "you (the assistant)" if message.is_self else label(message.author)
    images = sum(a.kind == "image" for a in message.attachments)
    files = len(message.attachments) - images
    extras = [
        f"{n} {what}{'s' if n > 1 else ''}" for n, what in ((images, "image"), (files, "file")) if n
    ]
    text = message.text.strip()
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[:MAX_MESSAGE_CHARS] + " […]"
    attached = f" [{', '.join(extras)}]" if extras else ""
    return f"{who}{attached}: {text}"


def render(messages: list[EarlierMessage]) -> str:
    """The earlier messages as one text: one line per message, then the message replied to."""
    if not messages:
        return ""
    lines = [_line(m) for m in messages if not m.replied_to]
    replied = [m for m in messages if m.replied_to]
    parts = [EARLIER_INTRO + "\n" + "\n".join(lines)] if lines else []
    for message in replied:
        parts.append(f"(The message below replies to this one:)\n{_line(message)}")
    return "\n\n".join(parts)
