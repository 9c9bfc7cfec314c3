"""Mentions in what the bot posts: a prompt-injected answer must not ping people.

The adapters note who appears in each conversation (`note`: the senders and the users their
messages mention) and pass every text they post for everyone to see through `neutralise`
before delivery, which turns into plain text (no ping, no link):

- Slack user-group mentions `<!subteam^S123|@eng>` (always: the model has no business paging a
  team) and the special mentions `<!channel>`, `<!here>`, `<!everyone>`;
- user mentions `<@U123>` / `<@123>` of anyone the conversation has not shown the model, so an
  answer cannot page an arbitrary member of the workspace.

Ephemeral replies notify nobody and are left as they are.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from bot.core.types import ConversationKey

MAX_CONVERSATIONS = 10_000
MAX_USERS = 500  # per conversation

_USER = re.compile(r"<@!?([A-Za-z0-9]{1,32})(?:\|([^<>]{0,80}))?>")
_SUBTEAM = re.compile(r"<!subteam\^([A-Za-z0-9]{1,32})(?:\|([^<>]{0,80}))?>")
_SPECIAL = re.compile(r"<!(channel|here|everyone)(?:\|[^<>]{0,80})?>")


class ConversationMentions:
    """The users each conversation has shown the model (bounded, oldest conversations
    forgotten first)."""

    def __init__(self) -> None:
        self._seen: OrderedDict[tuple[str, str, str], set[str]] = OrderedDict()

    def note(self, key: ConversationKey, text: str, *user_ids: str) -> None:
        where = (key.platform, key.workspace, key.channel)
        users = self._seen.pop(where, set())
        users.update(u for u in user_ids if u)
        users.update(match.group(1) for match in _USER.finditer(text or ""))
        if len(users) > MAX_USERS:
            users = set(sorted(users)[:MAX_USERS])
        self._seen[where] = users
        while len(self._seen) > MAX_CONVERSATIONS:
            self._seen.popitem(last=False)

    def known(self, key: ConversationKey) -> frozenset[str]:
        return frozenset(self._seen.get((key.platform, key.workspace, key.channel), ()))

    def neutralise(self, key: ConversationKey, text: str) -> str:
        """`text` with the mentions it must not make turned into plain text."""
        if "<" not in text:
            return text
        known = self.known(key)
        text = _SUBTEAM.sub(lambda m: _plain(m.group(2) or "group"), text)
        text = _SPECIAL.sub(lambda m: "@" + m.group(1), text)
        return _USER.sub(
            lambda m: m.group(0) if m.group(1) in known else _plain(m.group(2) or m.group(1)),
            text,
        )


def _plain(label: str) -> str:
    label = label.strip()
    return label if label.startswith("@") else "@" + label


# The process's one registry: fed and read by the adapters.
MENTIONS = ConversationMentions()
