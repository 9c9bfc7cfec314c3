"""`python -m bot`. The working directory is taken off `sys.path` first (unless it is the
project itself): in the container it is the data volume, and no code from there may run (a
plugin or a lazily imported module shadowed by a file in the volume). The container also starts
Python with `-P`, so not even this module could be shadowed."""

import os
import sys
from pathlib import Path

_PROJECT = Path(__file__).resolve().parents[1]


def _safe_path(entries: list[str]) -> list[str]:
    here = Path.cwd().resolve()
    kept = []
    for entry in entries:
        resolved = Path(entry or ".").resolve()
        if resolved == here and resolved != _PROJECT:
            continue
        kept.append(entry)
    return kept


sys.path[:] = _safe_path(sys.path)
os.environ.setdefault("PYTHONSAFEPATH", "1")  # and for any Python it starts (tool workers)

from bot.cli import main  # noqa: E402

sys.exit(main())
