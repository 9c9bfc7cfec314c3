"""Who is talking. In a group conversation (a channel, a thread, a group DM) the model is told
it is one, and every person's message reaches it with a line naming its author and how to
mention them in the platform's own form (`Alice (<@U123>):`). In a one-to-one conversation (a
DM, the console) nothing is added."""

from __future__ import annotations

import re

from bot.core.types import Actor, Inbound

PLATFORM_NAMES = {"slack": "Slack", "discord": "Discord"}
MAX_NAME = 80

GROUP_NOTE = (
    "This is a group conversation on {platform}: several people write here. Each person's "
    "message starts with a line naming its author and, in brackets, how to mention them, e.g. "
    "`Alice (<@U123>):`; tell people apart by these names. To address someone, write their "
    "mention exactly as shown (like <@U123>). Never write @everyone, @here or @channel, and do "
    "not mention roles or groups. Do not start your answer with such a name line."
)


def is_group(event: Inbound) -> bool:
    return not event.addressing.direct


def _one_line(name: str) -> str:
    return re.sub(r"\s+", " ", name).strip()[:MAX_NAME]


def label(actor: Actor, name: str = "", *, is_bot: bool = False) -> str:
    """`Alice (<@U123>)`: the display name and the mention; whichever is known alone, else the
    platform id. Other bots are marked as such."""
    shown = _one_line(name or actor.name)
    if shown and actor.mention:
        found = f"{shown} ({actor.mention})"
    else:
        found = shown or actor.mention or actor.id
    return f"{found} [a bot]" if is_bot or actor.is_bot else found


def speaker_line(actor: Actor, name: str = "") -> str:
    """The line that opens a person's message."""
    return f"{label(actor, name)}:"


def group_instructions(instructions: str, platform: str) -> str:
    """The channel's instructions, followed by what a group conversation means."""
    note = GROUP_NOTE.format(platform=PLATFORM_NAMES.get(platform, platform.title()))
    return f"{instructions}\n\n{note}" if instructions else note
