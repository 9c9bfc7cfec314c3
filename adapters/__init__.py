"""Platform adapters. Each turns one platform's events into `bot.core.types` values and delivers
`Reply` values back; the core never imports a platform SDK.

A platform adapter is built as `Adapter(settings, dispatcher)` and has `async start()` (connect,
register its outbox with the dispatcher, log one line when ready) and `async close()`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

from bot.core.config import ConfigError, Settings

if TYPE_CHECKING:
    from bot.core.dispatcher import Dispatcher


class PlatformAdapter(Protocol):
    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...


# platform name → (module, class); a module missing from this build is reported, not crashed on.
ADAPTERS = {
    "Slack": ("adapters.slack", "SlackAdapter"),
    "Discord": ("adapters.discord", "DiscordAdapter"),
}


def configured_platforms(settings: Settings) -> list[str]:
    platforms = []
    if settings.slack_bot_token is not None:
        platforms.append("Slack")
    if settings.discord_token is not None:
        platforms.append("Discord")
    return platforms


def build_adapters(settings: Settings, dispatcher: Dispatcher) -> list[PlatformAdapter]:
    adapters: list[PlatformAdapter] = []
    for platform in configured_platforms(settings):
        module_name, class_name = ADAPTERS[platform]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            raise ConfigError(
                f"the {platform} adapter is not part of this build yet; unset its credentials "
                "or use `python -m bot console`"
            ) from None
        adapters.append(getattr(module, class_name)(settings, dispatcher))
    return adapters
