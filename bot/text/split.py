"""Splitting long text into chat messages: one splitter, parameterised per platform.

A cut is made at a paragraph, line or word boundary near the end of each window, never in the
middle of a word unless a single "word" fills the window. A cut inside a ``` code block closes
the block at the end of the part and reopens it (with its language) at the start of the next,
so every part renders on its own. The cut of a part depends only on the text within its window,
so completed parts never change as more text arrives. Pure functions, no platform types.

What differs per platform (`Splitter`): the message limit; how far back a cut is looked for
(Discord looks for a paragraph or line break in the last half of the window, Slack only in the
same last stretch as for a space, so that everything before `safe_prefix` is final); and whether
whitespace-only parts are dropped (Discord refuses to post them).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.text.markdown import open_fence

__all__ = ["DISCORD", "SLACK", "Splitter", "open_fence"]

_CLOSE = "\n```"


@dataclass(frozen=True, slots=True)
class Splitter:
    """`limit`: the most characters in one message. `word_search`: a space is looked for only in
    the last this-many characters of the window (at most a quarter of it), else the cut is hard.
    `breaks_in_last_half`: paragraph and line breaks are looked for in the window's last half
    (else only where a space is). `drop_blank`: whitespace-only parts are left out."""

    limit: int
    word_search: int
    breaks_in_last_half: bool = False
    drop_blank: bool = False

    def __post_init__(self) -> None:
        if self._window <= self.limit // 2:
            raise ValueError("limit too small")

    @property
    def _window(self) -> int:
        """The room for text in a part that may still need a closing fence."""
        return self.limit - len(_CLOSE)

    @property
    def _word_earliest(self) -> int:
        return self._window - min(self.word_search, self._window // 4)

    @property
    def _break_earliest(self) -> int:
        return self._window // 2 if self.breaks_in_last_half else self._word_earliest

    @property
    def safe_prefix(self) -> int:
        """How much of a still-growing part is final: no cut can fall before this."""
        return min(self._word_earliest, self._break_earliest)

    def split(self, text: str) -> list[str]:
        """`text` as messages of at most `limit` characters, in order.

        Without code fences `"".join(parts) == text` (separators stay at the end of the earlier
        part), less the blank parts where they are dropped."""
        parts: list[str] = []
        prefix = ""
        rest = text
        while True:
            candidate = prefix + rest
            if len(candidate) <= self.limit:
                if self._keep(candidate) and (candidate != prefix or not parts):
                    parts.append(candidate)
                return parts
            cut = self._find_cut(candidate, len(prefix) + 1)
            piece = candidate[:cut]
            fence = open_fence(piece)
            if fence is not None:
                piece += ("" if piece.endswith("\n") else "\n") + "```"
                prefix = fence + "\n"
            else:
                prefix = ""
            if self._keep(piece):
                parts.append(piece)
            rest = candidate[cut:]

    def _keep(self, part: str) -> bool:
        return bool(part.strip() if self.drop_blank else part)

    def _find_cut(self, text: str, floor: int) -> int:
        window = text[: self._window]
        breaks = max(self._break_earliest, floor)
        words = max(self._word_earliest, floor)
        for separator, earliest in (("\n\n", breaks), ("\n", breaks), (" ", words)):
            at = window.rfind(separator, earliest)
            if at >= earliest:
                return at + len(separator)
        return self._window


# Discord: 2,000 characters a message. Slack truncates `text` after 40,000 characters, rejects
# `markdown_text` over 12,000 and recommends at most ~4,000 per message: 3,900 stays below all.
DISCORD = Splitter(limit=2_000, word_search=500, breaks_in_last_half=True, drop_blank=True)
SLACK = Splitter(limit=3_900, word_search=800)
