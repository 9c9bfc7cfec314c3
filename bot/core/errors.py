"""User-facing errors. Turning OpenAI failures into them is `bot.backends.errors`'s job."""

from __future__ import annotations

from bot.text.redact import redact


class UserError(Exception):
    """A problem the user can act on. Its message is shown in chat as is, so it must be friendly
    and must never contain a secret: both texts go through `bot.text.redact` (an OpenAI or
    platform error quoted in them may echo a URL or a token)."""

    def __init__(self, message: str, *, log_detail: str = "") -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.log_detail = redact(log_detail) if log_detail else log_detail
