"""Logging set-up: `configure_logging` puts a `RedactingFilter` (`bot.text.redact`) on the root
handlers, so every record that reaches them is cleaned, whichever library logged it
(httpx2/httpcore, aiohttp, slack_sdk, discord.py, openai at DEBUG), including its arguments,
traceback and `stack_info`.

Every record is also made safe to read as one line: its message is capped at `MAX_LOG_CHARS`
(before redaction too, so a megabyte of attacker-sent text costs nothing to redact) and its
line breaks are escaped (`\\n`), so no text a user or a request sends can forge a log line;
a traceback keeps its lines, each indented under the record.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Iterable

from bot.core import log_context
from bot.text.redact import REDACTED, redact, register_secrets, secrets_of

__all__ = ["REDACTED", "RedactingFilter", "configure_logging", "redact", "secrets_of"]

MAX_LOG_CHARS = 4_000  # of a record's message
MAX_TRACE_CHARS = 16_000  # of its traceback and stack
# Redaction sees this much more than is kept, so a secret cut by the cap is still hidden whole.
_REDACT_MARGIN = 1_024


def clip(text: str, limit: int) -> str:
    """`text` redacted and at most `limit` characters (plus a note of what was left out)."""
    total = len(text)
    if total > limit + _REDACT_MARGIN:
        text = text[: limit + _REDACT_MARGIN]
    text = redact(text)
    if total > limit:
        text = text[:limit] + f"…({total - limit:,} more characters)"
    return text


def one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


class RedactingFilter(logging.Filter):
    """Folds a record's arguments, traceback and stack into its message, then redacts it.
    Works as a handler filter (every record the handler emits, from any logger)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        register_secrets(secrets)

    def redact(self, text: str) -> str:
        return redact(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad %-arguments: still log, still redacted
            message = f"{record.msg!r} % {record.args!r}"
        trace = []
        if record.exc_info and record.exc_info[0] is not None:
            trace.append(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            trace.append(record.exc_text)
        if record.stack_info:
            trace.append(record.stack_info)
        text = one_line(clip(message, MAX_LOG_CHARS))
        if trace:
            lines = clip("\n".join(trace), MAX_TRACE_CHARS).splitlines()
            text += "".join(f"\n    {line}" for line in lines)
        record.msg = text
        record.context = {k: redact(str(v)) for k, v in log_context.current().items()}
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


def install_redaction(logger: logging.Logger | None = None) -> None:
    """Put a `RedactingFilter` on every handler of `logger` (the root by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


class JsonFormatter(logging.Formatter):
    """One JSON object a line: `time`, `level`, `logger`, `message`, and `conversation`, `event`,
    `run` where the line concerns one (`bot.core.log_context`). Runs after `RedactingFilter`, so
    every field is already redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "context", None) or {})
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str, secrets: Iterable[str], log_format: str = "text") -> None:
    """Logs go to stderr, redacted, as text lines or (`json`) one JSON object a line."""
    register_secrets(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    install_redaction(root)
    # The HTTP clients log every request at INFO (and their options at DEBUG): shown only when
    # LOG_LEVEL is DEBUG.
    quiet = logging.NOTSET if logging.getLevelName(level) <= logging.DEBUG else logging.WARNING
    for noisy in ("httpx2", "httpx", "openai", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(quiet)
