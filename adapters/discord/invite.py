"""`python -m bot invite discord`: the URL that adds the bot to a server.

Scopes `bot` and `applications.commands`; the minimal permissions the bot uses. The client id
is read from the token's first segment (the base64 of the bot's user id, which is the
application id for every application created since 2016) without any network call; when that
fails, `GET /oauth2/applications/@me` at `DISCORD_API_URL` answers it.
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


async def invite_url(settings: Settings) -> str:
    secret = settings.discord_token
    token = secret.get_secret_value().strip() if secret is not None else ""
    if not token:
        raise ConfigError("DISCORD_TOKEN is not set: the invite URL needs the bot's client id")
    client_id = client_id_from_token(token)
    if client_id is None:
        client_id = await _client_id_from_api(settings, token)
    return build_invite_url(client_id)


async def _client_id_from_api(settings: Settings, token: str) -> int:
    from adapters.discord.adapter import apply_endpoints

    apply_endpoints(settings)
    client = discord.Client(intents=discord.Intents.none())
    try:
        await client.login(token)
        if client.application_id is None:
            raise ConfigError("Discord did not say which application this token belongs to")
        return client.application_id
    except discord.LoginFailure:
        raise ConfigError("Discord rejected DISCORD_TOKEN") from None
    except discord.HTTPException as exc:
        raise ConfigError(f"could not ask Discord for the client id (HTTP {exc.status})") from None
    finally:
        await client.close()
