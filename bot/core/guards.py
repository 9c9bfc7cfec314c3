"""Checks a message passes before any work is queued for it."""

from __future__ import annotations

from bot.core.config import Settings
from bot.core.errors import UserError
from bot.core.types import Inbound


def check_message(event: Inbound, settings: Settings) -> None:
    """Refuse what cannot be answered: an empty message, one longer than the deployment takes."""
    if not event.text.strip() and not event.attachments:
        raise UserError("I got an empty message. Write your question after mentioning me.")
    if len(event.text) > settings.max_input_chars:
        raise UserError(
            f"That message is {len(event.text):,} characters long; I take at most "
            f"{settings.max_input_chars:,}. Please shorten it."
        )
