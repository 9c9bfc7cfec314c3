"""Platform adapters. Each turns one platform's events into `bot.types` values and delivers
`Reply` values back; the core never imports a platform SDK."""

from __future__ import annotations

from bot.config import Settings


def configured_platforms(settings: Settings) -> dict[str, bool]:
    """The platforms whose credentials are set, each with whether this build has its adapter."""
    platforms: dict[str, bool] = {}
    if settings.slack_bot_token is not None:
        platforms["Slack"] = False
    if settings.discord_token is not None:
        platforms["Discord"] = False
    return platforms
