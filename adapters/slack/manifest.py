"""`python -m bot manifest slack`: the Slack app manifest (YAML) for this bot.

Hand-rendered by a tiny emitter (no YAML library at runtime): every string is a JSON string,
which is a valid YAML double-quoted scalar.
"""

from __future__ import annotations

import json
from typing import Any

from adapters.slack.adapter import EVENTS_PATH, SUGGESTED_PROMPTS
from adapters.slack.normalise import EDIT_SHORTCUT
from bot.core.commands import COMMANDS
from bot.core.config import Settings

APP_NAME = "Switchboard"
DESCRIPTION = "The OpenAI platform in team chat: ask by mention, DM or thread reply."
LONG_DESCRIPTION = (
    "Switchboard answers with this channel's assistant when you mention it, DM it, or reply in "
    "a thread it is part of. Answers stream in as they are written. Slash commands generate and "
    "edit images, speak and transcribe audio, reset or cancel the conversation, configure the "
    "channel's assistant (admins) and show what answers cost."
)
PUBLIC_URL_PLACEHOLDER = "https://YOUR-PUBLIC-HOST"

BOT_SCOPES = (
    "app_mentions:read",  # app_mention events
    "assistant:write",  # AI-app threads: status, suggested prompts
    "channels:history",  # thread replies in public channels; a thread's earlier messages
    "chat:write",  # answers, streaming, edits, ephemeral errors
    "commands",  # slash commands and the shortcut
    "files:read",  # downloading attached images, audio and documents
    "files:write",  # uploading generated images, audio and CSV
    "groups:history",  # private channels (and reading their threads)
    "im:history",  # DMs
    "im:read",
    "im:write",
    "mpim:history",  # group DMs (and reading their threads)
    "users:read",  # users.info: people's names for the model; workspace admins and owners
)
BOT_EVENTS = (
    "app_mention",
    "assistant_thread_context_changed",
    "assistant_thread_started",
    "message.channels",
    "message.groups",
    "message.im",
    "message.mpim",
)


def manifest(settings: Settings) -> dict[str, Any]:
    """The manifest as a dict: Socket Mode unless only a signing secret is configured (then
    HTTP request URLs, with a placeholder host to replace)."""
    socket_mode = settings.slack_app_token is not None or settings.slack_signing_secret is None
    request_url = f"{PUBLIC_URL_PLACEHOLDER}{EVENTS_PATH}"
    commands = []
    for info in COMMANDS:
        command: dict[str, Any] = {
            "command": f"/{info.name}",
            "description": info.description + (" (admins)" if info.access == "admins" else ""),
        }
        if info.usage:
            command["usage_hint"] = info.usage
        if not socket_mode:
            command["url"] = request_url
        command["should_escape"] = False
        commands.append(command)
    events: dict[str, Any] = {"bot_events": list(BOT_EVENTS)}
    interactivity: dict[str, Any] = {"is_enabled": True}
    if not socket_mode:
        events = {"request_url": request_url, **events}
        interactivity["request_url"] = request_url
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": APP_NAME,
            "description": DESCRIPTION,
            "long_description": LONG_DESCRIPTION,
            "background_color": "#1d3a5f",
        },
        "features": {
            "app_home": {
                "home_tab_enabled": False,
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": False,
            },
            "bot_user": {"display_name": APP_NAME, "always_online": True},
            "assistant_view": {
                "assistant_description": DESCRIPTION,
                "suggested_prompts": [dict(p) for p in SUGGESTED_PROMPTS],
            },
            "slash_commands": commands,
            "shortcuts": [
                {
                    "name": "Edit image",
                    "type": "message",
                    "callback_id": EDIT_SHORTCUT,
                    "description": "Edit this message's image with a prompt (and an optional mask)",
                }
            ],
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }


def render_manifest(settings: Settings) -> str:
    data = manifest(settings)
    socket_mode = data["settings"]["socket_mode_enabled"]
    header = [
        f"# Slack app manifest for {APP_NAME} (`python -m bot manifest slack`).",
        "# Create the app at https://api.slack.com/apps → Create New App → From a manifest.",
        '# Newer Slack "Agent" experience: rename assistant_view to agent_view and',
        "# assistant_description to agent_description.",
    ]
    if socket_mode:
        header.append(
            "# Socket Mode: create an app-level token with connections:write (SLACK_APP_TOKEN)."
        )
    else:
        header.append(
            f"# HTTP mode: replace {PUBLIC_URL_PLACEHOLDER} with the public address that "
            f"forwards to SLACK_PORT ({settings.slack_port})."
        )
    return "\n".join([*header, *_emit(data, 0)]) + "\n"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return "null"
    return json.dumps(str(value), ensure_ascii=False)


def _emit(value: Any, indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(_emit(item, indent + 1))
            elif isinstance(item, dict | list):
                lines.append(f"{pad}{key}: {'{}' if isinstance(item, dict) else '[]'}")
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
        return lines
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                nested = _emit(item, indent + 1)
                first = nested[0].lstrip()
                lines.append(f"{pad}- {first}")
                lines.extend(nested[1:])
            else:
                lines.append(f"{pad}- {_scalar(item)}")
        return lines
    return [pad + _scalar(value)]
