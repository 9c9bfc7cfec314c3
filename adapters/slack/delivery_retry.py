"""The Slack Web API client's retry handlers: the one place Slack calls are retried.

slack-sdk's built-in handlers retry dropped connections, HTTP 429 (sleeping Retry-After) and
HTTP 500/503. Slack reports most server-side trouble as HTTP 200 with `ok: false`, which they do
not look at: `TransientErrorRetryHandler` retries those whose documented meaning is "try again"
(`internal_error`, `service_unavailable`, `request_timeout`), with exponential backoff and
jitter. `fatal_error` is left alone: Slack says the call may have partly happened, and a second
post could duplicate a message. Every post, edit, stream call and file upload of the bot goes
through the one client, so all of them get the same policy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = frozenset({"internal_error", "service_unavailable", "request_timeout"})


class TransientErrorRetryHandler(AsyncRetryHandler):
    """Retries HTTP 200 `ok: false` answers whose error is one of `TRANSIENT_ERRORS`."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        body = response.body if response is not None else None
        if not isinstance(body, dict) or body.get("ok", True):
            return False
        if body.get("error") not in TRANSIENT_ERRORS:
            return False
        log.warning(
            "slack: %s answered %s; retry %d of %d",
            request.url.rsplit("/", 1)[-1],
            body.get("error"),
            state.current_attempt + 1,
            self.max_retry_count,
        )
        return True


class CountingRateLimitHandler(AsyncRateLimitErrorRetryHandler):
    """slack-sdk's 429 handler (sleeps Retry-After, retries), telling `on_429` of each 429 so
    operators see the bot brushing against Slack's limits."""

    def __init__(self, max_retry_count: int, on_429: Callable[[], None] | None) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._on_429 = on_429

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is not None and response.status_code == 429 and self._on_429 is not None:
            self._on_429()
        return await super()._can_retry_async(
            state=state, request=request, response=response, error=error
        )


def retry_handlers(
    retries: int, backoff: float = 0.5, on_429: Callable[[], None] | None = None
) -> list[AsyncRetryHandler]:
    """The handlers for the bot's client: `retries` tries more for rate limits and server
    trouble (`SWITCHBOARD_DELIVERY_RETRIES`), two for dropped connections."""
    interval = BackoffRetryIntervalCalculator(backoff_factor=backoff)
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        CountingRateLimitHandler(retries, on_429),
        AsyncServerErrorRetryHandler(max_retry_count=retries, interval_calculator=interval),
        TransientErrorRetryHandler(max_retry_count=retries, interval_calculator=interval),
    ]
