"""The process's heap after start-up, out of the garbage collector's way."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect once, then move every object still alive (modules, the SDK clients and their
    type caches, pydantic schemas, settings, the adapters) to the collector's permanent
    generation (`gc.freeze`). They live as long as the process; a full collection otherwise
    walks all of them every few hundred answers and stops the event loop for tens of
    milliseconds meanwhile (measured: `benchmarks.burst`, ~1 ms per answer in bursts).

    Called once per process, after start-up (the adapters connected, the inbox taken up):
    frozen objects are never collected as cyclic garbage, so this is not for code that builds
    and drops apps repeatedly (the tests)."""
    gc.collect()
    gc.freeze()
