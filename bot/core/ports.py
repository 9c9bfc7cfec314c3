"""What the core asks of the features it routes to, as protocols: the core imports no feature;
`bot.app` hands it objects that fit."""

from __future__ import annotations

from typing import Protocol

from bot.core.delivery import Outbox
from bot.core.ledger import Run
from bot.core.types import Inbound
from storage.runs import RunRecord


class MessageHandler(Protocol):
    """Answers messages (the chat feature)."""

    async def answer(self, event: Inbound, run: Run, outbox: Outbox) -> None:
        """Answer `event` on `run`; raise `UserError` for what the user should be told."""
        ...

    async def deliver_recovered(
        self, event: Inbound, stale: RunRecord, run: Run, outbox: Outbox
    ) -> bool:
        """After a restart: deliver the answer the server finished meanwhile; False when there
        is none."""
        ...


class Screen(Protocol):
    """Moderation of an incoming message (when the channel's assistant has it on)."""

    async def screen(self, event: Inbound) -> None:
        """Raise `UserError` when the message is refused."""
        ...
