"""Failures of a Realtime WebSocket turned into the openai SDK's own exceptions, so the one fault
policy (`bot.backends.retry`: what is retried, the circuit breaker) and the friendly messages
(`bot.backends.errors.explain_error`) treat a Realtime call like any other OpenAI call.

* a refused handshake (HTTP status) -> the `APIStatusError` subclass of that status, with the
  error body's `code`/`param`/`type` and the response headers (so `retry-after` is honoured);
* an `error` event -> the status its `type`/`code` stands for (rate limit 429, quota 429
  `insufficient_quota`, unknown model 404, invalid request 400, server error 500);
* a dropped socket, a refused TCP connection -> `APIConnectionError`; silence -> `APITimeoutError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx2
import openai

_STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}

# `error` event codes and types -> the HTTP status the same failure has on the REST API.
_CODE_STATUS = {
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "model_not_found": 404,
    "invalid_api_key": 401,
}
_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "tokens": 429,
    "requests": 429,
    "insufficient_quota": 429,
    "server_error": 500,
}


def status_error(
    status: int,
    error: Mapping[str, Any],
    request: httpx2.Request,
    headers: Mapping[str, str] | None = None,
) -> openai.APIStatusError:
    """The SDK exception for an HTTP `status` with the error object `error`."""
    message = str(error.get("message") or f"Realtime API error (HTTP {status})")
    response = httpx2.Response(
        status,
        request=request,
        headers=dict(headers or {}),
        content=json.dumps({"error": dict(error)}).encode(),
    )
    if status >= 500:
        cls: type[openai.APIStatusError] = openai.InternalServerError
    else:
        cls = _STATUS_ERRORS.get(status, openai.APIStatusError)
    return cls(message, response=response, body=dict(error))


def handshake_error(exc: Exception, request: httpx2.Request) -> openai.APIError:
    """A refused WebSocket upgrade (`websockets.exceptions.InvalidStatus`)."""
    response = getattr(exc, "response", None)
    status = int(getattr(response, "status_code", 0) or 0)
    if not status:
        return openai.APIConnectionError(request=request)
    body = getattr(response, "body", b"") or b""
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if not isinstance(error, dict):
        error = {"message": body.decode(errors="replace")[:500] or f"HTTP {status}"}
    headers = {name.lower(): value for name, value in getattr(response, "headers", {}).items()}
    return status_error(status, error, request, headers)


def event_error(error: Mapping[str, Any], request: httpx2.Request) -> openai.APIError:
    """An `error` server event (`RealtimeError`: type, code, message, param)."""
    code = str(error.get("code") or "")
    kind = str(error.get("type") or "")
    status = _CODE_STATUS.get(code) or _TYPE_STATUS.get(kind)
    body = {key: error.get(key) for key in ("message", "type", "param", "code")}
    if code == "model_not_found" and not body.get("param"):
        body["param"] = "model"
    if status is None:
        message = str(error.get("message") or "Realtime API error")
        return openai.APIError(message, request, body=body)
    return status_error(status, body, request)


def connection_error(request: httpx2.Request) -> openai.APIConnectionError:
    return openai.APIConnectionError(request=request)


def timeout_error(request: httpx2.Request) -> openai.APITimeoutError:
    return openai.APITimeoutError(request=request)
