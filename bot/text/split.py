"""Splitting long text into Discord messages (2,000 characters each).

A cut is made at a paragraph, line or word boundary near the end of each window, never in the
middle of a word unless a single "word" fills the window. A cut inside a ``` code block closes
the block at the end of the part and reopens it (with its language) at the start of the next,
so every part renders on its own. Pure functions, no Discord types.
"""

from __future__ import annotations

from bot.text.markdown import open_fence

MESSAGE_LIMIT = 2_000
# A cut is looked for only near the end of the window: a paragraph or line break in its last
# half, else a space in its last `CUT_SEARCH` characters, else a hard cut.
CUT_SEARCH = 500
_CLOSE = "\n```"


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """`text` as messages of at most `limit` characters, in order.

    Without code fences `"".join(split_text(t)) == t` (separators stay at the end of the earlier
    part). Whitespace-only parts are dropped (Discord refuses them). The cut of a part depends
    only on the text within its window, so completed parts never change as more text arrives.
    """
    budget = limit - len(_CLOSE)
    if budget <= limit // 2:
        raise ValueError("limit too small")
    parts: list[str] = []
    prefix = ""
    rest = text
    while True:
        candidate = prefix + rest
        if len(candidate) <= limit:
            if candidate.strip() and (candidate != prefix or not parts):
                parts.append(candidate)
            return parts
        cut = _find_cut(candidate, budget, len(prefix) + 1)
        piece = candidate[:cut]
        fence = open_fence(piece)
        if fence is not None:
            piece = piece + ("" if piece.endswith("\n") else "\n") + "```"
            prefix = fence + "\n"
        else:
            prefix = ""
        if piece.strip():
            parts.append(piece)
        rest = candidate[cut:]


def _find_cut(text: str, budget: int, floor: int) -> int:
    window = text[:budget]
    line_search = max(budget // 2, floor)
    word_search = max(budget - min(CUT_SEARCH, budget // 4), floor)
    for separator, earliest in (("\n\n", line_search), ("\n", line_search), (" ", word_search)):
        at = window.rfind(separator, earliest)
        if at >= earliest:
            return at + len(separator)
    return budget
