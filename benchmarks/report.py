"""Printing the bot-versus-direct figures of `benchmarks.streaming` and `benchmarks.burst`."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping

from benchmarks.common import pct
from benchmarks.stream_bot import Round


def mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def _per_turn(counts: Counter[str], turns: int) -> str:
    total = sum(counts.values())
    if not turns:
        return "-"
    parts = ", ".join(f"{name} {n / turns:.2f}" for name, n in counts.most_common())
    return f"{total / turns:.2f} ({parts})" if parts else "0"


def report_load(
    label: str,
    load: int,
    rounds: list[Round],
    targets: Mapping[str, float],
    *,
    streaming: bool,
    verbose: bool = False,
) -> None:
    """Per load: final ÷ direct, first text − direct first token, CPU per turn ÷ SDK, database
    trips, platform and OpenAI calls per turn; with `streaming`, writes, gaps and 429s."""
    final = [t for r in rounds for t in r.final]
    direct = [t for r in rounds for t in r.direct_final]
    first = [t for r in rounds for t in r.first]
    direct_first = [t for r in rounds for t in r.direct_first]
    missing = sum(r.missing for r in rounds)
    answers = sum(r.answers for r in rounds)
    head = f"{label} x{load:<2}"
    if not final or not direct:
        print(f"{head}: no complete answer ({missing} missing)")
        return
    p50 = statistics.median(final) / statistics.median(direct)
    p99 = pct(final, 0.99) / pct(direct, 0.99)
    first_ms = (statistics.median(first) - statistics.median(direct_first)) * 1000
    first_p99_ms = (pct(first, 0.99) - pct(direct_first, 0.99)) * 1000
    # CPU per answer in the best round of each: other processes can only add CPU time (shared
    # caches, a busy sibling core), so the least a round took is the least noisy figure
    cpu = min(r.cpu / max(1, r.answers) for r in rounds)
    direct_cpu = min(r.direct_cpu / max(1, len(r.direct_final)) for r in rounds)
    mean_ratio = (sum(r.cpu for r in rounds) / max(1, answers)) / (
        sum(r.direct_cpu for r in rounds) / max(1, len(direct))
    )
    cpu_ratio = cpu / direct_cpu
    print(
        f"{head} final÷direct p50 {p50:.3f} ({mark(p50 <= targets['final_p50'])})"
        f" p99 {p99:.3f} ({mark(p99 <= targets['final_p99'])})"
        f" | first text − direct first token p50 {first_ms:+.0f} ms"
        f" ({mark(first_ms <= targets['first_ms'])}) p99 {first_p99_ms:+.0f} ms"
        f" | CPU/turn (best round) {cpu * 1000:.1f} ms ÷ SDK {direct_cpu * 1000:.1f} ms = "
        f"{cpu_ratio:.2f} ({mark(cpu_ratio <= targets['cpu'])}; {mean_ratio:.2f} over all rounds)"
        + (f" | missing {missing}" if missing else "")
    )
    indent = " " * len(head)
    print(
        f"{indent} direct final p50 {statistics.median(direct):.3f} s p99 {pct(direct, 0.99):.3f} s"
        f" | bot final p50 {statistics.median(final):.3f} s p99 {pct(final, 0.99):.3f} s"
        f" | direct first token p50 {statistics.median(direct_first) * 1000:.0f} ms"
        f" | bot first text p50 {statistics.median(first) * 1000:.0f} ms"
    )
    request = [t for r in rounds for t in r.request]
    direct_request = [t for r in rounds for t in r.direct_request]
    if request and direct_request:
        print(
            f"{indent} question → model request: bot p50 {statistics.median(request) * 1000:.0f}"
            f" ms p99 {pct(request, 0.99) * 1000:.0f} ms | direct p50 "
            f"{statistics.median(direct_request) * 1000:.0f} ms"
            f" p99 {pct(direct_request, 0.99) * 1000:.0f} ms"
        )
    trips: Counter[str] = Counter()
    api: Counter[str] = Counter()
    openai: Counter[str] = Counter()
    statements: Counter[str] = Counter()
    for r in rounds:
        trips.update(r.db_trips)
        api.update(r.api_calls)
        openai.update(r.openai_calls)
        statements.update(r.db_statements)
    direct_requests = sum(r.direct_openai for r in rounds) / max(1, len(direct))
    engine = sum(r.engine_trips for r in rounds) / max(1, answers)
    print(
        f"{indent} database round trips/turn {_per_turn(trips, answers)}"
        f"; the SQLite engine's trips to its threads {engine:.2f}"
    )
    print(f"{indent} platform API calls/turn {_per_turn(api, answers)}")
    print(
        f"{indent} OpenAI requests/turn {_per_turn(openai, answers)}"
        f" (direct baseline {direct_requests:.2f})"
    )
    gc_ms = [sum(r.gc_seconds[g] for r in rounds) * 1000 / max(1, answers) for g in range(3)]
    gc_runs = [sum(r.gc_runs[g] for r in rounds) for g in range(3)]
    print(
        f"{indent} garbage collection {sum(gc_ms):.2f} ms CPU/turn (generations 0/1/2: "
        + "/".join(f"{ms:.2f}" for ms in gc_ms)
        + " ms/turn in "
        + "/".join(str(n) for n in gc_runs)
        + " runs)"
    )
    if verbose:
        print(f"{indent} database statements/turn {_per_turn(statements, answers)}")
    errors_429 = sum(r.errors_429 for r in rounds)
    if streaming:
        writes = [w for r in rounds for w in r.writes]
        gap = max((g for r in rounds for g in r.gaps), default=0.0)
        print(
            f"{indent} writes/answer {statistics.mean(writes):.1f}"
            f" | longest gap {gap:.2f} s ({mark(gap <= targets['gap_s'])})"
            f" | 429s {errors_429} ({mark(errors_429 == 0)})"
        )
    else:
        print(f"{indent} platform 429s {errors_429}")
