"""Whether the bot answers a message: the core's one decision over the facts an adapter reports
(`bot.core.types.Addressing`), so no adapter asks the core anything before it submits.

The rule (`verdict`, pure):
- the bot's own messages and other bots' are never answered;
- a DM, a mention of the bot, a reply to one of its messages, or a message in a thread the
  platform says the bot is in, always;
- otherwise an empty message (no text, no files) never;
- a message at the top level of a channel only when the channel's assistant answers every
  message (`reply_mode` `all`);
- a reply in a thread when the bot already takes part in that conversation, or with `reply_mode`
  `all`, except in a thread the platform says the bot is not in (Discord), where only taking
  part counts.

`MessageGate` asks the core's side (storage, the channel's assistant) only for what the verdict
leaves open, so mentions and DMs cost no lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.assistant_config import resolve_assistant
from bot.core.config import Settings
from bot.core.types import Event, Inbound
from storage import conversations
from storage.db import Database


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the facts alone say: answered now, or answered only if the bot takes part in the
    conversation (`if_taking_part`) or the channel's `reply_mode` is `all` (`if_reply_mode_all`)."""

    answer: bool = False
    if_taking_part: bool = False
    if_reply_mode_all: bool = False

    def answered(self, *, takes_part: bool, answers_all: bool) -> bool:
        return (
            self.answer
            or (self.if_taking_part and takes_part)
            or (self.if_reply_mode_all and answers_all)
        )


YES = Verdict(answer=True)
NO = Verdict()


def verdict(event: Inbound) -> Verdict:
    """The rule of the module docstring, from the event's facts alone."""
    facts = event.addressing
    if event.is_self or event.actor.is_bot:
        return NO
    if facts.direct or facts.mentioned or facts.reply_to_bot or facts.bot_in_thread:
        return YES
    if not (event.text.strip() or event.attachments):
        return NO
    if not facts.in_thread:
        return Verdict(if_reply_mode_all=True)
    return Verdict(if_taking_part=True, if_reply_mode_all=facts.bot_in_thread is None)


def should_answer(event: Inbound, *, takes_part: bool, answers_all: bool) -> bool:
    """The decision with both of the core's answers known (`MessageGate` asks them lazily)."""
    return verdict(event).answered(takes_part=takes_part, answers_all=answers_all)


class MessageGate:
    """Applies the rule in `Dispatcher.submit`; commands always pass."""

    def __init__(self, db: Database, settings: Settings, backend_name: str) -> None:
        self._db = db
        self._settings = settings
        self._backend = backend_name

    async def should_answer(self, event: Event) -> bool:
        if not isinstance(event, Inbound):
            return True
        found = verdict(event)
        if found.answer:
            return True
        if found.if_taking_part and await self.takes_part(event):
            return True
        return found.if_reply_mode_all and await self.answers_all(event)

    async def takes_part(self, event: Inbound) -> bool:
        """Whether the bot already takes part in the conversation at the event's key."""
        return await conversations.get_active(self._db, event.key, self._backend) is not None

    async def answers_all(self, event: Inbound) -> bool:
        """Whether the channel's assistant answers every message there (`reply_mode` `all`)."""
        config = await resolve_assistant(self._db, self._settings, event.key)
        return config.reply_mode == "all"
