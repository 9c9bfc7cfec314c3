"""Builders for Discord API v10 payloads (REST objects and gateway events).

Pure functions, no I/O: every builder returns a fresh ``dict`` shaped like the
object Discord sends (field names, snowflakes as strings, ISO-8601 timestamps,
permission bit sets as decimal strings). Used by :mod:`testing.fakes.discord_fake`
and usable on their own in unit tests that feed discord.py parsers directly.

Shapes follow the official OpenAPI spec (``testing/specs/discord-openapi.json``)
for REST objects and discord.py 2.7.1's ``discord/types/*.py`` for gateway-only
objects (READY, GUILD_CREATE, INTERACTION_CREATE), which the spec does not cover.
"""

from __future__ import annotations

import base64
import datetime as _dt
import struct
import threading
import time
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000


# ---------------------------------------------------------------------------
# Constants (bit values from the Discord developer docs)
# ---------------------------------------------------------------------------
class Perm:
    """Permission bits."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    SEND_TTS_MESSAGES = 1 << 12
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    CHANGE_NICKNAME = 1 << 26
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    SEND_MESSAGES_IN_THREADS = 1 << 38
    SEND_VOICE_MESSAGES = 1 << 46
    SEND_POLLS = 1 << 49
    USE_EXTERNAL_APPS = 1 << 50

    ALL = (1 << 51) - 1

    #: roughly what a fresh server grants @everyone
    EVERYONE_DEFAULT = (
        CREATE_INSTANT_INVITE
        | ADD_REACTIONS
        | VIEW_CHANNEL
        | SEND_MESSAGES
        | EMBED_LINKS
        | ATTACH_FILES
        | READ_MESSAGE_HISTORY
        | USE_EXTERNAL_EMOJIS
        | CONNECT
        | SPEAK
        | CHANGE_NICKNAME
        | USE_APPLICATION_COMMANDS
        | CREATE_PUBLIC_THREADS
        | CREATE_PRIVATE_THREADS
        | SEND_MESSAGES_IN_THREADS
        | SEND_VOICE_MESSAGES
        | SEND_POLLS
        | USE_EXTERNAL_APPS
    )

    #: what the invite link of this bot asks for (managed bot role)
    BOT_DEFAULT = (
        VIEW_CHANNEL
        | SEND_MESSAGES
        | SEND_MESSAGES_IN_THREADS
        | CREATE_PUBLIC_THREADS
        | ATTACH_FILES
        | EMBED_LINKS
        | READ_MESSAGE_HISTORY
        | ADD_REACTIONS
        | USE_APPLICATION_COMMANDS
    )


class Intent:
    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1  # privileged
    GUILD_PRESENCES = 1 << 8  # privileged
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_TYPING = 1 << 11
    DIRECT_MESSAGES = 1 << 12
    MESSAGE_CONTENT = 1 << 15  # privileged

    PRIVILEGED = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT


class AppFlag:
    GATEWAY_PRESENCE = 1 << 12
    GATEWAY_PRESENCE_LIMITED = 1 << 13
    GATEWAY_GUILD_MEMBERS = 1 << 14
    GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15
    GATEWAY_MESSAGE_CONTENT = 1 << 18
    GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
    APPLICATION_COMMAND_BADGE = 1 << 23


class MsgFlag:
    HAS_THREAD = 1 << 5
    EPHEMERAL = 1 << 6
    LOADING = 1 << 7
    SUPPRESS_NOTIFICATIONS = 1 << 12
    IS_VOICE_MESSAGE = 1 << 13


class MsgType:
    DEFAULT = 0
    THREAD_CREATED = 18
    REPLY = 19
    CHAT_INPUT_COMMAND = 20
    THREAD_STARTER_MESSAGE = 21
    CONTEXT_MENU_COMMAND = 23


class ChannelType:
    GUILD_TEXT = 0
    DM = 1
    GUILD_VOICE = 2
    GROUP_DM = 3
    GUILD_CATEGORY = 4
    GUILD_ANNOUNCEMENT = 5
    ANNOUNCEMENT_THREAD = 10
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12
    GUILD_FORUM = 15

    THREADS = (10, 11, 12)


class OptionType:
    SUB_COMMAND = 1
    SUB_COMMAND_GROUP = 2
    STRING = 3
    INTEGER = 4
    BOOLEAN = 5
    USER = 6
    CHANNEL = 7
    ROLE = 8
    MENTIONABLE = 9
    NUMBER = 10
    ATTACHMENT = 11


class InteractionType:
    PING = 1
    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class CallbackType:
    PONG = 1
    CHANNEL_MESSAGE_WITH_SOURCE = 4
    DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    AUTOCOMPLETE_RESULT = 8
    MODAL = 9


# ---------------------------------------------------------------------------
# Snowflakes and timestamps
# ---------------------------------------------------------------------------
class SnowflakeGen:
    """Monotonic, time-based snowflakes (``(ms - epoch) << 22 | worker << 17 | seq``)."""

    def __init__(self, worker: int = 1) -> None:
        self._worker = worker & 0x1F
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
            value = (ms << 22) | (self._worker << 17)
            if value <= self._last:
                value = self._last + 1
            self._last = value
            return str(value)


new_snowflake = SnowflakeGen(worker=7)


def snowflake_time(snowflake: str | int) -> _dt.datetime:
    ms = (int(snowflake) >> 22) + DISCORD_EPOCH_MS
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC)


def iso(ts: float | _dt.datetime | None = None) -> str:
    """Discord-style ISO timestamp (``2026-11-24T07:46:00.123000+00:00``)."""
    if ts is None:
        ts = time.time()
    if isinstance(ts, (int, float)):
        ts = _dt.datetime.fromtimestamp(ts, tz=_dt.UTC)
    return ts.isoformat(timespec="microseconds")


# ---------------------------------------------------------------------------
# Users, roles, members
# ---------------------------------------------------------------------------
def user(
    id: str,
    username: str,
    *,
    bot: bool = False,
    global_name: str | None = None,
    avatar: str | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(id),
        "username": username,
        "discriminator": "0",
        "global_name": global_name,
        "avatar": avatar,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
        "collectibles": None,
        "primary_guild": None,
    }
    if bot:
        data["bot"] = True
    return data


def current_user(base: dict[str, Any]) -> dict[str, Any]:
    """``GET /users/@me`` (UserPIIResponse) for a bot user."""
    data = dict(base)
    data.update({"mfa_enabled": False, "locale": "en-US", "verified": True, "email": None})
    return data


def role(
    id: str,
    name: str,
    permissions: int,
    *,
    position: int = 0,
    managed: bool = False,
    bot_id: str | None = None,
    color: int = 0,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(id),
        "name": name,
        "description": None,
        "permissions": str(permissions),
        "position": position,
        "color": color,
        "colors": {"primary_color": color, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "managed": managed,
        "mentionable": False,
        "icon": None,
        "unicode_emoji": None,
        "flags": 0,
    }
    if bot_id is not None:
        data["tags"] = {"bot_id": str(bot_id)}
    return data


def member(
    user_obj: dict[str, Any] | None,
    roles: list[str],
    *,
    joined_at: str | None = None,
    nick: str | None = None,
    permissions: int | None = None,
) -> dict[str, Any]:
    """Guild member object. ``user_obj=None`` gives the partial member of MESSAGE_CREATE."""
    data: dict[str, Any] = {
        "roles": [str(r) for r in roles],
        "joined_at": joined_at or iso(),
        "nick": nick,
        "avatar": None,
        "banner": None,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "communication_disabled_until": None,
    }
    if user_obj is not None:
        data["user"] = user_obj
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


# ---------------------------------------------------------------------------
# Guilds and channels
# ---------------------------------------------------------------------------
def guild(
    id: str, name: str, *, owner_id: str, system_channel_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": str(id),
        "name": name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": str(owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "features": [],
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": system_channel_id,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "vanity_url_code": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "premium_progress_bar_enabled": False,
        "preferred_locale": "en-US",
        "nsfw_level": 0,
        "max_members": 500000,
        "max_video_channel_users": 25,
        "emojis": [],
        "stickers": [],
    }


def text_channel(
    id: str,
    guild_id: str,
    name: str,
    *,
    position: int = 0,
    parent_id: str | None = None,
    topic: str | None = None,
    permission_overwrites: list[dict[str, Any]] | None = None,
    type: int = ChannelType.GUILD_TEXT,
) -> dict[str, Any]:
    return {
        "id": str(id),
        "type": type,
        "guild_id": str(guild_id),
        "name": name,
        "position": position,
        "flags": 0,
        "parent_id": parent_id,
        "topic": topic,
        "nsfw": False,
        "last_message_id": None,
        "last_pin_timestamp": None,
        "rate_limit_per_user": 0,
        "default_auto_archive_duration": 1440,
        "default_thread_rate_limit_per_user": 0,
        "permission_overwrites": list(permission_overwrites or []),
    }


def overwrite(id: str, *, type: int, allow: int = 0, deny: int = 0) -> dict[str, Any]:
    """Permission overwrite (``type`` 0 = role, 1 = member)."""
    return {"id": str(id), "type": type, "allow": str(allow), "deny": str(deny)}


def thread_channel(
    id: str,
    guild_id: str,
    parent_id: str,
    name: str,
    *,
    owner_id: str,
    type: int = ChannelType.PUBLIC_THREAD,
    auto_archive_duration: int = 1440,
    archived: bool = False,
    locked: bool = False,
    invitable: bool | None = None,
    rate_limit_per_user: int = 0,
) -> dict[str, Any]:
    now = iso()
    metadata: dict[str, Any] = {
        "archived": archived,
        "archive_timestamp": now,
        "auto_archive_duration": auto_archive_duration,
        "locked": locked,
        "create_timestamp": now,
    }
    if type == ChannelType.PRIVATE_THREAD:
        metadata["invitable"] = True if invitable is None else invitable
    return {
        "id": str(id),
        "type": type,
        "guild_id": str(guild_id),
        "parent_id": str(parent_id),
        "name": name,
        "owner_id": str(owner_id),
        "flags": 0,
        "last_message_id": None,
        "last_pin_timestamp": None,
        "rate_limit_per_user": rate_limit_per_user,
        "message_count": 0,
        "member_count": 0,
        "total_message_sent": 0,
        "thread_metadata": metadata,
        "applied_tags": [],
    }


def thread_member(thread_id: str, user_id: str) -> dict[str, Any]:
    return {"id": str(thread_id), "user_id": str(user_id), "join_timestamp": iso(), "flags": 1}


def dm_channel(id: str, recipient: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(id),
        "type": ChannelType.DM,
        "flags": 0,
        "last_message_id": None,
        "last_pin_timestamp": None,
        "recipients": [recipient],
    }


# ---------------------------------------------------------------------------
# Application, commands
# ---------------------------------------------------------------------------
def application(
    id: str,
    name: str,
    *,
    bot_user: dict[str, Any],
    owner: dict[str, Any],
    flags: int = 0,
) -> dict[str, Any]:
    """``GET /applications/@me`` / ``GET /oauth2/applications/@me``."""
    return {
        "id": str(id),
        "name": name,
        "icon": None,
        "description": "Fake application for wire tests",
        "summary": "",
        "type": None,
        "bot": bot_user,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "flags": flags,
        "flags_new": str(flags),
        "explicit_content_filter": 0,
        "eligible_oauth2_scopes": ["bot", "applications.commands"],
        "approximate_user_install_count": 0,
        "approximate_user_authorization_count": 0,
        "owner": owner,
        "team": None,
        "tags": [],
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "role_connections_verification_url": None,
        "event_webhooks_url": None,
        "event_webhooks_status": 1,
        "approximate_guild_count": 1,
        "install_params": {
            "scopes": ["bot", "applications.commands"],
            "permissions": str(Perm.BOT_DEFAULT),
        },
        "integration_types_config": {
            "0": {
                "oauth2_install_params": {
                    "scopes": ["bot", "applications.commands"],
                    "permissions": "0",
                }
            },
        },
    }


def application_command(
    spec: dict[str, Any],
    *,
    id: str,
    application_id: str,
    guild_id: str | None,
    version: str,
) -> dict[str, Any]:
    """ApplicationCommandResponse built from a create/overwrite request item."""
    cmd_type = spec.get("type", 1) or 1
    data: dict[str, Any] = {
        "id": str(id),
        "application_id": str(application_id),
        "version": version,
        "default_member_permissions": spec.get("default_member_permissions"),
        "type": cmd_type,
        "name": spec["name"],
        "name_localizations": spec.get("name_localizations"),
        "description": spec.get("description", "") if cmd_type == 1 else "",
        "description_localizations": spec.get("description_localizations"),
        "dm_permission": spec.get("dm_permission", True),
        "contexts": spec.get("contexts"),
        "integration_types": spec.get("integration_types") or [0],
        "nsfw": bool(spec.get("nsfw", False)),
    }
    if guild_id is not None:
        data["guild_id"] = str(guild_id)
    if spec.get("options"):
        data["options"] = spec["options"]
    return data


# ---------------------------------------------------------------------------
# Attachments and messages
# ---------------------------------------------------------------------------
def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) for PNG and GIF payloads (Discord adds these to image attachments)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    return None


def waveform_b64(waveform: bytes | str | None) -> str | None:
    if waveform is None:
        return None
    if isinstance(waveform, str):
        return waveform
    return base64.b64encode(waveform).decode("ascii")


def attachment(
    id: str,
    filename: str,
    *,
    size: int,
    url: str,
    proxy_url: str,
    content_type: str | None,
    duration_secs: float | None = None,
    waveform: bytes | str | None = None,
    width: int | None = None,
    height: int | None = None,
    description: str | None = None,
    title: str | None = None,
    flags: int = 0,
    ephemeral: bool = False,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(id),
        "filename": filename,
        "size": size,
        "url": url,
        "proxy_url": proxy_url,
    }
    if content_type is not None:
        data["content_type"] = content_type
    if width is not None and height is not None:
        data["width"] = width
        data["height"] = height
        data["placeholder_version"] = 1
    if description is not None:
        data["description"] = description
    if title is not None:
        data["title"] = title
    if duration_secs is not None:
        data["duration_secs"] = duration_secs
    wf = waveform_b64(waveform)
    if wf is not None:
        data["waveform"] = wf
    if ephemeral:
        data["ephemeral"] = True
    data["flags"] = flags
    return data


def message(
    id: str,
    channel_id: str,
    author: dict[str, Any],
    content: str = "",
    *,
    type: int = MsgType.DEFAULT,
    flags: int = 0,
    mentions: list[dict[str, Any]] | None = None,
    mention_roles: list[str] | None = None,
    mention_everyone: bool = False,
    attachments: list[dict[str, Any]] | None = None,
    embeds: list[dict[str, Any]] | None = None,
    components: list[dict[str, Any]] | None = None,
    message_reference: dict[str, Any] | None = None,
    tts: bool = False,
    nonce: str | int | None = None,
    webhook_id: str | None = None,
    application_id: str | None = None,
    interaction_metadata: dict[str, Any] | None = None,
    timestamp: str | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": type,
        "content": content,
        "mentions": list(mentions or []),
        "mention_roles": [str(r) for r in (mention_roles or [])],
        "attachments": list(attachments or []),
        "embeds": list(embeds or []),
        "timestamp": timestamp or iso(snowflake_time(id)),
        "edited_timestamp": None,
        "flags": flags,
        "components": list(components or []),
        "id": str(id),
        "channel_id": str(channel_id),
        "author": author,
        "pinned": False,
        "mention_everyone": mention_everyone,
        "tts": tts,
    }
    if message_reference is not None:
        data["message_reference"] = message_reference
    if nonce is not None:
        data["nonce"] = nonce
    if webhook_id is not None:
        data["webhook_id"] = str(webhook_id)
    if application_id is not None:
        data["application_id"] = str(application_id)
    if interaction_metadata is not None:
        data["interaction_metadata"] = interaction_metadata
    return data


def message_reference(
    message_id: str, channel_id: str, guild_id: str | None = None, *, type: int = 0
) -> dict[str, Any]:
    ref: dict[str, Any] = {
        "type": type,
        "channel_id": str(channel_id),
        "message_id": str(message_id),
    }
    if guild_id is not None:
        ref["guild_id"] = str(guild_id)
    return ref


# ---------------------------------------------------------------------------
# Interactions
# ---------------------------------------------------------------------------
def interaction(
    id: str,
    *,
    application_id: str,
    type: int,
    token: str,
    data: dict[str, Any] | None,
    channel: dict[str, Any],
    guild_id: str | None,
    member_obj: dict[str, Any] | None,
    user_obj: dict[str, Any] | None,
    app_permissions: int,
    attachment_size_limit: int,
    message_obj: dict[str, Any] | None = None,
    locale: str = "en-US",
    guild_locale: str = "en-US",
) -> dict[str, Any]:
    """INTERACTION_CREATE payload (gateway ``d``)."""
    payload: dict[str, Any] = {
        "id": str(id),
        "application_id": str(application_id),
        "type": type,
        "token": token,
        "version": 1,
        "channel_id": channel["id"],
        "channel": channel,
        "app_permissions": str(app_permissions),
        "locale": locale,
        "entitlements": [],
        "entitlement_sku_ids": [],
        "attachment_size_limit": attachment_size_limit,
    }
    if data is not None:
        payload["data"] = data
    if guild_id is not None:
        payload["guild_id"] = str(guild_id)
        payload["guild"] = {"id": str(guild_id), "locale": guild_locale, "features": []}
        payload["guild_locale"] = guild_locale
        payload["member"] = member_obj
        payload["authorizing_integration_owners"] = {"0": str(guild_id)}
        payload["context"] = 0
    else:
        payload["user"] = user_obj
        payload["authorizing_integration_owners"] = {"0": "0"}
        payload["context"] = 1
    if message_obj is not None:
        payload["message"] = message_obj
    return payload


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------
def error(code: int, message: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors is not None:
        body["errors"] = errors
    return body


def form_error(field_errors: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """``50035 Invalid Form Body``; keys are dotted paths (``"embeds.0.description"``)."""
    tree: dict[str, Any] = {}
    for path, (code, msg) in field_errors.items():
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": code, "message": msg})
    return error(50035, "Invalid Form Body", tree)


def rate_limited(retry_after: float, *, is_global: bool = False) -> dict[str, Any]:
    return {
        "message": "You are being rate limited.",
        "retry_after": round(retry_after, 3),
        "global": is_global,
        "code": 0,
    }
