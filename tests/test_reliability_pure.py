"""Pure logic of the fault policy: the circuit breaker on a fake clock, the retry policy's use of
it, the lanes' back-pressure bounds, and one friendly message per failure class."""

from __future__ import annotations

import asyncio

import httpx2
import openai
import pytest

from bot.backends.breaker import CircuitBreaker, CircuitOpen
from bot.backends.errors import explain_error
from bot.backends.retry import RetryPolicy, retry_window
from bot.core.lanes import Lanes
from bot.core.notices import Notices
from bot.core.types import Actor, ConversationKey, Event, Inbound


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _status_error(cls: type[openai.APIStatusError], status: int, code: str, **body: str):  # type: ignore[no-untyped-def]
    request = httpx2.Request("POST", "http://127.0.0.1/v1/responses")
    response = httpx2.Response(status, request=request)
    return cls("boom", response=response, body={"code": code, "message": "boom", **body})


def test_breaker_opens_on_a_sustained_failure_rate_and_a_probe_closes_it() -> None:
    clock = Clock()
    breaker = CircuitBreaker(3, cooldown=10, max_cooldown=40, clock=clock)
    for _ in range(2):
        assert breaker.admit() is False
        breaker.failed(False)
    for _ in range(4):  # successes among them: 3 failures of 7 calls is not "down"
        breaker.admit()
        breaker.succeeded(False)
    breaker.admit()
    breaker.failed(False)
    assert breaker.state == "closed"
    clock.now += 31  # those are out of the window now: three failures in a row are
    for _ in range(3):
        breaker.admit()
        breaker.failed(False)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen) as opened:
        breaker.admit()
    assert opened.value.seconds == 10
    clock.now += 10
    assert breaker.state == "half_open" and breaker.retry_in() is None
    assert breaker.admit() is True  # the probe
    with pytest.raises(CircuitOpen):  # only one probe at a time
        breaker.admit()
    breaker.succeeded(True)
    assert breaker.state == "closed" and breaker.admit() is False


def test_transient_faults_among_many_concurrent_calls_never_open_the_breaker() -> None:
    """One call in five failing (what retries absorb) is not an outage, however many calls."""
    clock = Clock()
    breaker = CircuitBreaker(5, cooldown=10, max_cooldown=40, clock=clock)
    for n in range(1_000):
        breaker.admit()
        if n % 5 == 0:
            breaker.failed(False)
        else:
            breaker.succeeded(False)
        clock.now += 0.01
    assert breaker.state == "closed" and breaker.times_opened == 0


def test_a_failed_probe_doubles_the_cooldown_up_to_the_maximum() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, cooldown=10, max_cooldown=25, clock=clock)
    breaker.admit()
    breaker.failed(False)
    waits = []
    for _ in range(3):
        waits.append(breaker.retry_in())
        clock.now += breaker.retry_in() or 0
        probe = breaker.admit()
        assert probe
        breaker.failed(probe)
    assert waits == [10, 20, 25]
    clock.now += 25
    breaker.succeeded(breaker.admit())
    breaker.admit()
    breaker.failed(False)
    assert breaker.retry_in() == 10  # a success resets the cool-down
    released = CircuitBreaker(1, cooldown=1, max_cooldown=1, clock=clock)
    released.failed(False)
    clock.now += 1
    released.released(released.admit())  # e.g. cancelled: the probe slot is free again
    assert released.admit() is True


def test_a_breaker_with_threshold_zero_is_off() -> None:
    breaker = CircuitBreaker(0, cooldown=1, max_cooldown=1)
    for _ in range(10):
        breaker.failed(breaker.admit())
    assert breaker.state == "closed"


async def test_retry_policy_counts_failures_in_the_shared_breaker_and_stops_when_open() -> None:
    breaker = CircuitBreaker(2, cooldown=60, max_cooldown=60)
    policy = RetryPolicy(attempts=5, max_wait=0.0, base_wait=0.0, breaker=breaker)
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise _status_error(openai.InternalServerError, 500, "server_error")

    with pytest.raises(openai.InternalServerError):
        await policy.call(failing)
    assert calls == 2  # the breaker opened after two failures: no third try
    with pytest.raises(CircuitOpen):
        await policy.call(failing)
    assert calls == 2

    quota = CircuitBreaker(1, cooldown=60, max_cooldown=60)
    policy = RetryPolicy(attempts=5, breaker=quota)

    async def no_credit() -> None:
        raise _status_error(openai.RateLimitError, 429, "insufficient_quota")

    with pytest.raises(openai.RateLimitError):
        await policy.call(no_credit)
    assert quota.state == "closed"  # OpenAI answered: it is reachable


async def test_retry_budget_stops_retries_that_would_end_past_it() -> None:
    policy = RetryPolicy(attempts=10, max_wait=5.0, base_wait=5.0)
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise _status_error(openai.InternalServerError, 500, "server_error")

    with retry_window(1.0), pytest.raises(openai.InternalServerError):
        await policy.call(failing)
    assert calls == 1  # the first backoff (>= 2.5 s) would end past the 1 s budget


async def test_lanes_bound_each_conversation_and_the_total() -> None:
    lanes = Lanes(1, busy_per_key=2, max_per_key=3, busy_total=3, max_total=4)
    gate = asyncio.Event()

    async def held() -> None:
        await gate.wait()

    levels = []
    for _ in range(4):
        with lanes.admit("a") as admission:
            levels.append(admission.level)
            if not admission.refused:
                lanes.submit("a", held)
    assert levels == ["accept", "accept", "busy", "refuse"]
    assert lanes.queued("a") == 3
    with lanes.admit("b") as b:
        assert b.level == "busy"  # the total passed its soft bound
        lanes.submit("b", held)
    assert lanes.admit("c").refused and lanes.admit(None).refused  # the total is full
    assert lanes.total == 4 and lanes.high_water == 4
    gate.set()
    await lanes.wait_idle()
    assert lanes.total == 0 and lanes.queued("a") == 0


async def test_an_admission_left_without_submitting_gives_its_place_back() -> None:
    lanes = Lanes(1, busy_per_key=1, max_per_key=2)
    with lanes.admit("a") as first:
        assert lanes.queued("a") == 1 and first.level == "accept"
    assert lanes.queued("a") == 0 and lanes.total == 0
    with pytest.raises(RuntimeError), lanes.admit("a"):
        raise RuntimeError("recording the event failed")
    assert lanes.total == 0


async def test_notices_are_bounded() -> None:
    lanes = Lanes(1, max_notices=2)
    gate = asyncio.Event()

    async def notice() -> None:
        await gate.wait()

    assert lanes.notify(notice) and lanes.notify(notice)
    assert not lanes.notify(notice)
    gate.set()
    await lanes.wait_idle()
    assert lanes.notify(notice)
    await lanes.wait_idle()


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (openai.APITimeoutError(httpx2.Request("POST", "http://x")), "took too long"),
        (
            openai.APIConnectionError(request=httpx2.Request("POST", "http://x")),
            "lost the connection",
        ),
        (httpx2.ReadError("reset"), "lost the connection"),
        (_status_error(openai.RateLimitError, 429, "rate_limit_exceeded"), "rate limited"),
        (_status_error(openai.InternalServerError, 503, "server_error"), "server error"),
        (_status_error(openai.RateLimitError, 429, "insufficient_quota"), "billing"),
        (_status_error(openai.AuthenticationError, 401, "invalid_api_key"), "OPENAI_API_KEY"),
        (_status_error(openai.BadRequestError, 400, "invalid_value"), "could not handle"),
        (_status_error(openai.BadRequestError, 400, "context_length_exceeded"), "too long"),
        (_status_error(openai.BadRequestError, 400, "moderation_blocked"), "safety system"),
        (_status_error(openai.PermissionDeniedError, 403, "x"), "permission denied"),
        (CircuitOpen(12.2), "OpenAI is unavailable right now; I'll try again in 13 s"),
    ],
)
def test_every_failure_class_has_one_friendly_message(exc: BaseException, words: str) -> None:
    friendly = explain_error(exc)
    assert friendly is not None and words in friendly.message
    assert friendly.log_detail


def test_a_rejected_model_names_the_setting_that_chose_it() -> None:
    error = _status_error(openai.NotFoundError, 404, "model_not_found")
    chat = explain_error(error, model="gpt-x", role="chat")
    image = explain_error(error, model="img-x", role="image")
    speech = explain_error(error, model="tts-x", role="speech")
    unknown = explain_error(error)
    assert chat and "`gpt-x`" in chat.message and "SWITCHBOARD_CHAT_MODEL" in chat.message
    assert image and "`img-x`" in image.message and "SWITCHBOARD_IMAGE_MODEL" in image.message
    assert "SWITCHBOARD_CHAT_MODEL" not in image.message
    assert speech and "SWITCHBOARD_SPEECH_MODEL" in speech.message
    assert unknown and "the configured model" in unknown.message
    assert "SWITCHBOARD_" not in unknown.message


async def test_an_unbounded_admission_is_never_refused() -> None:
    lanes = Lanes(1, busy_per_key=1, max_per_key=1, busy_total=1, max_total=1)
    with lanes.admit("a") as first:
        assert first.level == "accept"
        assert lanes.admit("a").refused
        with lanes.admit("a", bounded=False) as control:
            assert control.level == "accept"
        assert lanes.total == 1


async def test_notices_are_coalesced_per_conversation_and_kind() -> None:
    lanes = Lanes(1)
    gate = asyncio.Event()
    sent: list[tuple[str, str]] = []
    done: list[str] = []

    async def send(event: Event, text: str) -> None:
        await gate.wait()
        sent.append((event.event_id, text))

    async def mark(platform: str, event_id: str) -> None:
        done.append(event_id)

    notices = Notices(lanes, send, mark)
    here, there = ConversationKey("t", "W", "C1"), ConversationKey("t", "W", "C2")
    actor = Actor("U1")

    def text(n: int) -> str:
        return f"{n} refused"

    for n in range(5):
        await notices.tell(Inbound(here, actor, "x", f"e{n}"), "full", text, handled=True)
    await notices.tell(Inbound(there, actor, "x", "f0"), "full", text, handled=True)
    await notices.tell(Inbound(here, actor, "x", "b0"), "busy", text, handled=False)
    await asyncio.sleep(0)
    assert notices.pending == 4
    gate.set()
    await lanes.wait_idle()
    assert sorted(sent) == [("b0", "1 refused"), ("e0", "1 refused"), ("e4", "4 refused"),
                            ("f0", "1 refused")]  # fmt: skip
    assert sorted(done) == ["e0", "e1", "e2", "e3", "e4", "f0"]  # "busy" events stay queued
    assert notices.pending == 0
