"""Builds the real app (storage, backend, dispatcher) against the loopback fake OpenAI, with a
recording adapter, for core-layer tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import App
from bot.core.config import Settings, load_settings
from bot.core.types import Actor, CommandCall, ConversationKey, Inbound
from tests.recording import RecordingOutbox

PLATFORM = "test"
KEY = ConversationKey(PLATFORM, "W1", "C1")
USER = Actor(id="U1", name="alice")
_ids = itertools.count(1)


def make_settings(base_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "OPENAI_API_KEY": "sk-test-not-a-real-key-0123456789",
        "OPENAI_BASE_URL": base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'switchboard.db'}",
        "SWITCHBOARD_OPENAI_TIMEOUT": 2.0,
        "SWITCHBOARD_OPENAI_RETRY_MAX_WAIT": 0.05,
        "SWITCHBOARD_OPENAI_MAX_RETRIES": 2,
        "SWITCHBOARD_SHUTDOWN_GRACE": 2.0,
    }
    values.update(overrides)
    return load_settings(**values)


@dataclass
class Harness:
    app: App
    outbox: RecordingOutbox

    @classmethod
    async def start(cls, settings: Settings) -> Harness:
        app = await App.create(settings)
        outbox = RecordingOutbox()
        app.dispatcher.register_outbox(PLATFORM, outbox)
        await app.recover()
        return cls(app, outbox)

    def message(
        self, text: str, *, key: ConversationKey = KEY, actor: Actor = USER, **fields: Any
    ) -> Inbound:
        event_id = fields.pop("event_id", f"ev{next(_ids)}")
        return Inbound(key, actor, text, event_id, message_id=event_id, **fields)

    async def say(self, text: str, **kwargs: Any) -> str:
        """Send a message, wait until it is handled, return what was shown last."""
        before = len(self.outbox.shown)
        accepted = await self.app.dispatcher.submit(self.message(text, **kwargs))
        await self.app.dispatcher.wait_idle()
        assert accepted, "the dispatcher dropped the message"
        shown = self.outbox.shown[before:]
        assert len(shown) == 1, shown
        return shown[0]

    async def command(
        self, name: str, text: str = "", *, key: ConversationKey = KEY, actor: Actor = USER
    ) -> str:
        before = len(self.outbox.shown)
        call = CommandCall(key, actor, name, f"ev{next(_ids)}", text=text)
        assert await self.app.dispatcher.submit(call)
        await self.app.dispatcher.wait_idle()
        shown = self.outbox.shown[before:]
        assert len(shown) == 1, shown
        return shown[0]

    async def close(self) -> None:
        await self.app.shutdown()
