"""The circuit breaker every OpenAI call goes through (via `bot.backends.retry.RetryPolicy`).

When OpenAI looks down — at least `threshold` failures that say "OpenAI is unavailable"
(timeouts, dropped connections, 429 rate limits, 5xx) within the last `WINDOW` seconds, and at
least half of the calls that ended in that window — the breaker opens for a cool-down. A rate,
not a run of failures: with many calls at once, a handful of transient faults among them (which
the retries absorb) must not stop every conversation. Open, it makes calls fail at once with
`CircuitOpen`, and the dispatcher answers new messages immediately instead of queueing work that
cannot succeed. When the cool-down is over, ONE call is let through as a probe (half-open): its
success closes the breaker; its failure opens it again for twice as long (up to
`max_cooldown`). Answers from OpenAI that are errors of the request itself (400, 401, quota)
prove OpenAI is reachable and count as successes; failures that are not OpenAI's (a chat
platform refusing a post midway) count as neither.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

log = logging.getLogger(__name__)

WINDOW = 30.0  # seconds of call outcomes the failure rate is taken over
FAILURE_RATE = 0.5  # the share of failures in the window that opens the breaker

State = Literal["closed", "open", "half_open"]


class CircuitOpen(Exception):
    """OpenAI calls are suspended; `retry_in` is the number of seconds until the next probe."""

    def __init__(self, retry_in: float) -> None:
        super().__init__(f"circuit open, next probe in {retry_in:.1f}s")
        self.retry_in = retry_in

    @property
    def seconds(self) -> int:
        """`retry_in` rounded up to whole seconds, at least 1 (for the message in chat)."""
        return max(1, math.ceil(self.retry_in))


class CircuitBreaker:
    """Shared by all OpenAI calls of one process. Not thread-safe: one event loop uses it.

    `threshold == 0` switches it off (every call is admitted)."""

    def __init__(
        self,
        threshold: int,
        cooldown: float,
        max_cooldown: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max(cooldown, max_cooldown)
        self.clock = clock
        self._failures = 0
        # (when, failed) of calls that ended within the last WINDOW seconds.
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._cooldown = cooldown
        self._open_until: float | None = None
        self._probing = False
        self.times_opened = 0

    @property
    def state(self) -> State:
        if self._open_until is None:
            return "closed"
        if self.clock() < self._open_until:
            return "open"
        return "half_open"

    def retry_in(self) -> float | None:
        """Seconds until calls may go out again, or None when a call would be admitted now."""
        if self._open_until is None:
            return None
        remaining = self._open_until - self.clock()
        if remaining > 0:
            return remaining
        # Half-open: admitted unless the probe is already out; then "very soon".
        return 0.0 if self._probing else None

    def admit(self) -> bool:
        """Let a call through or raise `CircuitOpen`. True when the call is the half-open probe
        (its outcome must be reported with `succeeded`, `failed` or `released`)."""
        if self.threshold <= 0 or self._open_until is None:
            return False
        wait = self.retry_in()
        if wait is not None:
            raise CircuitOpen(wait)
        self._probing = True
        log.info("OpenAI circuit half-open: probing with one call")
        return True

    def _record(self, failed: bool) -> int:
        """Note an outcome; the number of failures in the window."""
        now = self.clock()
        self._outcomes.append((now, failed))
        while self._outcomes and self._outcomes[0][0] < now - WINDOW:
            self._outcomes.popleft()
        self._failures = sum(1 for _, f in self._outcomes if f)
        return self._failures

    def succeeded(self, probe: bool) -> None:
        self._record(False)
        if self._open_until is None:
            return
        if probe or not self._probing:
            log.warning("OpenAI circuit closed: calls go out again")
            self._open_until = None
            self._probing = False
            self._cooldown = self.base_cooldown

    def failed(self, probe: bool) -> None:
        if self.threshold <= 0:
            return
        failures = self._record(True)
        if probe:
            self._probing = False
            self._cooldown = min(self.max_cooldown, self._cooldown * 2)
            self._open(f"the probe failed; next probe in {self._cooldown:.0f}s")
        elif (
            self._open_until is None
            and failures >= self.threshold
            and failures >= FAILURE_RATE * len(self._outcomes)
        ):
            self._open(
                f"{failures} of {len(self._outcomes)} calls failed in {WINDOW:.0f}s; "
                f"next probe in {self._cooldown:.0f}s"
            )

    def released(self, probe: bool) -> None:
        """The call ended without telling anything about OpenAI (cancelled, or failed for
        another reason): give the probe slot back."""
        if probe:
            self._probing = False

    def _open(self, why: str) -> None:
        self._open_until = self.clock() + self._cooldown
        self.times_opened += 1
        log.warning("OpenAI circuit open: %s", why)
