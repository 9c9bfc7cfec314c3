"""The bot never joins voice channels (voice messages arrive as attachments), so discord.py's
start-up warnings that PyNaCl and davey (its voice libraries) are missing are noise: every
Discord start printed them. They are flags on `VoiceClient`, checked once per client."""

from __future__ import annotations

import discord


def silence_voice_warnings() -> None:
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False
