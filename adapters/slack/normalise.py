"""Pure functions: Slack payloads (dicts) → the core's normalised values.

Nothing here does I/O or raises on malformed input: a payload that is not something the bot
should act on (an edit, a deletion, an unfurl, another bot, the bot itself, the `message` twin
of a mention, a half-formed dict) gives `None`.

Decisions encoded here:
- A channel mention arrives twice, as `app_mention` and as a `message` event (with different
  event ids). Mentions are answered from `app_mention` only; a channel `message` that mentions
  the bot is dropped. In DMs Slack sends no `app_mention`, so DMs come from `message`.
- Keys: a channel conversation is its thread (`thread_ts or ts`); a DM is one conversation
  (thread `""`) unless the message is inside a DM thread or an AI-app assistant thread, which
  is keyed by its `thread_ts`. Group DMs (mpim) behave like channels.
- Every other message gets its facts (`Addressing`: mention, DM, thread reply, thread parent);
  whether to answer it is the core's decision (`bot.core.addressing`), not the adapter's.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.types import (
    Actor,
    Addressing,
    Attachment,
    AttachmentKind,
    CommandCall,
    ConversationKey,
    EarlierMessage,
    Inbound,
)
from bot.text.sanitise import clean_text, safe_filename

log = logging.getLogger(__name__)

PLATFORM = "slack"
# Slack ids (T…, C…, U…, B…), timestamps ("1700000000.000100"), trigger and event ids: short,
# printable ASCII. Anything else in those fields is not from Slack and the payload is dropped.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,99}")
_COMMAND = re.compile(r"[a-z0-9_\-]{1,32}")
_MIME = re.compile(r"[A-Za-z0-9][\w.+\-]{0,63}/[\w.+\-]{1,127}")
MAX_SIZE = 2**53  # a declared size beyond this is a lie; kept finite so MB arithmetic works

# Message subtypes that are a person writing something; everything else (edits, deletions,
# joins, bot messages, channel topic changes, assistant thread roots…) is not for the bot.
USER_SUBTYPES = frozenset({"", "file_share", "thread_broadcast"})

# Callback ids of the "Edit image" message shortcut and its modal.
EDIT_SHORTCUT = "edit_image"
EDIT_MODAL = "edit_image_modal"
PROMPT_BLOCK = "prompt"
MASK_BLOCK = "mask"
INPUT_ACTION = "value"

Fetch = Callable[[], Awaitable[bytes]]
FetchFactory = Callable[[Mapping[str, Any], AttachmentKind], Fetch]

_DOCUMENT_MIMES = (
    "application/pdf",
    "application/json",
    "application/msword",
    "application/vnd.openxmlformats-officedocument",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.oasis.opendocument",
    "application/rtf",
    "application/xml",
    "application/x-yaml",
)
_DOCUMENT_TYPES = frozenset(
    {"pdf", "csv", "tsv", "text", "txt", "markdown", "md", "json", "docx", "doc", "xlsx", "xls",
     "pptx", "ppt", "odt", "ods", "rtf", "html", "xml", "yaml", "python", "javascript"}
)  # fmt: skip
_AUDIO_TYPES = frozenset({"m4a", "mp3", "mp4a", "wav", "webm", "ogg", "oga", "flac", "aac"})


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who the bot is in this workspace (from `auth.test`)."""

    user_id: str
    bot_id: str = ""
    team_id: str = ""


# --------------------------------------------------------------------------- small helpers


def _str(value: Any) -> str:
    return clean_text(value) if isinstance(value, str) else ""


def _id(value: Any) -> str:
    """An id-like field, or "" when it is missing or not shaped like a Slack id."""
    return value if isinstance(value, str) and _ID.fullmatch(value) else ""


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dropped(what: str, exc: Exception) -> None:
    log.warning("slack: dropped %s that could not be read (%s)", what, type(exc).__name__)


def team_of(body: Mapping[str, Any], fallback: str = "") -> str:
    """The workspace an event belongs to: the envelope's `team_id` (the installing workspace,
    also right for shared channels), else the authorization's, else the inner event's."""
    body = _dict(body)
    auths = _list(body.get("authorizations"))
    for value in (
        body.get("team_id"),
        _dict(auths[0] if auths else None).get("team_id"),
        _dict(body.get("team")).get("id"),
        _dict(body.get("event")).get("team"),
        body.get("user_team"),
    ):
        if _id(value):
            return value
    return fallback


def is_dm(event: Mapping[str, Any]) -> bool:
    channel_type = _str(event.get("channel_type"))
    if channel_type:
        return channel_type == "im"
    return _str(event.get("channel")).startswith("D")


def mentions(text: str, user_id: str) -> bool:
    return bool(user_id) and f"<@{user_id}" in text


_ANGLE = re.compile(r"<([^<>\n]*)>")


def plain_text(text: str, bot_user_id: str = "") -> str:
    """Slack markup → the text a model should read: the bot's own mention removed, people's
    mentions kept in Slack's form (`<@U123>`, how the model can mention them back), other
    entities and links made readable, `&amp;`/`&lt;`/`&gt;` unescaped."""
    if not isinstance(text, str):
        return ""
    text = clean_text(text)

    def entity(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            if bot_user_id and target[1:] == bot_user_id:
                return ""
            return f"<{target}>" if _ID.fullmatch(target[1:]) else "@" + (label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            name = target[1:].split("^", 1)[0]
            if name.startswith("subteam"):
                return "@" + (label.lstrip("@") or "group")
            if name.startswith("date"):
                return label or name
            return "@" + (label or name)
        if label:
            return f"{label} ({target})"
        return target

    cleaned = _ANGLE.sub(entity, text)
    cleaned = cleaned.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t]{2,}", " ", cleaned).strip()


def attachment_kind(file: Mapping[str, Any]) -> AttachmentKind:
    """Images, audio (including Slack audio clips, whose MIME type is often video/*),
    documents (text, PDF, office files, data) or other."""
    mime = _str(file.get("mimetype")).lower()
    filetype = _str(file.get("filetype")).lower()
    if mime.startswith("image/"):
        return "image"
    if (
        mime.startswith("audio/")
        or _str(file.get("subtype")) == "slack_audio"
        or _str(file.get("media_display_type")) == "audio"
        or filetype in _AUDIO_TYPES
    ):
        return "audio"
    if mime.startswith("text/") or mime.startswith(_DOCUMENT_MIMES) or filetype in _DOCUMENT_TYPES:
        return "document"
    return "other"


def file_attachment(file: Any, fetch_factory: FetchFactory | None) -> Attachment | None:
    """A Slack file object → `Attachment`; None for files that cannot be fetched (deleted
    "tombstones", files hidden by plan limits, external files, files without a URL)."""
    file = _dict(file)
    if not file or _str(file.get("mode")) in ("tombstone", "hidden_by_limit", "external"):
        return None
    if file.get("is_external") is True:
        return None
    if not (_str(file.get("url_private_download")) or _str(file.get("url_private"))):
        return None
    kind = attachment_kind(file)
    size = file.get("size")
    size = size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else 0
    size = min(size, MAX_SIZE)
    name = safe_filename(_str(file.get("name")) or _str(file.get("title")) or _id(file.get("id")))
    mime = _str(file.get("mimetype"))
    mime = mime if _MIME.fullmatch(mime) else "application/octet-stream"
    fetch = _no_fetch if fetch_factory is None else fetch_factory(file, kind)
    return Attachment(kind=kind, mime=mime, name=name, size=size, fetch=fetch)


async def _no_fetch() -> bytes:  # pragma: no cover - only for pure tests without a fetcher
    raise RuntimeError("no fetcher configured")


def attachments_of(event: Mapping[str, Any], fetch_factory: FetchFactory | None) -> tuple:
    out = []
    for file in _list(event.get("files")):
        attachment = file_attachment(file, fetch_factory)
        if attachment is not None:
            out.append(attachment)
    return tuple(out)


# --------------------------------------------------------------------------- events


def message_event(
    body: Mapping[str, Any],
    bot: BotIdentity,
    fetch_factory: FetchFactory | None = None,
) -> Inbound | None:
    """An Events API body (`event_callback`) carrying `app_mention` or `message` → `Inbound`,
    or None for what is never for the bot (see the module docstring)."""
    try:
        return _message_event(_dict(body), bot, fetch_factory)
    except Exception as exc:  # never raise on malformed input
        _dropped("an event", exc)
        return None


def _message_event(
    body: Mapping[str, Any], bot: BotIdentity, fetch_factory: FetchFactory | None
) -> Inbound | None:
    event = _dict(body.get("event"))
    etype = _str(event.get("type"))
    if etype not in ("app_mention", "message"):
        return None
    subtype = _str(event.get("subtype"))
    if subtype not in USER_SUBTYPES or event.get("hidden") is True or "edited" in event:
        return None
    user = _id(event.get("user"))
    channel = _id(event.get("channel"))
    ts = _id(event.get("ts"))
    if not user or not channel or not ts:
        log.warning("slack: dropped a %s event without a valid user, channel or ts", etype)
        return None
    if event.get("bot_id") or event.get("bot_profile") or _str(event.get("app_id")):
        return None  # the bot itself or another bot/app (modern apps carry bot_id + user)
    if user == bot.user_id:
        return None
    text = _str(event.get("text"))
    thread_ts = _id(event.get("thread_ts"))
    dm = is_dm(event)
    if etype == "app_mention":
        if dm:
            return None  # DMs arrive as `message` events; never answer one twice
        thread = thread_ts or ts
    elif dm:
        thread = thread_ts  # "" for the DM itself, the thread's root inside a DM thread
    else:
        if mentions(text, bot.user_id):
            return None  # the `app_mention` event carries it
        thread = thread_ts or ts
    reply_to = thread_ts if thread_ts != ts else ""
    team = team_of(body, bot.team_id)
    event_id = _id(body.get("event_id")) or f"{channel}-{ts}"
    return Inbound(
        key=ConversationKey(PLATFORM, team, channel, thread),
        actor=Actor(
            id=user, name=profile_name(event.get("user_profile")), mention=mention_of(user)
        ),
        text=plain_text(text, bot.user_id),
        event_id=event_id,
        message_id=ts,
        attachments=attachments_of(event, fetch_factory),
        addressing=Addressing(
            mentioned=etype == "app_mention",
            direct=dm,
            in_thread=bool(reply_to),
            reply_to=reply_to,
        ),
    )


def mention_of(user: str) -> str:
    """`<@U123>`: how a message mentions `user` (one shared string per user)."""
    return sys.intern(f"<@{user}>")


def profile_name(profile: Any) -> str:
    """The name Slack shows for a person: the profile's display name, else the real name."""
    profile = _dict(profile)
    for key in ("display_name", "real_name", "name"):
        name = _str(profile.get(key)).strip()
        if name:
            return name[:100]
    return ""


def user_name(user: Any) -> str:
    """`users.info`'s user → the name Slack shows for them."""
    user = _dict(user)
    return (
        profile_name(user.get("profile")) or _str(user.get("real_name")) or _str(user.get("name"))
    )


def earlier_message(
    message: Any,
    bot: BotIdentity,
    fetch_factory: FetchFactory | None = None,
    names: Mapping[str, str] | None = None,
) -> EarlierMessage | None:
    """A message of `conversations.replies` → `EarlierMessage` (None for edits' and deletions'
    tombstones, joins and other system messages). The bot's own are `is_self`, other bots'
    and apps' are marked `is_bot`."""
    try:
        message = _dict(message)
        subtype = _str(message.get("subtype"))
        if subtype not in USER_SUBTYPES and subtype != "bot_message":
            return None
        ts = _id(message.get("ts"))
        user = _id(message.get("user"))
        bot_id = _id(message.get("bot_id"))
        if not ts or not (user or bot_id):
            return None
        is_self = (bool(user) and user == bot.user_id) or (bool(bot_id) and bot_id == bot.bot_id)
        is_bot = bool(bot_id or message.get("bot_profile")) and not is_self
        if is_bot:
            name = _str(_dict(message.get("bot_profile")).get("name")) or _str(
                message.get("username")
            )
        else:
            name = (names or {}).get(user, "") or profile_name(message.get("user_profile"))
        author = Actor(
            id=user or bot_id,
            name=name[:100],
            is_bot=is_bot,
            mention=mention_of(user) if user and not is_bot else "",
        )
        return EarlierMessage(
            author=author,
            text=plain_text(_str(message.get("text")), bot.user_id),
            message_id=ts,
            is_self=is_self,
            attachments=attachments_of(message, fetch_factory),
        )
    except Exception as exc:
        _dropped("an earlier message", exc)
        return None


@dataclass(frozen=True, slots=True)
class AssistantThread:
    channel: str
    thread_ts: str
    user: str
    context_channel: str = ""


def assistant_thread(body: Mapping[str, Any]) -> AssistantThread | None:
    """`assistant_thread_started` / `_context_changed` → where the AI-app thread is."""
    try:
        event = _dict(_dict(body).get("event"))
        thread = _dict(event.get("assistant_thread"))
        channel, thread_ts = _id(thread.get("channel_id")), _id(thread.get("thread_ts"))
        if not channel or not thread_ts:
            return None
        return AssistantThread(
            channel=channel,
            thread_ts=thread_ts,
            user=_id(thread.get("user_id")),
            context_channel=_id(_dict(thread.get("context")).get("channel_id")),
        )
    except Exception as exc:
        _dropped("an assistant thread event", exc)
        return None


# --------------------------------------------------------------------------- commands


def command_name(command: Any) -> str:
    """`/imagine` → `imagine`; "" for anything that is not a slash command's name."""
    name = _str(command).strip().lstrip("/").lower()
    return name if _COMMAND.fullmatch(name) else ""


def command_call(payload: Mapping[str, Any], *, is_admin: bool = False) -> CommandCall | None:
    """A slash-command payload → `CommandCall` keyed by the channel (or by the thread when the
    payload names one), with event id `cmd-<trigger_id>`."""
    try:
        payload = _dict(payload)
        name = command_name(payload.get("command"))
        channel = _id(payload.get("channel_id"))
        user = _id(payload.get("user_id"))
        if not name or not channel or not user:
            return None
        trigger = _id(payload.get("trigger_id"))
        text = _str(payload.get("text")).strip()
        event_id = "cmd-" + (trigger or f"{channel}-{user}-{name}-{text[:200]}")
        return CommandCall(
            key=ConversationKey(PLATFORM, team_of(payload), channel, _id(payload.get("thread_ts"))),
            actor=Actor(id=user, name=_str(payload.get("user_name")), is_admin=is_admin),
            name=name,
            event_id=event_id,
            text=text,
        )
    except Exception as exc:
        _dropped("a slash command", exc)
        return None


def first_image(message: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for file in _list(_dict(message).get("files")):
        file = _dict(file)
        if attachment_kind(file) == "image" and file_attachment(file, None) is not None:
            return file
    return None


_FILE_FIELDS = ("id", "name", "title", "mimetype", "filetype", "size", "url_private",
                "url_private_download", "mode")  # fmt: skip


def edit_modal_metadata(payload: Mapping[str, Any]) -> str | None:
    """For a message-shortcut payload on a message with an image: the modal's
    `private_metadata` (where to answer and which image), or None when there is no image."""
    try:
        payload = _dict(payload)
        message = _dict(payload.get("message"))
        image = first_image(message)
        channel = _id(_dict(payload.get("channel")).get("id"))
        if image is None or not channel:
            return None
        thread = (
            _id(message.get("thread_ts"))
            or _id(message.get("ts"))
            or _id(payload.get("message_ts"))
        )
        meta = {
            "channel": channel,
            "thread": thread,
            "team": team_of(payload),
            "image": {k: image[k] for k in _FILE_FIELDS if k in image},
        }
        return json.dumps(meta, separators=(",", ":"))
    except Exception as exc:
        _dropped("a message shortcut", exc)
        return None


def edit_modal_view(private_metadata: str) -> dict[str, Any]:
    """The "Edit image" modal: a prompt and an optional PNG mask."""
    return {
        "type": "modal",
        "callback_id": EDIT_MODAL,
        "title": {"type": "plain_text", "text": "Edit image"},
        "submit": {"type": "plain_text", "text": "Edit"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": private_metadata,
        "blocks": [
            {
                "type": "input",
                "block_id": PROMPT_BLOCK,
                "label": {"type": "plain_text", "text": "What should change?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": INPUT_ACTION,
                    "multiline": True,
                    "placeholder": {"type": "plain_text", "text": "Make the sky a sunset"},
                },
            },
            {
                "type": "input",
                "block_id": MASK_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Mask (optional)"},
                "hint": {
                    "type": "plain_text",
                    "text": "A PNG the size of the image: transparent areas are the ones to change.",
                },
                "element": {
                    "type": "file_input",
                    "action_id": INPUT_ACTION,
                    "filetypes": ["png"],
                    "max_files": 1,
                },
            },
        ],
    }


def edit_prompt(payload: Mapping[str, Any]) -> str:
    values = _dict(_dict(_dict(_dict(payload).get("view")).get("state")).get("values"))
    block = _dict(values.get(PROMPT_BLOCK))
    for action in block.values():
        value = _dict(action).get("value")
        if isinstance(value, str):
            return value.strip()
    return ""


def edit_call(
    payload: Mapping[str, Any],
    fetch_factory: FetchFactory | None,
    *,
    is_admin: bool = False,
) -> CommandCall | None:
    """A `view_submission` of the edit modal → `CommandCall("edit", text=prompt,
    attachments=(image[, mask]))`, keyed by the image's thread."""
    try:
        payload = _dict(payload)
        view = _dict(payload.get("view"))
        meta = json.loads(_str(view.get("private_metadata")) or "{}")
        meta = _dict(meta)
        channel = _id(meta.get("channel"))
        user = _dict(payload.get("user"))
        user_id = _id(user.get("id"))
        image = file_attachment(meta.get("image"), fetch_factory)
        if not channel or not user_id or image is None:
            return None
        attachments = [image]
        values = _dict(_dict(view.get("state")).get("values"))
        for action in _dict(values.get(MASK_BLOCK)).values():
            for file in _list(_dict(action).get("files")):
                mask = file_attachment(file, fetch_factory)
                if mask is not None:
                    attachments.append(mask)
                    break
        trigger = _id(payload.get("trigger_id")) or _id(view.get("id"))
        return CommandCall(
            key=ConversationKey(
                PLATFORM,
                _id(meta.get("team")) or team_of(payload),
                channel,
                _id(meta.get("thread")),
            ),
            actor=Actor(
                id=user_id,
                name=_str(user.get("username")) or _str(user.get("name")),
                is_admin=is_admin,
            ),
            name="edit",
            event_id="cmd-" + trigger,
            text=edit_prompt(payload),
            attachments=tuple(attachments[:2]),
        )
    except Exception as exc:
        _dropped("an edit form", exc)
        return None


def user_is_admin(user: Any) -> bool:
    """`users.info` user → workspace admin or owner."""
    user = _dict(user)
    return any(user.get(k) is True for k in ("is_admin", "is_owner", "is_primary_owner"))
