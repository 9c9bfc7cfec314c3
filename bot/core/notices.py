"""Notices told at once, beside the lanes: "busy", "too busy", "OpenAI unavailable".

Under a flood every refused message must be told, yet one notice per message would itself flood
the conversation and the platform's rate limits (Slack takes about one post a second per
channel). So notices are coalesced: per conversation and kind, at most one notice is being
posted; the events that arrive meanwhile wait in one batch, and a single follow-up notice,
naming how many messages it covers, goes out when the first is done. Each event is still told by
a notice posted after it arrived. A notice for commands goes to its actor only (ephemeral), so
commands are batched per actor.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

from bot.core.lanes import Lanes
from bot.core.types import CommandCall, Event

log = logging.getLogger(__name__)

Text = Callable[[int], str]  # the notice's text for a batch of n events


@dataclass(slots=True)
class _Batch:
    """Events told by one notice: the latest (the notice replies to it) and every event id (to
    mark them done), so a waiting event costs only its id."""

    text: Text
    handled: bool
    latest: Event
    ids: list[str] = field(default_factory=list)

    def add(self, event: Event) -> None:
        self.latest = event
        self.ids.append(event.event_id)


class Notices:
    """`send(event, text)` posts one notice replying to `event` (and never raises);
    `done(platform, event_id)` marks an event handled when its notice is all it gets (and never
    raises)."""

    def __init__(
        self,
        lanes: Lanes,
        send: Callable[[Event, str], Awaitable[None]],
        done: Callable[[str, str], Awaitable[None]],
        *,
        per_actor: bool = False,
    ) -> None:
        """`per_actor`: every notice is for its actor alone (private), so messages are batched
        per actor too."""
        self._per_actor = per_actor
        self._lanes = lanes
        self._send = send
        self._done = done
        # A slot is present while its notice is being posted; its value collects the events
        # that arrive meanwhile (None: none yet).
        self._posting: dict[Hashable, _Batch | None] = {}

    @property
    def pending(self) -> int:
        """Events waiting for a follow-up notice."""
        return sum(len(batch.ids) for batch in self._posting.values() if batch is not None)

    async def tell(self, event: Event, kind: str, text: Text, *, handled: bool) -> None:
        """Tell the user about `event` at once (or in the follow-up of the notice being posted
        in its conversation). `handled`: the notice is all the event gets; it is marked done
        once told, so a restart before that tells the user after all."""
        private = self._per_actor or isinstance(event, CommandCall)
        actor = event.actor.id if private else ""
        slot = (event.key, kind, actor)
        if slot in self._posting:
            batch = self._posting[slot]
            if batch is None:
                batch = self._posting[slot] = _Batch(text, handled, event)
            batch.add(event)
            return
        self._posting[slot] = None
        first = _Batch(text, handled, event)
        first.add(event)
        if not self._lanes.notify(lambda: self._post(slot, first)):
            del self._posting[slot]
            log.error(
                "event %s at %s: too many notices in flight, the user was not told (%s)",
                event.event_id,
                event.key,
                kind,
            )
            if handled:
                await self._done(event.key.platform, event.event_id)

    async def _post(self, slot: Hashable, batch: _Batch) -> None:
        try:
            current: _Batch | None = batch
            while current is not None:
                await self._send(current.latest, current.text(len(current.ids)))
                if current.handled:
                    platform = current.latest.key.platform
                    for event_id in current.ids:
                        await self._done(platform, event_id)
                current = self._posting.get(slot)
                self._posting[slot] = None
        finally:
            del self._posting[slot]
