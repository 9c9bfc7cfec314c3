"""The fault policy for OpenAI calls, in one place (the SDK's own retries are switched off).

Retried: connection errors and timeouts, 408/409, 429 rate limits, 5xx — with exponential
backoff and jitter, honouring the server's `retry-after-ms` / `retry-after`, at most `attempts`
retries and never past the answer's time budget (`retry_window`, else `budget` per call).
Never retried: 401, `insufficient_quota`, other 4xx. A stream that drops is retried too, also
after text was shown: a background response is resumed where it broke (`responses.retrieve(id,
stream=True, starting_after=...)`), any other answer starts again and only words the user has not
seen yet are shown (`bot.backends.common.Replayed`). Every attempt goes through the shared
`CircuitBreaker`: while it is open, calls fail at once with `CircuitOpen`. The breaker hears
of a call once, when it succeeded or gave up (a half-open probe: after its one attempt), so
faults the retries absorb never add up to an "outage" however many calls run at once.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

import httpx2
import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from bot.backends.breaker import CircuitBreaker, CircuitOpen
from bot.core.config import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# The monotonic time after which no retry starts, for the answer being worked on (set around
# each event's handling by the dispatcher; contextvars follow the task that handles it).
_deadline: ContextVar[float | None] = ContextVar("openai_retry_deadline", default=None)


@contextlib.contextmanager
def retry_window(seconds: float) -> Iterator[None]:
    """Every OpenAI call inside shares one window of `seconds` for retries (per answer:
    SWITCHBOARD_OPENAI_RETRY_BUDGET)."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.RateLimitError):
        return exc.code != "insufficient_quota"
    if isinstance(
        exc, openai.APIConnectionError | openai.InternalServerError | httpx2.TransportError
    ):
        return True
    return isinstance(exc, openai.APIStatusError) and (
        exc.status_code in (408, 409) or exc.status_code >= 500
    )


def is_openai_answer(exc: BaseException) -> bool:
    """OpenAI answered, with an error about the request itself (it is reachable)."""
    return isinstance(exc, openai.APIStatusError) and not is_retryable(exc)


def failure_kind(exc: BaseException) -> str:
    """A low-cardinality name for a failed OpenAI attempt (the metrics' `kind` label)."""
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return "connection"
    if isinstance(exc, openai.RateLimitError):
        return "quota" if exc.code == "insufficient_quota" else "rate_limit"
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return "auth"
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return "server"
        if exc.status_code == 404:
            return "not_found"
        return "bad_request"
    return "other"


def retry_after_seconds(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue
    return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    max_wait: float = 20.0
    base_wait: float = 0.5
    budget: float = 60.0
    breaker: CircuitBreaker | None = None
    # Told the kind of every failed attempt (`failure_kind`), retried or not: the metrics.
    on_failure: Callable[[str], None] | None = None

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = retry_after_seconds(exc)
        if hinted is not None:
            return min(hinted, self.max_wait)
        backoff = self.base_wait * 2 ** (state.attempt_number - 1)
        return min(self.max_wait, backoff) * random.uniform(0.5, 1.0)

    async def call(
        self, fn: Callable[[], Awaitable[T]], *, may_retry: Callable[[], bool] = lambda: True
    ) -> T:
        """Run `fn`, retrying retryable failures while `may_retry()` is still true, the retry
        count and the time budget allow it, and the circuit breaker is not open."""
        deadline = _deadline.get()
        if deadline is None:
            deadline = time.monotonic() + self.budget
        breaker = self.breaker

        def should_retry(exc: BaseException) -> bool:
            if breaker is not None and breaker.retry_in() is not None:
                return False
            return is_retryable(exc) and may_retry()

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number > self.attempts:
                return True
            if time.monotonic() + state.upcoming_sleep > deadline:
                log.warning(
                    "OpenAI retry budget spent; giving up after %d tries", state.attempt_number
                )
                return True
            return False

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "OpenAI call failed (%s), retry %d of %d in %.2fs",
                type(exc).__name__,
                state.attempt_number,
                self.attempts,
                state.next_action.sleep if state.next_action else 0.0,
            )

        async def attempt_once() -> T:
            try:
                return await fn()
            except Exception as exc:
                if self.on_failure is not None:
                    self.on_failure(failure_kind(exc))
                raise

        told = False  # the breaker already heard of the last attempt (a probe)

        async def guarded() -> T:
            if breaker is None:
                return await attempt_once()
            nonlocal told
            probe = breaker.admit()
            told = probe
            try:
                result = await attempt_once()
            except BaseException as exc:
                if probe:  # the half-open probe's one attempt decides at once
                    _tell(breaker, exc, probe=True)
                raise
            breaker.succeeded(probe)
            return result

        retrying = AsyncRetrying(
            stop=stop,
            wait=self.wait,
            retry=retry_if_exception(should_retry),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await guarded()
        except CircuitOpen:
            raise
        except BaseException as exc:
            # The breaker hears of the call once, when it gave up: the faults its retries
            # absorbed are not an outage (with many calls at once they would add up to one).
            if breaker is not None and not told:
                _tell(breaker, exc, probe=False)
            raise
        raise AssertionError("unreachable")


def _tell(breaker: CircuitBreaker, exc: BaseException, *, probe: bool) -> None:
    if is_retryable(exc):
        breaker.failed(probe)
    elif is_openai_answer(exc):
        breaker.succeeded(probe)
    else:
        breaker.released(probe)


def retry_policy(settings: Settings, breaker: CircuitBreaker | None = None) -> RetryPolicy:
    """The one fault policy; pass the process's breaker so every OpenAI call shares it."""
    return RetryPolicy(
        attempts=settings.openai_max_retries,
        max_wait=settings.openai_retry_max_wait,
        budget=settings.openai_retry_budget,
        breaker=breaker,
    )
