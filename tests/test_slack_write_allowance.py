"""The Slack adapter's per-workspace write budget, on a clock the test turns."""

from __future__ import annotations

from adapters.slack.write_allowance import APPEND, UPDATE, WriteAllowance


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progressive_writes_stop_at_the_reserve_and_final_ones_always_go() -> None:
    clock = Clock()
    budget = WriteAllowance({UPDATE: (5, 2)}, clock=clock)
    assert [budget.take("T1", UPDATE) for _ in range(5)] == [True, True, True, False, False]
    assert budget.take("T1", UPDATE, final=True) and budget.take("T1", UPDATE, final=True)
    assert budget.take("T1", UPDATE, final=True)  # borrowed: never refused
    clock.now += 12  # one token a 12 s at 5 a minute: back to zero, still none above reserve
    assert not budget.take("T1", UPDATE)
    clock.now += 60
    assert budget.take("T1", UPDATE)


def test_workspaces_and_methods_have_their_own_budgets() -> None:
    budget = WriteAllowance({APPEND: (1, 0), UPDATE: (1, 0)}, clock=Clock())
    assert budget.take("T1", APPEND) and not budget.take("T1", APPEND)
    assert budget.take("T2", APPEND) and budget.take("T1", UPDATE)
    assert budget.take("T1", "chat.postMessage")  # a method without a budget here


def test_the_bucket_refills_at_the_method_rate_up_to_a_minute_of_calls() -> None:
    clock = Clock()
    budget = WriteAllowance({APPEND: (60, 0)}, clock=clock)
    assert sum(budget.take("T1", APPEND) for _ in range(100)) == 60
    clock.now += 10
    assert sum(budget.take("T1", APPEND) for _ in range(100)) == 10
    clock.now += 3600
    assert sum(budget.take("T1", APPEND) for _ in range(100)) == 60
