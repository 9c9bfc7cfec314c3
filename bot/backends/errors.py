"""The one place that turns OpenAI failures into friendly words (`bot.core.errors.UserError`).

Each failure class has exactly one message (README "Reliability" lists them): timeout, lost
connection, rate limit, OpenAI server error, exhausted quota, rejected key, permission denied,
unknown model (naming the model and the setting that chose it), content policy, context too
long, an endpoint without `/v1` or without the Conversations API, other bad requests, and the
circuit breaker being open.

OpenAI-compatible servers (LiteLLM, vLLM, Ollama…) answer the same failures with other statuses
and codes (LiteLLM: an unknown model is a 400 with `code: "400"`, `param: null`; a key it does
not know, "400 No connected db."). So failures are classified by status *and* by what the
server says (`server_message`), and the SDK's "Error code: 400 - " prefix never reaches chat.
`testing/fakes/compatible.py` holds the recorded bodies these rules are tested against.
"""

from __future__ import annotations

import ast
import logging
import re
import socket
import ssl
from collections.abc import Mapping

import httpx2
import openai

from bot.backends.breaker import CircuitBreaker, CircuitOpen
from bot.core.errors import UserError

# The setting an admin changes when a model is rejected, by the role the model played.
log = logging.getLogger(__name__)

MODEL_SETTINGS: dict[str, str] = {
    "chat": "SWITCHBOARD_CHAT_MODEL or the channel's assistant settings",
    "image": "SWITCHBOARD_IMAGE_MODEL",
    "transcribe": "SWITCHBOARD_TRANSCRIBE_MODEL",
    "speech": "SWITCHBOARD_SPEECH_MODEL",
    "embedding": "SWITCHBOARD_EMBEDDING_MODEL",
    "moderation": "SWITCHBOARD_MODERATION_MODEL",
    "translation": "SWITCHBOARD_TRANSLATION_MODEL",
}
REFUSAL_CODES = frozenset({"moderation_blocked", "content_policy_violation"})

LOST_CONNECTION = "I lost the connection to OpenAI while answering. Please try again."
UNREACHABLE = (
    "I could not reach OpenAI ({cause}). Please try again in a minute; if it keeps happening, an "
    "admin should check OPENAI_BASE_URL and the network."
)
MISSING_V1 = (
    "The OpenAI endpoint answered 404 (not found) for {path}. OPENAI_BASE_URL usually ends in "
    "`/v1` (e.g. `http://host:4000/v1`); an admin should check it."
)
NO_CONVERSATIONS = (
    "This OpenAI-compatible endpoint does not serve the Conversations API (/v1/conversations), "
    "which SWITCHBOARD_BACKEND=responses needs. An admin should set SWITCHBOARD_BACKEND=chat."
)
KEY_REJECTED = "OpenAI rejected the API key. An admin should check OPENAI_API_KEY."

# What compatible servers say, when their status and code do not tell.
_MODEL_TEXT = re.compile(
    r"invalid model|unknown model|no such model|model_not_found|model[^.]{0,80}?"
    r"(?:not found|does not exist|not exist|is not available|not supported|not allowed)",
    re.IGNORECASE,
)
_KEY_TEXT = re.compile(
    r"api[ _-]?key|no connected db|invalid (?:proxy server )?token|authenticat|unauthori[sz]ed|"
    r"virtual key|bearer",
    re.IGNORECASE,
)
_KEY_TYPES = frozenset({"auth_error", "authentication_error", "no_db_connection"})
_BUDGET_TEXT = re.compile(r"budget has been exceeded|exceededbudget|budget_exceeded", re.I)
_SDK_PREFIX = re.compile(r"^Error code: \d{3}(?: - )?")
_STATUS_PREFIX = re.compile(r"^\d{3}: ")
SERVER_MESSAGE_CHARS = 300


def connection_failure(exc: BaseException) -> tuple[str, str, bool]:
    """(host, cause, reached) for a transport failure: the cause is `dns`, `refused`, `tls`,
    `timeout` or `reset`; `reached` is False when no connection was made at all (so nothing was
    sent), True when one broke mid-way."""
    inner: BaseException | None = exc
    while isinstance(inner, openai.APIConnectionError) and inner.__cause__ is not None:
        inner = inner.__cause__
    host = _host(exc) or _host(inner)
    chain = _chain(exc)
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return host, "refused", False
    if any(isinstance(e, socket.gaierror) for e in chain):
        return host, "dns", False
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return host, "tls", False
    text = " ".join(f"{type(e).__name__} {e}" for e in chain).lower()
    if isinstance(inner, httpx2.ConnectTimeout) or isinstance(exc, openai.APITimeoutError):
        return host, "timeout", not isinstance(inner, httpx2.ConnectTimeout)
    if "ssl" in text or "certificate" in text or "tls" in text:
        return host, "tls", False
    if any(s in text for s in ("name or service", "nodename", "getaddrinfo", "name resolution")):
        return host, "dns", False
    if "refused" in text:
        return host, "refused", False
    if isinstance(inner, httpx2.ConnectError):
        return host, "connect", False
    return host, "reset", True


def explain_error(exc: BaseException, *, model: str = "", role: str = "") -> UserError | None:
    """A friendly `UserError` for `exc`: itself when it is one, a mapping of OpenAI SDK and
    transport failures, or None for anything else (a bug: the caller apologises and logs it).

    `model` and `role` (a key of `MODEL_SETTINGS`) name the model involved and the setting that
    chose it, for the "model not available" message."""
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, CircuitOpen):
        return UserError(
            f"OpenAI is unavailable right now; I'll try again in {exc.seconds} s. "
            "Please send your message again after that.",
            log_detail=f"circuit open, next probe in {exc.retry_in:.1f}s",
        )
    if isinstance(exc, httpx2.TransportError | openai.APIConnectionError) and not isinstance(
        exc, openai.APITimeoutError
    ):
        return _transport(exc)
    detail = _detail(exc)
    if is_model_error(exc):
        name = f"`{model}`" if model else "the configured model"
        setting = MODEL_SETTINGS.get(role)
        how = f"with {setting}" if setting else "in the bot's settings"
        return UserError(
            f"The model {name} is not available on this OpenAI endpoint. An admin can choose "
            f"another {how}.",
            log_detail=detail,
        )
    if isinstance(exc, openai.AuthenticationError) or is_key_rejection(exc):
        return UserError(KEY_REJECTED, log_detail=detail)
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
    if isinstance(exc, openai.APIStatusError) and _BUDGET_TEXT.search(server_message(exc)):
        return UserError(
            "The spending budget for this bot's key on the OpenAI-compatible endpoint is "
            "exhausted. An admin needs to raise it there.",
            log_detail=detail,
        )
    if isinstance(exc, openai.BadRequestError):
        said = server_message(exc)
        if exc.code in REFUSAL_CODES or "safety system" in said:
            return UserError(
                "OpenAI's safety system declined this request. Please rephrase it (or use "
                "another image) and try again.",
                log_detail=f"content policy refusal: {exc.code}",
            )
        if exc.code == "context_length_exceeded":
            return UserError(
                "That is too long for the model's context window. Please shorten it.",
                log_detail=detail,
            )
        because = f": {said}" if said else " (HTTP 400)."
        return UserError(f"OpenAI could not handle this request{because}", log_detail=detail)
    if isinstance(exc, openai.APITimeoutError):
        return UserError("OpenAI took too long to answer. Please try again.", log_detail=detail)
    if isinstance(exc, openai.InternalServerError):
        return UserError(
            "OpenAI had a server error while answering. Please try again.", log_detail=detail
        )
    if isinstance(exc, openai.NotFoundError):
        if path := _path_without_v1(exc):
            return UserError(MISSING_V1.format(path=path), log_detail=detail)
        if lacks_conversations(exc):
            return UserError(NO_CONVERSATIONS, log_detail=detail)
        return UserError(
            f"The OpenAI endpoint does not serve {_path(exc) or 'this request'} (HTTP 404). An "
            "admin should check OPENAI_BASE_URL and SWITCHBOARD_BACKEND "
            "(`scripts/run doctor` shows what the endpoint serves).",
            log_detail=detail,
        )
    if isinstance(exc, openai.APIStatusError):
        said = server_message(exc)
        return UserError(
            f"OpenAI answered with an error (HTTP {exc.status_code}"
            f"{': ' + said if said else ''}). Please try again.",
            log_detail=detail,
        )
    if isinstance(exc, openai.APIError):  # an error event inside a stream
        return UserError(
            "OpenAI reported an error while answering. Please try again.", log_detail=detail
        )
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions behind it (`__cause__`, `__context__`, exception groups)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        todo.extend(getattr(current, "exceptions", ()))
    return seen


def _host(exc: BaseException | None) -> str:
    try:  # httpx raises RuntimeError for an error raised before its request was attached
        return str(exc.request.url.host)  # type: ignore[union-attr]
    except (AttributeError, RuntimeError):
        return ""


def _transport(exc: BaseException) -> UserError:
    host, cause, reached = connection_failure(exc)
    where = f"host={host or '?'} cause={cause}"
    # The user is told next (the UserError below): a console shows that, not this line too.
    log.warning(
        "OpenAI connection failed: %s (%s)", where, type(exc).__name__, extra={"told_user": True}
    )
    if reached:
        return UserError(LOST_CONNECTION, log_detail=f"{type(exc).__name__} {where}")
    names = {
        "dns": "its address could not be resolved",
        "refused": "the connection was refused",
        "tls": "the secure connection failed",
        "timeout": "the connection timed out",
        "connect": "no connection could be made",
    }
    return UserError(
        UNREACHABLE.format(cause=names.get(cause, cause)),
        log_detail=f"{type(exc).__name__} {where}",
    )


def _path(exc: BaseException) -> str:
    try:
        return str(exc.request.url.path)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return ""


def _path_without_v1(exc: openai.NotFoundError) -> str:
    """The request path when a 404 looks like a base URL missing its `/v1` (else "")."""
    path = _path(exc)
    if not path or "/v1/" in path or path.startswith("/v1"):
        return ""
    return path


def lacks_conversations(exc: BaseException) -> bool:
    """A 404 for creating a conversation: the endpoint has no Conversations API (creating one
    cannot be "not found" otherwise)."""
    if not isinstance(exc, openai.NotFoundError):
        return False
    try:
        method = exc.request.method
    except (AttributeError, RuntimeError):
        return False
    return method == "POST" and _path(exc).rstrip("/").endswith("/conversations")


def server_message(exc: BaseException) -> str:
    """What the server said about a failed request, on one line, without the SDK's
    "Error code: 400 - " prefix; LiteLLM's nested forms (`{"detail": {"error": …}}`, a message
    that is itself "400: {'error': '…'}") are unwrapped. "" when it said nothing readable."""
    body = getattr(exc, "body", None)
    text = _text_of(body)
    if not text and isinstance(exc, openai.APIError):
        text = _SDK_PREFIX.sub("", exc.message or "")
        if text == exc.message and text.startswith("Error code"):
            text = ""
    text = _unwrap(text)
    if text.lstrip().startswith("<"):  # an HTML error page
        return ""
    text = " ".join(text.split())
    if len(text) > SERVER_MESSAGE_CHARS:
        text = text[: SERVER_MESSAGE_CHARS - 1] + "…"
    return text


def _text_of(value: object, depth: int = 0) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and depth < 3:
        for key in ("message", "detail", "error", "msg"):
            found = _text_of(value.get(key), depth + 1)
            if found:
                return found
    if isinstance(value, list) and value and depth < 3:  # FastAPI's validation details
        return _text_of(value[0], depth + 1)
    return ""


def _unwrap(text: str) -> str:
    """`400: {'error': 'x'}` or `{'error': 'x'}` (a Python dict printed into a message) -> x."""
    inner = _STATUS_PREFIX.sub("", text.strip())
    if inner.startswith("{") and inner.endswith("}"):
        try:
            value = ast.literal_eval(inner)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return inner
        return _text_of(value) or inner
    return inner


def _detail(exc: BaseException) -> str:
    """The log detail of a failure: its class, status, code and (short) what the server said."""
    name = type(exc).__name__
    if not isinstance(exc, openai.APIStatusError):
        return f"{name}: {getattr(exc, 'code', None) or ''}".rstrip(": ")
    said = server_message(exc)
    code = f" {exc.code}" if exc.code and exc.code != str(exc.status_code) else ""
    return f"{name} {exc.status_code}{code}{': ' + said[:160] if said else ''}"


def is_key_rejection(exc: BaseException) -> bool:
    """The endpoint refused the key: OpenAI's 401, or a compatible server's 400/401/403 that
    says so (LiteLLM: "No connected db." for a key it does not know)."""
    if isinstance(exc, openai.AuthenticationError):
        return True
    if not isinstance(exc, openai.APIStatusError) or exc.status_code not in (400, 401, 403):
        return False
    if str(getattr(exc, "type", "") or "") in _KEY_TYPES:
        return True
    said = server_message(exc)
    return exc.status_code != 403 and bool(_KEY_TEXT.search(said)) and not _MODEL_TEXT.search(said)


def explain_as(exc: BaseException, doing: str) -> UserError | None:
    """`explain_error` prefixed with what was being attempted ("I could not `doing`: …"),
    for admin commands that make several OpenAI calls; None for a bug."""
    friendly = explain_error(exc)
    if friendly is None:
        return None
    return UserError(f"I could not {doing}: {friendly.message}", log_detail=friendly.log_detail)


def describe(exc: BaseException) -> str:
    """One short line about a failure for run records and logs (no secrets, no user text)."""
    if isinstance(exc, UserError):
        return exc.log_detail or exc.message
    if isinstance(exc, openai.APIStatusError):
        return f"{type(exc).__name__} {exc.status_code} {exc.code or ''}".strip()
    return type(exc).__name__


def openai_down_message(breaker: CircuitBreaker | None) -> str | None:
    """What to answer a new message at once while the breaker is open (None: it is not)."""
    wait = breaker.retry_in() if breaker is not None else None
    if wait is None:
        return None
    friendly = explain_error(CircuitOpen(wait))
    return friendly.message if friendly else None


def is_model_error(exc: BaseException) -> bool:
    """OpenAI's `model_not_found`, a 400/404 about the `model` parameter, or a compatible
    server's words for it ("Invalid model name passed in model=…", "model 'x' not found", a
    key not allowed to use the model)."""
    if not isinstance(exc, openai.APIStatusError):
        return False
    if exc.code == "model_not_found" or str(getattr(exc, "type", "")).endswith(
        "model_access_denied"
    ):
        return True
    if exc.status_code not in (400, 404):
        return False
    return getattr(exc, "param", None) == "model" or bool(_MODEL_TEXT.search(server_message(exc)))
