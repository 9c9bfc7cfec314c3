"""Builders for Slack payloads in the shapes Slack really sends.

Shapes follow recorded payloads (slack-bolt's ``tests/scenario_tests*`` fixtures, the
Events API / Socket Mode docs).  Everything here is pure: no I/O, no fake state.
``FakeSlack`` uses the same id/ts generators so ids and timestamps stay unique and
increasing across the builders and the fake's own messages.

Inner events (``app_mention``, ``message``, ...) are what ``FakeSlack.send_event`` and
``event_callback`` take; ``event_callback`` wraps one into the Events API body
(``type: "event_callback"``) that both transports deliver.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
import uuid
from typing import Any
from urllib.parse import quote

# Defaults shared with FakeSlack.  team/bot ids follow the project brief ("T1", "BBOT");
# note they are shorter than the 2020 OpenAPI spec's id regexes allow (see FakeSlack docs).
TEAM_ID = "T1"
TEAM_DOMAIN = "switchboard-test"
TEAM_NAME = "Switchboard Test"
APP_ID = "A1"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
BOT_NAME = "switchboard"
USER_ID = "UALICE"
USER_NAME = "alice"
CHANNEL_ID = "C0GENERAL"
CHANNEL_NAME = "general"
DM_CHANNEL_ID = "D0ALICEDM"
VERIFICATION_TOKEN = "verification-token"

_lock = threading.Lock()
_ts_micros = itertools.count(1_700_000_000_000_100, 100)
_seq = itertools.count(1)


def new_ts() -> str:
    """A Slack message ts ("1700000000.000100"), strictly increasing per process."""
    with _lock:
        n = next(_ts_micros)
    return f"{n // 1_000_000}.{n % 1_000_000:06d}"


def _next() -> int:
    with _lock:
        return next(_seq)


def _b36(n: int, width: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out.rjust(width, "0")


def new_event_id() -> str:
    """Unique Events API id like ``Ev0000000001`` (real ones look like ``Ev08MFMKH6J1``)."""
    return "Ev" + _b36(_next(), 10)


def new_file_id() -> str:
    return "F" + _b36(_next(), 10)


def new_view_id() -> str:
    return "V" + _b36(_next(), 10)


def new_envelope_id() -> str:
    return str(uuid.uuid4())


def new_trigger_id() -> str:
    return f"{_next() + 13345224609}.{738474920 + _next()}.{secrets.token_hex(16)}"


def new_client_msg_id() -> str:
    return str(uuid.uuid4())


def ts_to_int(ts: str) -> int:
    return int(ts.split(".", 1)[0])


# ---------------------------------------------------------------------------
# blocks


def rich_text_blocks(text: str, *, mention_user: str | None = None) -> list[dict]:
    """The ``rich_text`` block Slack's client attaches to a typed message."""
    elements: list[dict] = []
    if mention_user:
        elements.append({"type": "user", "user_id": mention_user})
        if text:
            elements.append({"type": "text", "text": " " + text})
    elif text:
        elements.append({"type": "text", "text": text})
    return [
        {
            "type": "rich_text",
            "block_id": secrets.token_urlsafe(3)[:4],
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]


# ---------------------------------------------------------------------------
# files


def file_object(
    *,
    file_id: str,
    name: str,
    mimetype: str,
    filetype: str,
    size: int,
    base_url: str,
    team_id: str = TEAM_ID,
    user: str = USER_ID,
    title: str | None = None,
    created: int | None = None,
    pretty_type: str | None = None,
    **extra: Any,
) -> dict:
    """A Slack file object (``event["files"][i]``, ``files.info`` ``file``).

    ``base_url`` is the host that serves ``url_private``/``url_private_download``
    (``https://files.slack.com`` in reality, the fake's own origin here).
    """
    created = created if created is not None else int(time.time())
    quoted = quote(name)
    base = base_url.rstrip("/")
    obj = {
        "id": file_id,
        "created": created,
        "timestamp": created,
        "name": name,
        "title": title if title is not None else name,
        "mimetype": mimetype,
        "filetype": filetype,
        "pretty_type": pretty_type or filetype.upper(),
        "user": user,
        "user_team": team_id,
        "editable": False,
        "size": size,
        "mode": "hosted",
        "is_external": False,
        "external_type": "",
        "is_public": True,
        "public_url_shared": False,
        "display_as_bot": False,
        "username": "",
        "url_private": f"{base}/files-pri/{team_id}-{file_id}/{quoted}",
        "url_private_download": f"{base}/files-pri/{team_id}-{file_id}/download/{quoted}",
        "media_display_type": _media_display_type(mimetype),
        "permalink": f"{base}/files/{user}/{file_id}/{quoted}",
        "permalink_public": f"{base}/files-pub/{team_id}-{file_id}-{secrets.token_hex(5)}",
        "has_rich_preview": False,
        "file_access": "visible",
    }
    obj.update(extra)
    return obj


def _media_display_type(mimetype: str) -> str:
    if mimetype.startswith("audio/"):
        return "audio"
    if mimetype.startswith("video/"):
        return "video"
    return "unknown"


# ---------------------------------------------------------------------------
# inner events


def app_mention(
    text: str,
    *,
    user: str = USER_ID,
    channel: str = CHANNEL_ID,
    ts: str | None = None,
    thread_ts: str | None = None,
    parent_user_id: str | None = None,
    bot_user_id: str = BOT_USER_ID,
    team: str = TEAM_ID,
    files: list[dict] | None = None,
) -> dict:
    """``app_mention``; ``text`` gets the ``<@BOT>`` prefix unless it already mentions the bot."""
    ts = ts or new_ts()
    mention = f"<@{bot_user_id}>"
    full = text if mention in text else f"{mention} {text}".rstrip()
    event: dict[str, Any] = {
        "client_msg_id": new_client_msg_id(),
        "type": "app_mention",
        "text": full,
        "user": user,
        "ts": ts,
        "blocks": rich_text_blocks(full.replace(mention, "").strip(), mention_user=bot_user_id),
        "team": team,
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = parent_user_id or user
    if files:
        event["files"] = files
        event["upload"] = False
        event["display_as_bot"] = False
    return event


def message(
    text: str,
    *,
    user: str = USER_ID,
    channel: str = CHANNEL_ID,
    ts: str | None = None,
    thread_ts: str | None = None,
    parent_user_id: str | None = None,
    channel_type: str = "channel",
    team: str = TEAM_ID,
    files: list[dict] | None = None,
) -> dict:
    """A user's ``message`` (channel/thread/DM).  With ``files`` it becomes ``file_share``."""
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "client_msg_id": new_client_msg_id(),
        "type": "message",
        "text": text,
        "user": user,
        "ts": ts,
        "blocks": rich_text_blocks(text),
        "team": team,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
        event["parent_user_id"] = parent_user_id or user
    if files:
        event["files"] = files
        event["upload"] = False
        event["display_as_bot"] = False
        event["subtype"] = "file_share"
        if not text:
            event.pop("blocks")
    return event


def im_message(text: str, *, channel: str = DM_CHANNEL_ID, **kwargs: Any) -> dict:
    """A DM (``message.im``): ``channel_type: "im"`` in a ``D…`` channel."""
    return message(text, channel=channel, channel_type="im", **kwargs)


def file_share_message(text: str, files: list[dict], **kwargs: Any) -> dict:
    return message(text, files=files, **kwargs)


def thread_reply(text: str, *, thread_ts: str, **kwargs: Any) -> dict:
    return message(text, thread_ts=thread_ts, **kwargs)


def message_changed(
    *,
    channel: str,
    new_text: str,
    original: dict,
    channel_type: str = "channel",
    editor: str | None = None,
    ts: str | None = None,
) -> dict:
    """``message`` / ``message_changed``: ``original`` is the message before the edit."""
    ts = ts or new_ts()
    previous = {
        k: v for k, v in original.items() if k not in ("channel", "event_ts", "channel_type")
    }
    new = dict(previous)
    new["text"] = new_text
    if "blocks" in new:
        new["blocks"] = rich_text_blocks(new_text)
    new["edited"] = {"user": editor or original.get("user", USER_ID), "ts": ts}
    return {
        "type": "message",
        "subtype": "message_changed",
        "message": new,
        "previous_message": previous,
        "channel": channel,
        "hidden": True,
        "ts": ts,
        "event_ts": ts,
        "channel_type": channel_type,
    }


def message_deleted(
    *,
    channel: str,
    original: dict,
    channel_type: str = "channel",
    ts: str | None = None,
) -> dict:
    """``message`` / ``message_deleted`` for the message ``original``."""
    ts = ts or new_ts()
    previous = {
        k: v for k, v in original.items() if k not in ("channel", "event_ts", "channel_type")
    }
    return {
        "type": "message",
        "subtype": "message_deleted",
        "previous_message": previous,
        "channel": channel,
        "hidden": True,
        "deleted_ts": original["ts"],
        "event_ts": ts,
        "ts": ts,
        "channel_type": channel_type,
    }


def bot_message(
    text: str,
    *,
    bot_id: str = "B0OTHERBOT",
    channel: str = CHANNEL_ID,
    ts: str | None = None,
    thread_ts: str | None = None,
    classic: bool = True,
    user: str = "U0OTHERBOT",
    username: str = "other-bot",
    app_id: str = "A0OTHERAPP",
    team: str = TEAM_ID,
    channel_type: str = "channel",
) -> dict:
    """A message from another bot.

    ``classic=True``: ``subtype: "bot_message"`` with ``bot_id``/``username`` (webhooks,
    legacy bots).  ``classic=False``: a modern app's message: no subtype, ``bot_id`` +
    ``user`` + ``bot_profile``.
    """
    ts = ts or new_ts()
    if classic:
        event: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": text,
            "ts": ts,
            "username": username,
            "bot_id": bot_id,
            "channel": channel,
            "event_ts": ts,
            "channel_type": channel_type,
        }
    else:
        event = {
            "bot_id": bot_id,
            "type": "message",
            "text": text,
            "user": user,
            "ts": ts,
            "app_id": app_id,
            "team": team,
            "bot_profile": {
                "id": bot_id,
                "deleted": False,
                "name": username,
                "updated": 1607307935,
                "app_id": app_id,
                "icons": {
                    "image_36": "https://a.slack-edge.com/80588/img/plugins/app/bot_36.png",
                    "image_48": "https://a.slack-edge.com/80588/img/plugins/app/bot_48.png",
                    "image_72": "https://a.slack-edge.com/80588/img/plugins/app/service_72.png",
                },
                "team_id": team,
            },
            "channel": channel,
            "event_ts": ts,
            "channel_type": channel_type,
        }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def assistant_thread_started(
    *,
    user: str = USER_ID,
    channel_id: str = DM_CHANNEL_ID,
    thread_ts: str | None = None,
    context_channel_id: str | None = None,
    team_id: str = TEAM_ID,
    enterprise_id: str | None = None,
) -> dict:
    """``assistant_thread_started`` (AI-app container opened by ``user``)."""
    thread_ts = thread_ts or new_ts()
    context: dict[str, Any] = {}
    if context_channel_id:
        context = {
            "channel_id": context_channel_id,
            "team_id": team_id,
            "enterprise_id": enterprise_id,
        }
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": user,
            "context": context,
            "channel_id": channel_id,
            "thread_ts": thread_ts,
        },
        "event_ts": new_ts(),
    }


def assistant_thread_context_changed(
    *,
    user: str = USER_ID,
    channel_id: str = DM_CHANNEL_ID,
    thread_ts: str,
    context_channel_id: str,
    team_id: str = TEAM_ID,
    enterprise_id: str | None = None,
) -> dict:
    return {
        "type": "assistant_thread_context_changed",
        "assistant_thread": {
            "user_id": user,
            "context": {
                "channel_id": context_channel_id,
                "team_id": team_id,
                "enterprise_id": enterprise_id,
            },
            "channel_id": channel_id,
            "thread_ts": thread_ts,
        },
        "event_ts": new_ts(),
    }


# ---------------------------------------------------------------------------
# envelopes / request bodies


def event_callback(
    event: dict,
    *,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    bot_user_id: str = BOT_USER_ID,
    event_id: str | None = None,
    event_time: int | None = None,
    token: str = VERIFICATION_TOKEN,
    enterprise_id: str | None = None,
) -> dict:
    """The Events API body (``type: "event_callback"``) around an inner event."""
    channel = event.get("channel") or (event.get("item") or {}).get("channel") or ""
    ts = event.get("event_ts") or event.get("ts")
    if event_time is None:
        event_time = ts_to_int(ts) if ts else int(time.time())
    return {
        "token": token,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": enterprise_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": event_time,
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event.get('type', 'event')}-{team_id}-{channel}",
    }


def url_verification(challenge: str | None = None) -> dict:
    return {
        "token": VERIFICATION_TOKEN,
        "challenge": challenge or secrets.token_urlsafe(24),
        "type": "url_verification",
    }


def slash_command(
    command: str,
    text: str = "",
    *,
    user_id: str = USER_ID,
    user_name: str = USER_NAME,
    channel_id: str = CHANNEL_ID,
    channel_name: str = CHANNEL_NAME,
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    api_app_id: str = APP_ID,
    response_url: str = "https://hooks.slack.com/commands/T1/1/x",
    trigger_id: str | None = None,
    enterprise_id: str | None = None,
    token: str = VERIFICATION_TOKEN,
) -> dict[str, str]:
    """Slash-command fields (form-encoded over HTTP, a JSON object over Socket Mode)."""
    fields = {
        "token": token,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command if command.startswith("/") else "/" + command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(),
    }
    if enterprise_id:
        fields["enterprise_id"] = enterprise_id
    return fields


def message_shortcut(
    callback_id: str,
    message: dict,
    *,
    channel_id: str = CHANNEL_ID,
    channel_name: str = CHANNEL_NAME,
    user_id: str = USER_ID,
    user_name: str = USER_NAME,
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    response_url: str = "https://hooks.slack.com/app/T1/1/x",
    trigger_id: str | None = None,
    token: str = VERIFICATION_TOKEN,
) -> dict:
    """``message_action`` (message shortcut) on ``message`` (its files are included)."""
    msg = {k: v for k, v in message.items() if k not in ("channel", "event_ts", "channel_type")}
    return {
        "type": "message_action",
        "token": token,
        "action_ts": new_ts(),
        "team": {"id": team_id, "domain": team_domain},
        "user": {"id": user_id, "name": user_name, "username": user_name, "team_id": team_id},
        "channel": {"id": channel_id, "name": channel_name},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id or new_trigger_id(),
        "response_url": response_url,
        "message_ts": message["ts"],
        "message": msg,
    }


def view_submission(
    callback_id: str,
    values: dict[str, dict[str, dict]],
    *,
    user_id: str = USER_ID,
    user_name: str = USER_NAME,
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    api_app_id: str = APP_ID,
    bot_id: str = BOT_ID,
    view_id: str | None = None,
    private_metadata: str = "",
    blocks: list[dict] | None = None,
    title: str = "Switchboard",
    response_urls: list[dict] | None = None,
    trigger_id: str | None = None,
    token: str = VERIFICATION_TOKEN,
) -> dict:
    """``view_submission``; ``values`` is ``view.state.values`` ({block_id: {action_id: {...}}})."""
    view_id = view_id or new_view_id()
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": team_domain},
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": token,
        "trigger_id": trigger_id or new_trigger_id(),
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "blocks": blocks or [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": values},
            "hash": f"{int(time.time())}.{secrets.token_urlsafe(6)[:8]}",
            "title": {"type": "plain_text", "text": title},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": {"type": "plain_text", "text": "Cancel"},
            "submit": {"type": "plain_text", "text": "Submit"},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": api_app_id,
            "external_id": "",
            "app_installed_team_id": team_id,
            "bot_id": bot_id,
        },
        "response_urls": response_urls or [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def form_encode_interactive(payload: dict) -> str:
    """Interactive payloads travel over HTTP as ``payload=<urlencoded JSON>``."""
    return "payload=" + quote(json.dumps(payload))
