"""Slack's per-workspace write budgets for streamed answers.

Slack rate-limits each Web API method per workspace: `chat.appendStream` is Tier 4 (100+ calls
a minute, bursts welcome), `chat.update` Tier 3 (50+ a minute). A per-message cadence alone
would trip them as soon as enough answers stream at once in one workspace (20 answers appending
once a second are 1,200 calls a minute), so every `SlackStream` of the adapter draws its
progressive writes from one `WriteAllowance`: a token bucket per (workspace, method) refilled
at the method's rate. A progressive write that finds no token is skipped (the text keeps
accumulating and goes out with a later write); final writes are never skipped, and `chat.update`
keeps a reserve so the final edits of answers in flight still find tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

APPEND = "chat.appendStream"
UPDATE = "chat.update"

# (calls per minute, tokens kept back from progressive writes for final ones)
METHOD_BUDGETS: dict[str, tuple[float, float]] = {
    APPEND: (100.0, 0.0),  # the final text goes out with chat.stopStream, another method
    UPDATE: (50.0, 10.0),
}


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class WriteAllowance:
    def __init__(
        self,
        budgets: dict[str, tuple[float, float]] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._budgets = dict(METHOD_BUDGETS if budgets is None else budgets)
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def take(self, workspace: str, method: str, *, final: bool = False) -> bool:
        """Count one call of `method` in `workspace`. A progressive write (`final=False`) is
        allowed only while a token is left above the reserve, and is not counted otherwise; a
        final write is always allowed and always counted."""
        if method not in self._budgets:
            return True
        per_minute, reserve = self._budgets[method]
        bucket = self._refill(workspace, method, per_minute)
        if not final and bucket.tokens < 1 + reserve:
            return False
        bucket.tokens -= 1  # a final write may borrow: the bucket then refills from below 0
        return True

    def _refill(self, workspace: str, method: str, per_minute: float) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get((workspace, method))
        if bucket is None:
            if len(self._buckets) > 4096:  # idle workspaces' buckets are full: forget them
                self._buckets = {k: b for k, b in self._buckets.items() if now - b.at < 60.0}
            bucket = self._buckets[(workspace, method)] = _Bucket(per_minute, now)
        else:
            bucket.tokens = min(per_minute, bucket.tokens + (now - bucket.at) * per_minute / 60)
            bucket.at = now
        return bucket
