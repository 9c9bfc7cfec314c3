"""Untrusted text made safe to keep, show and name files after.

- `clean_text`: what a platform sent as text, storable and sendable (lone surrogates, which
  SQLite and JSON encoders refuse, become U+FFFD; NUL is dropped).
- `safe_filename`: a file name that cannot escape a directory or spoof its extension: no
  path (`../`, `/etc/`, `C:\\`), no NUL/control/format characters (RTL overrides, zero-width),
  no Windows-reserved names or characters, at most `MAX_NAME_BYTES` UTF-8 bytes.
- `safe_path`: the path to create a file at, inside a directory, from an untrusted name.
- `shorten`: untrusted text quoted in a message, cut to a readable length.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from bot.core.errors import UserError
from bot.text.redact import redact

MAX_NAME_BYTES = 200
DEFAULT_NAME = "file"
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_WINDOWS_CHARS = re.compile(r'[<>:"|?*]')
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"com{i}" for i in "123456789¹²³"}
    | {f"lpt{i}" for i in "123456789¹²³"}
)


def clean_text(value: str) -> str:
    """`value` without what cannot be encoded as UTF-8 (lone surrogates) or stored (NUL)."""
    if not isinstance(value, str):
        return ""
    return _SURROGATES.sub("\ufffd", value).replace("\x00", "")


def _visible(char: str) -> bool:
    # Cc: control (NUL, newlines, escapes); Cf: format (RTL override, zero-width joiners, BOM);
    # Cs: lone surrogates (a name that was not valid UTF-8); Co/Cn: private use, unassigned.
    return unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn")


def safe_filename(name: object, default: str = DEFAULT_NAME) -> str:
    """The last path component of `name`, cleaned so it is safe as a file name anywhere."""
    text = name if isinstance(name, str) else ""
    text = unicodedata.normalize("NFC", clean_text(text).replace("\ufffd", "_"))
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(c if _visible(c) else "" for c in text)
    text = _WINDOWS_CHARS.sub("_", text)
    text = " ".join(text.split())  # odd spaces and runs of spaces → one space
    text = text.strip(" .")  # no "..", no hidden ".x", no trailing dot (Windows drops it)
    if not text:
        return default
    if text.partition(".")[0].strip().lower() in _WINDOWS_RESERVED:
        text = "_" + text
    return _fit(text)


def _fit(name: str) -> str:
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 16:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    budget = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    cut = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip(" .")
    return (cut or DEFAULT_NAME) + suffix


def safe_path(directory: Path, name: object) -> Path:
    """Where to create a file named `name` inside `directory`; never outside it."""
    root = directory.resolve()
    path = (root / safe_filename(name)).resolve()
    if path.parent != root:
        raise UserError(
            "I can't use that file name.", log_detail=f"file name escapes {root}: {name!r}"
        )
    return path


def shorten(value: object, limit: int = 60) -> str:
    """`value` as one line of at most `limit` characters, for quoting it back to a user;
    redacted before it is cut (a cut token would no longer look like one)."""
    text = " ".join(redact(clean_text(str(value))).split())
    text = "".join(c for c in text if _visible(c) or c == " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
