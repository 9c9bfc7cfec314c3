"""Where a turn's CPU goes: a cProfile of the bot's rounds, summed up as the top functions by
their own time and the share of each package (the project's own modules by their top package,
libraries by name)."""

from __future__ import annotations

import cProfile
import pstats
import sys
import sysconfig
from collections import Counter
from pathlib import Path

_PROJECT = Path(__file__).resolve().parent.parent
_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def _package(filename: str) -> str:
    """`bot.core`, `adapters.slack`, `openai`, `asyncio`, … for a profiled function's file."""
    if filename.startswith("<") or filename == "~":
        return "builtins"
    path = Path(filename).resolve()
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if path.is_relative_to(_STDLIB) and "site-packages" not in parts:
        rest = path.relative_to(_STDLIB).parts
        return rest[0].removesuffix(".py") if rest else "stdlib"
    if path.is_relative_to(_PROJECT):
        rest = path.relative_to(_PROJECT).parts
        return ".".join(p.removesuffix(".py") for p in rest[:2]) if len(rest) > 1 else rest[0]
    return parts[-1]


def _where(filename: str, line: int, name: str) -> str:
    if filename == "~":
        return name  # a C function: "<method 'x' of 'y' objects>"
    path = Path(filename)
    short = "/".join(path.parts[-2:])
    return f"{short}:{line}({name})"


def summarise(profiler: cProfile.Profile, turns: int, top: int = 10) -> list[str]:
    """Printable lines: the profiled CPU per turn, the `top` functions by own time, and the
    packages' shares."""
    stats = pstats.Stats(profiler, stream=sys.stderr)
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in entries.values()) or 1e-9
    per_turn = total / max(1, turns) * 1000
    lines = [f"profiled CPU (main thread, under cProfile) {per_turn:.1f} ms per turn; top {top}:"]
    ranked = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)
    for (filename, line, name), (_cc, calls, tt, ct, _callers) in ranked[:top]:
        lines.append(
            f"  {tt / total:5.1%} own {tt / max(1, turns) * 1000:6.2f} ms/turn"
            f" (cum {ct / max(1, turns) * 1000:6.2f})  {calls / max(1, turns):7.1f} calls/turn"
            f"  {_where(filename, line, name)}"
        )
    shares: Counter[str] = Counter()
    for (filename, _line, _name), (_cc, _nc, tt, _ct, callers) in entries.items():
        if filename != "~" or not callers:
            shares[_package(filename)] += tt
            continue
        # a C function (socket, select, isinstance…): its time goes to its callers' packages
        edges = {caller: edge[2] for caller, edge in callers.items()}
        spread = sum(edges.values()) or 1e-9
        for (caller_file, _l, _n), share in edges.items():
            shares[_package(caller_file)] += tt * share / spread
    packages = ", ".join(f"{name} {tt / total:.0%}" for name, tt in shares.most_common(12))
    lines.append(f"  by package (own time, C functions counted in their callers'): {packages}")
    ours = [
        (key, value)
        for key, value in entries.items()
        if _package(key[0]).split(".")[0] in ("bot", "adapters", "storage")
    ]
    ours.sort(key=lambda item: item[1][2], reverse=True)
    own = sum(value[2] for _key, value in ours)
    lines.append(
        f"  the project's own code: {own / total:.1%} of the profiled CPU"
        f" ({own / max(1, turns) * 1000:.2f} ms/turn); its top functions by own time:"
    )
    for (filename, line, name), (_cc, calls, tt, ct, _callers) in ours[:top]:
        lines.append(
            f"    {tt / max(1, turns) * 1000:6.2f} ms/turn (cum {ct / max(1, turns) * 1000:7.2f})"
            f" {calls / max(1, turns):6.1f} calls/turn  {_where(filename, line, name)}"
        )
    return lines
