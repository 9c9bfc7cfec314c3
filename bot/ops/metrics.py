"""Prometheus metrics, fed by the run ledger's notes (`bot.core.ledger`), the fault policy's failed
attempts and the adapters' delivery reports; gauges are read when scraped.

The names are public contract (README, "Operating Switchboard"): `switchboard_runs_total{status}`,
`switchboard_answer_seconds`, `switchboard_first_text_seconds`,
`switchboard_openai_errors_total{kind}`, `switchboard_tokens_total{direction}`,
`switchboard_cost_usd_total`, `switchboard_queued`, `switchboard_breaker_open`. Labels stay
low-cardinality: no user, channel or workspace ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from bot.core.ledger import Ended, LedgerNote, Run, Started, TextShown

# Seconds: a first word within tens of milliseconds, whole answers up to minutes.
FIRST_TEXT_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60)
ANSWER_BUCKETS = (0.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60, 90, 120, 300)
# How the chat feature words a run that failed because the platform refused the answer.
DELIVERY_FAILED = "delivery failed"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """One registry per process (tests build several apps in one process: one each)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "switchboard_runs", "Runs that reached a final state", ["status"], registry=r
        )
        self.runs_by_kind = Counter(
            "switchboard_runs_by_kind",
            "Runs that reached a final state, by kind (chat, image, speech, transcription…)",
            ["kind", "status"],
            registry=r,
        )
        self.answer_seconds = Histogram(
            "switchboard_answer_seconds",
            "From the user's message to the final answer (completed chat runs)",
            buckets=ANSWER_BUCKETS,
            registry=r,
        )
        self.first_text_seconds = Histogram(
            "switchboard_first_text_seconds",
            "From the user's message to the first visible words of the answer",
            buckets=FIRST_TEXT_BUCKETS,
            registry=r,
        )
        self.openai_errors = Counter(
            "switchboard_openai_errors",
            "Failed OpenAI attempts, retried or not",
            ["kind"],
            registry=r,
        )
        self.tokens = Counter("switchboard_tokens", "Tokens used", ["direction"], registry=r)
        self.cost = Counter("switchboard_cost_usd", "Spend in US dollars", registry=r)
        self.in_flight = Gauge(
            "switchboard_runs_in_flight", "Runs started and not yet ended", registry=r
        )
        self.deliveries_failed = Counter(
            "switchboard_delivery_failures",
            "Replies a platform refused after its retries",
            ["platform"],
            registry=r,
        )
        self.rate_limited = Counter(
            "switchboard_platform_rate_limited",
            "429 answers from a chat platform (each retried by its client)",
            ["platform"],
            registry=r,
        )
        self.queued = Gauge(
            "switchboard_queued", "Events accepted and waiting or running", registry=r
        )
        self.breaker_open = Gauge(
            "switchboard_breaker_open", "1 while the OpenAI circuit breaker is open", registry=r
        )
        self.inbox_oldest = Gauge(
            "switchboard_inbox_oldest_seconds",
            "Age of the oldest accepted event not yet handled (0 when none)",
            registry=r,
        )
        self.up_since = Gauge(
            "switchboard_start_time_seconds", "When this process started (Unix time)", registry=r
        )
        self.up_since.set(time.time())
        for status in ("completed", "failed", "cancelled", "expired", "interrupted"):
            self.runs.labels(status)
        for direction in ("input", "output"):
            self.tokens.labels(direction)

    # -- feeds ----------------------------------------------------------------------------

    def on_ledger(self, run: Run, note: LedgerNote) -> None:
        """The run ledger's listener."""
        if isinstance(note, Started):
            self.in_flight.inc()
        elif isinstance(note, TextShown):
            if run.kind == "chat":
                self.first_text_seconds.observe(max(0.0, time.time() - run.received_at))
        elif isinstance(note, Ended):
            if run.model:  # it was started
                self.in_flight.dec()
            self.runs.labels(note.status).inc()
            self.runs_by_kind.labels(run.kind, note.status).inc()
            if note.usage is not None:
                self.tokens.labels("input").inc(note.usage.input_tokens)
                self.tokens.labels("output").inc(note.usage.output_tokens)
            if note.cost is not None:
                self.cost.inc(float(note.cost))
            if note.reason.startswith(DELIVERY_FAILED):
                self.deliveries_failed.labels(run.key.platform).inc()
            if note.status == "completed" and run.kind == "chat":
                self.answer_seconds.observe(max(0.0, time.time() - run.received_at))

    def on_openai_failure(self, kind: str) -> None:
        self.openai_errors.labels(kind).inc()

    def on_rate_limited(self, platform: str) -> None:
        self.rate_limited.labels(platform).inc()

    def watch(self, *, queued: Callable[[], int], breaker_open: Callable[[], bool]) -> None:
        """Gauges read when scraped."""
        self.queued.set_function(lambda: float(queued()))
        self.breaker_open.set_function(lambda: 1.0 if breaker_open() else 0.0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
