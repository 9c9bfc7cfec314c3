"""The retry policy for OpenAI calls, in one place (the SDK's own retries are switched off).

Retried: connection errors and timeouts, 408/409, 429 rate limits, 5xx — honouring the server's
`retry-after-ms` / `retry-after`. Never retried: 401, `insufficient_quota`, other 4xx, and any call
that has already shown text to the user (a retry would repeat it).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx2
import openai
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.RateLimitError):
        return exc.code != "insufficient_quota"
    if isinstance(
        exc, openai.APIConnectionError | openai.InternalServerError | httpx2.TransportError
    ):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code in (408, 409)


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
        """Run `fn`, retrying retryable failures while `may_retry()` is still true."""

        def should_retry(exc: BaseException) -> bool:
            return is_retryable(exc) and may_retry()

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "OpenAI call failed (%s), retry %d of %d in %.2fs",
                type(exc).__name__,
                state.attempt_number,
                self.attempts,
                state.next_action.sleep if state.next_action else 0.0,
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts + 1),
            wait=self.wait,
            retry=retry_if_exception(should_retry),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await fn()
        raise AssertionError("unreachable")
