"""Platform-neutral helpers for the Markdown in answers, shared by the adapters' splitters."""

from __future__ import annotations

import re

_FENCE_LINE = re.compile(r"^[ \t]{0,3}```", re.MULTILINE)


def open_fence(piece: str) -> str | None:
    """The opening line (e.g. ```` ```python ````) of a code block left open at the end of
    `piece`, or None when every block is closed."""
    opening: str | None = None
    for match in _FENCE_LINE.finditer(piece):
        end = piece.find("\n", match.start())
        line = piece[match.start() : end if end != -1 else len(piece)].strip()
        if line.count("```") % 2 == 0:
            continue  # ```inline``` opens and closes on one line
        opening = None if opening is not None else line
    return opening
