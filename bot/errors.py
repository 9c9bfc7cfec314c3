"""User-facing errors and the one place that turns OpenAI failures into friendly words."""

from __future__ import annotations

import httpx2
import openai

from bot.logs import redact


class UserError(Exception):
    """A problem the user can act on. Its message is shown in chat as is, so it must be friendly
    and must never contain a secret: both texts go through `bot.logs.redact` (an OpenAI or
    platform error quoted in them may echo a URL or a token)."""

    def __init__(self, message: str, *, log_detail: str = "") -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.log_detail = redact(log_detail) if log_detail else log_detail


def explain_error(exc: BaseException, *, model: str = "") -> UserError | None:
    """A friendly `UserError` for `exc`: itself when it is one, a mapping of OpenAI SDK and
    transport failures, or None for anything else (a bug: the caller apologises and logs it)."""
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, httpx2.TransportError):
        return UserError(
            "I lost the connection to OpenAI while answering. Please try again.",
            log_detail=f"{type(exc).__name__}",
        )
    detail = f"{type(exc).__name__}: {getattr(exc, 'code', None) or ''}".rstrip(": ")
    if isinstance(exc, openai.AuthenticationError):
        return UserError(
            "OpenAI rejected the API key. An admin should check OPENAI_API_KEY.", log_detail=detail
        )
    if isinstance(exc, openai.RateLimitError):
        if exc.code == "insufficient_quota":
            return UserError(
                "The OpenAI account behind this bot has run out of credit (quota exhausted). "
                "An admin needs to check billing on the OpenAI platform.",
                log_detail=detail,
            )
        return UserError(
            "OpenAI is busy right now (rate limited). Please try again in a minute.",
            log_detail=detail,
        )
    if isinstance(exc, openai.PermissionDeniedError):
        return UserError(
            "OpenAI refused this request for the configured key (permission denied).",
            log_detail=detail,
        )
    if _is_model_error(exc):
        name = f"`{model}`" if model else "the configured model"
        return UserError(
            f"The model {name} is not available on this OpenAI endpoint. An admin can choose "
            "another with SWITCHBOARD_CHAT_MODEL or the channel's assistant settings.",
            log_detail=detail,
        )
    if isinstance(exc, openai.BadRequestError):
        if exc.code == "context_length_exceeded":
            return UserError(
                "That is too long for the model's context window. Please shorten it.",
                log_detail=detail,
            )
        return UserError(f"OpenAI could not handle this request: {exc.message}", log_detail=detail)
    if isinstance(exc, openai.APITimeoutError):
        return UserError("OpenAI took too long to answer. Please try again.", log_detail=detail)
    if isinstance(exc, openai.APIConnectionError):
        return UserError(
            "I lost the connection to OpenAI while answering. Please try again.", log_detail=detail
        )
    if isinstance(exc, openai.InternalServerError):
        return UserError(
            "OpenAI had a server error while answering. Please try again.", log_detail=detail
        )
    if isinstance(exc, openai.APIStatusError):
        return UserError(
            f"OpenAI answered with an error (HTTP {exc.status_code}). Please try again.",
            log_detail=detail,
        )
    return None


def _is_model_error(exc: BaseException) -> bool:
    if not isinstance(exc, openai.APIStatusError):
        return False
    return exc.code == "model_not_found" or (
        exc.status_code in (400, 404) and getattr(exc, "param", None) == "model"
    )
