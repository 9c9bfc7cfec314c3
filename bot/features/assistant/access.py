"""`/assistant access`: the workspace's allow and block lists (rules in `bot.core.access`).

    /assistant access                               show the lists
    /assistant access allow|block TARGET...          add to a list
    /assistant access unallow|unblock TARGET...      take off a list
    /assistant access clear [allow|block]           empty one list or both

A TARGET is a mention (`@user`, `@role`, a Slack `@group`, `#channel`) or a kind and an id
(`user U123`, `role 123`, `group S123`, `channel C123`). Workspace admins only; every change is
audited like any other setting.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from bot.core.errors import UserError

ListName = Literal["allow", "block"]
ATTRS: dict[ListName, str] = {"allow": "access_allow", "block": "access_block"}
MAX_ENTRIES = 500
ACCESS_HELP = (
    "Usage: `/assistant access` shows who may use the assistant; workspace admins: "
    "`/assistant access allow|block|unallow|unblock TARGET…` (TARGET: @user, @role, @group, "
    "#channel, or `user|role|group|channel ID`), `/assistant access clear [allow|block]`."
)
_MENTIONS = (
    (re.compile(r"<@&(\d{1,20})>"), "role"),  # Discord role
    (re.compile(r"<!subteam\^([A-Z0-9]{2,30})(?:\|[^>]*)?>"), "role"),  # Slack user group
    (re.compile(r"<@!?([A-Z0-9]{2,30}|\d{1,20})(?:\|[^>]*)?>"), "user"),
    (re.compile(r"<#([A-Z0-9]{2,30}|\d{1,20})(?:\|[^>]*)?>"), "channel"),
)
_KIND_WORDS = {
    "user": "user",
    "users": "user",
    "role": "role",
    "roles": "role",
    "group": "role",
    "groups": "role",
    "usergroup": "role",
    "channel": "channel",
    "channels": "channel",
}
_ID = re.compile(r"[A-Za-z0-9]{2,30}")


@dataclass(frozen=True, slots=True)
class AccessShow:
    pass


@dataclass(frozen=True, slots=True)
class AccessChange:
    list_name: ListName
    add: bool
    entries: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AccessClear:
    lists: tuple[ListName, ...]


AccessCommand = AccessShow | AccessChange | AccessClear


def parse_access(text: str) -> AccessCommand:
    words = text.split()
    if not words:
        return AccessShow()
    verb = words[0].lower()
    rest = words[1:]
    if verb == "clear":
        names = [w.lower() for w in rest] or ["allow", "block"]
        if any(n not in ATTRS for n in names):
            raise UserError(ACCESS_HELP)
        return AccessClear(tuple(dict.fromkeys(names)))  # type: ignore[arg-type]
    changes: dict[str, tuple[ListName, bool]] = {
        "allow": ("allow", True),
        "block": ("block", True),
        "unallow": ("allow", False),
        "unblock": ("block", False),
    }
    if verb not in changes or not rest:
        raise UserError(ACCESS_HELP)
    list_name, add = changes[verb]
    return AccessChange(list_name, add, tuple(dict.fromkeys(parse_targets(rest))))


def parse_targets(words: Iterable[str]) -> list[str]:
    """`kind:id` entries from mentions and `KIND ID` pairs."""
    found: list[str] = []
    kind = ""
    for word in words:
        word = word.strip(",")
        if not word:
            continue
        if word.lower() in _KIND_WORDS:
            kind = _KIND_WORDS[word.lower()]
            continue
        entry = _mention(word)
        if entry is None and kind and _ID.fullmatch(word):
            entry = f"{kind}:{word}"
        if entry is None:
            shown = word[:40].replace("`", "'")
            raise UserError(f"I can't tell who or what `{shown}` is. {ACCESS_HELP}")
        found.append(entry)
    if not found:
        raise UserError(ACCESS_HELP)
    return found


def _mention(word: str) -> str | None:
    for pattern, kind in _MENTIONS:
        match = pattern.fullmatch(word)
        if match:
            return f"{kind}:{match.group(1)}"
    return None


def updated(current: Iterable[str], command: AccessChange) -> tuple[str, ...]:
    entries = list(current)
    if command.add:
        entries += [e for e in command.entries if e not in entries]
    else:
        entries = [e for e in entries if e not in command.entries]
    if len(entries) > MAX_ENTRIES:
        raise UserError(f"An access list holds at most {MAX_ENTRIES} entries.")
    return tuple(entries)


def show_entry(entry: str, platform: str) -> str:
    kind, _, ident = entry.partition(":")
    if kind == "user":
        return f"<@{ident}>"
    if kind == "channel":
        return f"<#{ident}>"
    if platform == "slack":
        return f"group {ident}"
    return f"<@&{ident}>" if platform == "discord" else f"role {ident}"


def describe(allow: Iterable[str], block: Iterable[str], platform: str) -> str:
    allow, block = list(allow), list(block)
    if not allow and not block:
        return "everyone (no allow or block list)"
    parts = []
    if allow:
        parts.append("allowed: " + ", ".join(show_entry(e, platform) for e in allow))
    if block:
        parts.append("blocked: " + ", ".join(show_entry(e, platform) for e in block))
    return "; ".join(parts)
