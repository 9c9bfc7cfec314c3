"""The one redaction helper for everything that leaves the process.

`redact(text)` hides every configured secret (`register_secrets`, done by
`bot.logs.configure_logging` from the Settings) and anything token-shaped: Slack tokens (`xoxb-`,
`xoxp-`, `xapp-`, `xoxe-`, `xoxe.xoxp-`), OpenAI keys (`sk-…`, `sk-proj-…`), Discord bot tokens
(three base64 parts joined by dots), `Bearer …` and `Authorization: …` values, `key=value`
pairs named like secrets, Slack `response_url`/webhook paths and Discord interaction/webhook
tokens in URLs. Use it for any text stored (`runs.error`) or shown (`UserError`) that may carry
an exception's words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

REDACTED = "[redacted]"
MIN_SECRET = 6  # shorter "secrets" would redact ordinary words

_TOKEN = r"[A-Za-z0-9_\-]"
# Token shapes worth hiding even when they are not ours (a user pasting one, a library echoing one).
TOKEN_PATTERN = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    rf"sk-(?:proj-|svcacct-|admin-)?{_TOKEN}{{16,}}"
    r"|xox[abposre]-[A-Za-z0-9\-]{6,}"
    r"|xoxe\.xox[a-z]-[A-Za-z0-9\-]{6,}"
    r"|xapp-[A-Za-z0-9\-]{6,}"
    rf"|{_TOKEN}{{23,28}}\.{_TOKEN}{{6,7}}\.{_TOKEN}{{27,}}"  # Discord bot token
    r")"
)
# (prefix kept, value hidden)
_KEEP_PREFIX = (
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=\-]{6,}"),
    re.compile(
        r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|bot|basic)\s+)?[^\s\"',}]+"
    ),
    re.compile(
        r"(?i)((?<![A-Za-z0-9])(?:api[_-]?key|access[_-]?token|refresh[_-]?token|bot[_-]?token|app[_-]?token"
        r"|token|secret|signing[_-]?secret|client[_-]?secret|password)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}&]{6,}"
    ),
    re.compile(r"(?i)(hooks\.slack\.com/)[^\s\"'<>)]+"),
    re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_\-.]{20,}"),
)

_secrets: list[str] = []


def register_secrets(values: Iterable[str]) -> None:
    """Add secret values (and their URL-encoded forms) to what `redact` hides."""
    found = set(_secrets)
    for value in values:
        value = (value or "").strip()
        if len(value) >= MIN_SECRET:
            found.add(value)
            found.add(quote(value, safe=""))
    _secrets[:] = sorted(found, key=len, reverse=True)


def secrets_of(settings: Any) -> list[str]:
    """Every secret value in a Settings object: its `secrets()` plus any `SecretStr` field."""
    from pydantic import SecretStr

    values = list(settings.secrets()) if hasattr(settings, "secrets") else []
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr) and value.get_secret_value():
            values.append(value.get_secret_value())
    return values


def redact(text: str) -> str:
    """`text` without configured secrets and token-shaped strings."""
    if not isinstance(text, str):
        text = str(text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = TOKEN_PATTERN.sub(REDACTED, text)
    for pattern in _KEEP_PREFIX:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text
