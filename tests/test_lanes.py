import asyncio

import pytest

from bot.core.lanes import Lanes, LanesClosed


async def test_jobs_of_one_key_run_in_order_and_keys_run_in_parallel() -> None:
    lanes = Lanes(max_concurrency=10)
    log: list[str] = []

    def job(key: str, n: int, delay: float):
        async def run() -> None:
            log.append(f"{key}{n}+")
            await asyncio.sleep(delay)
            log.append(f"{key}{n}-")

        return run

    lanes.submit("a", job("a", 1, 0.05))
    lanes.submit("a", job("a", 2, 0.0))
    lanes.submit("b", job("b", 1, 0.01))
    await lanes.wait_idle()
    assert log.index("a1-") < log.index("a2+")  # a2 waited for a1
    assert log.index("b1+") < log.index("a1-")  # b ran beside a
    assert lanes.active_lanes == 0  # idle lanes are gone


async def test_global_limit_bounds_concurrency() -> None:
    lanes = Lanes(max_concurrency=2)
    running = 0
    peak = 0

    async def job() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    for key in range(6):
        lanes.submit(key, job)
    lanes.submit_unordered(job)
    await lanes.wait_idle()
    assert peak == 2


async def test_a_failing_job_does_not_stop_its_lane() -> None:
    lanes = Lanes(max_concurrency=1)
    done: list[int] = []

    async def boom() -> None:
        raise RuntimeError("boom")

    async def fine() -> None:
        done.append(1)

    lanes.submit("k", boom)
    lanes.submit("k", fine)
    await lanes.wait_idle()
    assert done == [1]


async def test_a_lane_reopens_after_going_idle() -> None:
    lanes = Lanes(max_concurrency=1)
    seen: list[int] = []

    async def job() -> None:
        seen.append(1)

    lanes.submit("k", job)
    await lanes.wait_idle()
    assert lanes.active_lanes == 0
    lanes.submit("k", job)
    await lanes.wait_idle()
    assert seen == [1, 1]


async def test_close_refuses_new_jobs_and_drain_cancels_stragglers() -> None:
    lanes = Lanes(max_concurrency=4)
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def quick() -> None:
        await asyncio.sleep(0)

    lanes.submit("slow", slow)
    lanes.submit("quick", quick)
    lanes.close()
    with pytest.raises(LanesClosed):
        lanes.submit("x", quick)
    finished = await lanes.drain(grace=0.05)
    assert finished is False
    assert cancelled.is_set()
    assert await lanes.drain(grace=0.05) is True
