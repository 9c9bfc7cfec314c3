"""Which platforms are connected now, as the adapters report it (a fact they report, like an
event): `/readyz` and `/status` read it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Probe = Callable[[], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class Connection:
    connected: bool
    since: float
    detail: str = ""


class Presence:
    def __init__(self, on_rate_limited: Callable[[str], None] | None = None) -> None:
        self._expected: set[str] = set()
        self._state: dict[str, Connection] = {}
        self._probes: dict[str, Probe] = {}
        self._on_rate_limited = on_rate_limited

    def watch(self, platform: str, probe: Probe) -> None:
        """For a client that notices a lost connection only when asked (Slack's Socket Mode
        reconnects before it tells its listeners): `refresh` asks it."""
        self._probes[platform] = probe

    async def refresh(self) -> None:
        """Ask the probes (before answering /readyz or /status)."""
        for platform, probe in self._probes.items():
            try:
                alive = await probe()
            except Exception as exc:
                self.report(platform, False, f"check failed ({type(exc).__name__})")
                continue
            self.report(platform, alive, "" if alive else "reconnecting")

    def rate_limited(self, platform: str) -> None:
        """The platform answered 429 (its client waits and retries): counted for operators."""
        if self._on_rate_limited is not None:
            self._on_rate_limited(platform)

    def expect(self, platform: str) -> None:
        """`platform` is configured: not ready until it reports connected."""
        self._expected.add(platform)

    def report(self, platform: str, connected: bool, detail: str = "") -> None:
        current = self._state.get(platform)
        if current is None or current.connected != connected or current.detail != detail:
            self._state[platform] = Connection(connected, time.time(), detail)

    def state(self) -> dict[str, Connection]:
        """Every expected or reporting platform; one that never reported is not connected."""
        names = sorted(self._expected | set(self._state))
        return {name: self._state.get(name, Connection(False, 0.0, "starting")) for name in names}

    def not_ready(self) -> str | None:
        """Why the bot is not ready for events (None: every expected platform is connected)."""
        down = [
            f"{name} {c.detail or 'not connected'}"
            for name, c in self.state().items()
            if name in self._expected and not c.connected
        ]
        return "; ".join(down) if down else None
