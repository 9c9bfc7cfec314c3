"""Pieces the benchmarks share: percentiles, the machine line, child processes, memory."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import resource
from collections.abc import Callable, Iterator
from typing import Any


def pct(values: list[float], q: float) -> float:
    """The `q` quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def machine_line() -> str:
    return (
        f"machine: {platform.machine()} python {platform.python_version()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )


def rss_mib() -> float:
    """This process's resident set size now (Linux), else its peak."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def child_process(
    target: Callable[..., None], *args: Any, timeout: float = 120.0
) -> Iterator[tuple[Any, Any]]:
    """Run `target(*args, pipe)` in a fresh (spawned) process, so its CPU and memory are its
    own. Yields the first thing it sends (within `timeout` seconds) and the pipe; on exit sends
    "stop" and waits."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=target, args=(*args, child), daemon=True)
    process.start()
    try:
        if not parent.poll(timeout):
            raise RuntimeError(f"{getattr(target, '__name__', target)} sent nothing in time")
        yield parent.recv(), parent
    finally:
        with contextlib.suppress(OSError):
            parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)
