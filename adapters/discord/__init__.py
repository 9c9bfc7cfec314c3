"""The Discord adapter (discord.py 2.7). See `adapters.discord.adapter`."""

from adapters.discord.adapter import DiscordAdapter

__all__ = ["DiscordAdapter"]
