"""Logging set-up: one line per record, and every configured secret redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

# Token shapes worth hiding even when they are not ours (a user pasting one, a library echoing one).
TOKEN_PATTERN = re.compile(
    r"(sk-[A-Za-z0-9_\-]{16,}|xox[abposr]-[A-Za-z0-9\-]{10,}|xapp-[A-Za-z0-9\-]{10,}"
    r"|[MN][A-Za-z\d]{23,}\.[\w-]{6}\.[\w-]{27,})"
)
REDACTED = "[redacted]"


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return TOKEN_PATTERN.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redact(message)
        if record.exc_info:
            cleaned_exc = self.redact(logging.Formatter().formatException(record.exc_info))
            cleaned = f"{cleaned}\n{cleaned_exc}"
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = cleaned, None
        return True


def configure_logging(level: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The HTTP clients log request lines at INFO; keep them for DEBUG.
    for noisy in ("httpx2", "httpx", "openai", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.WARNING))
