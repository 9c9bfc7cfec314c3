"""`python -m bot invite discord`: the URL that adds the bot to a server.

Scopes `bot` and `applications.commands`; the minimal permissions the bot uses. The client id
is `--client-id` when given, else read from the token's first segment (the base64 of the bot's
user id, which is the application id for every application created since 2016). Never a
network call: a token that does not carry an id is one line saying what to pass instead.
"""

from __future__ import annotations

import base64
import binascii

import discord

from bot.core.config import ConfigError, Settings

PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    attach_files=True,
    read_message_history=True,  # a thread's earlier messages, the message replied to
    embed_links=True,
)
SCOPES = ("bot", "applications.commands")


def client_id_from_token(token: str) -> int | None:
    """The bot user id encoded in a bot token's first segment (None if it is not one)."""
    first = token.strip().split(".", 1)[0]
    if not first:
        return None
    try:
        decoded = base64.b64decode(first + "=" * (-len(first) % 4), altchars=b"-_", validate=True)
        text = decoded.decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and 15 <= len(text) <= 21 else None


def build_invite_url(client_id: int) -> str:
    return discord.utils.oauth_url(client_id, permissions=PERMISSIONS, scopes=SCOPES)


CLIENT_ID_HINT = (
    "or pass --client-id with the Application ID from the Developer Portal (General Information)"
)


def invite_url(settings: Settings, client_id: int | None = None) -> str:
    """The invite URL for `client_id`, or for the application DISCORD_TOKEN belongs to."""
    if client_id is not None:
        if client_id <= 0:
            raise ConfigError("--client-id must be the application's positive numeric id")
        return build_invite_url(client_id)
    secret = settings.discord_token
    token = secret.get_secret_value().strip() if secret is not None else ""
    if not token:
        raise ConfigError(f"DISCORD_TOKEN is not set: set it, {CLIENT_ID_HINT}")
    found = client_id_from_token(token)
    if found is None:
        raise ConfigError(
            "DISCORD_TOKEN does not look like a Discord bot token (its first part should encode "
            f"the bot's id): copy it again from Bot → Reset Token, {CLIENT_ID_HINT}"
        )
    return build_invite_url(found)
