"""A Slack failure in a few safe words for the logs (the error code, never a token or text)."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError


def describe(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        error: Any = exc.response.get("error") if exc.response is not None else None
        return f"{type(exc).__name__} {error or ''}".strip()
    return type(exc).__name__
