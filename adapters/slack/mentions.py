"""Keeping the bot's words from pinging a whole channel on Slack.

A model may write `<!channel>`, `<!here>`, `<!everyone>`, a user group (`<!subteam^S1>`) or a
bare `@here`, `@channel`, `@everyone`; none of them may notify anyone. `neutralise` breaks each
with an invisible word joiner (U+2060): `<!` becomes `<⁠!`, and `@here` becomes `@her⁠e` (the
joiner before the word's last letter). Mentions of people (`<@U123>`) stay real mentions;
other text is left as it is.

Whether a character changes depends only on the text before it, so the neutralised form of a
text's prefix is a prefix of the neutralised whole: a streamed answer stays append-only.
"""

from __future__ import annotations

import re

JOINER = "\u2060"
_SPECIAL = re.compile(r"(?<=<)!")  # <!channel>, <!here>, <!everyone>, <!subteam^…>
_BARE = re.compile(r"(?<![<\w])@(her|channe|everyon)(?=[el])", re.IGNORECASE)


def neutralise(text: str) -> str:
    text = _SPECIAL.sub(JOINER + "!", text)
    return _BARE.sub(lambda m: _bare(m, text), text)


def _bare(match: re.Match[str], text: str) -> str:
    """`@here` → `@her⁠e` when the next letter completes the word (`@hero` is left alone)."""
    word = match.group(1).lower() + text[match.end()].lower()
    if word in ("here", "channel", "everyone"):
        return match.group(0) + JOINER
    return match.group(0)
