"""Waiting for a condition instead of for a time: a test goes on once what it needs has
happened, however slow the machine, and fails only when it does not happen at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def until(predicate: Callable[[], Any], seconds: float = 30.0, what: str = "") -> None:
    """Poll ``predicate`` until it is true; AssertionError after ``seconds`` (a generous
    deadline against a hang, never a measurement)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {seconds} s: {what or predicate}")
        await asyncio.sleep(0.01)
