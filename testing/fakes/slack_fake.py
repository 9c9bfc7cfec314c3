"""A loopback fake of Slack for wire tests driven by the real slack-sdk / slack-bolt clients.

One ``aiohttp.web`` server on 127.0.0.1 (port 0) plays every Slack host a bot talks to::

    async with FakeSlack(bot_token="xoxb-test", app_token="xapp-test",
                         signing_secret="s3cret") as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)
        app = AsyncApp(client=client, signing_secret="s3cret")
        handler = AsyncSocketModeHandler(app, "xapp-test")
        await handler.connect_async()          # apps.connections.open -> ws://127.0.0.1/link/
        env = await slack.send_event(slack_payloads.app_mention("hi"))
        await slack.wait_ack(env)

What it models
--------------
* **Web API** at ``{api_url}{method}`` (``/api/chat.postMessage``): GET or POST; args merged from
  the query string, a form body or a JSON body (``token`` may be an arg instead of the
  ``Authorization: Bearer`` header).  Token kinds are checked: no token -> ``not_authed``,
  unknown -> ``invalid_auth``, the app token on a bot method (or the bot token on
  ``apps.connections.open``) -> ``not_allowed_token_type``.  Errors are HTTP 200 with
  ``{"ok": false, "error": ...}`` like Slack; unknown methods -> ``unknown_method``.
  Methods: ``api.test``, ``auth.test``, ``apps.connections.open``, ``chat.postMessage``,
  ``chat.update`` (edit history kept), ``chat.delete``, ``chat.postEphemeral``,
  ``chat.getPermalink``, ``chat.startStream`` / ``appendStream`` / ``stopStream`` (accumulated
  ``markdown_text`` and ``markdown_text`` chunks; recipient ids required outside DMs; appends
  after stop -> ``message_not_in_streaming_state``; optional max stream age),
  ``assistant.threads.setStatus`` / ``setSuggestedPrompts`` / ``setTitle``, ``users.info``,
  ``conversations.info``, ``conversations.replies`` (threads with reply_count etc.; ``limit`` +
  ``cursor`` pagination, ``latest``/``oldest``/``inclusive``; ``missing_scope`` with ``needed``
  and ``provided`` once a test calls ``revoke_scope`` with the channel type's ``*:history``),
  ``files.getUploadURLExternal`` + the upload POST + ``files.completeUploadExternal``,
  ``files.info``, ``views.open`` (trigger ids must be known and < 3 s old), ``views.update``
  (``hash_conflict``), ``reactions.add``.  Limits: ``text`` > 40,000 chars and
  ``markdown_text`` > 12,000 -> ``msg_too_long``; > 50 blocks -> ``invalid_blocks``; no
  text/blocks/attachments -> ``no_text``; bad ``thread_ts`` -> ``invalid_thread_ts``,
  unknown parent -> ``thread_not_found`` (``strict_threads``).
* **Rate limits**: ``rate_limit_next(method, times, retry_after)`` -> HTTP 429 + ``Retry-After``
  + ``{"ok": false, "error": "ratelimited"}``; ``enable_rate_limits()`` switches on a
  token-bucket limiter (``chat.postMessage`` ~1/s per channel, ``chat.update`` ~50/min per
  workspace).  Every 429 counts in ``rate_limited_count``.  ``fail_next(method, error)``
  injects any other error; ``clear_faults()`` drops the injected ones not used yet.
* **File hosting**: ``add_file`` / uploaded files are served at ``url_private(_download)``;
  with a valid bearer token the bytes and the file's MIME type come back, otherwise a
  200 ``text/html`` login page (as Slack does).  Per file: ``redirect_to`` (302 to another
  host; by default the same file on ``http://localhost:PORT``, a different host name for
  the same server), ``declared_size`` (``size`` in the metadata differs from the bytes),
  ``serve_mimetype`` (Content-Type differs from the metadata).  Every GET is logged in
  ``file_requests``.
* **Socket Mode**: ``apps.connections.open`` hands out single-use ``ws://127.0.0.1:PORT/link/
  ?ticket=…`` URLs; on connect the server sends ``hello``; ``send_event`` /
  ``send_slash_command`` / ``send_interactive`` push envelopes to the newest connection;
  acks (and their latency) are recorded; ``disconnect_socket`` sends
  ``{"type": "disconnect"}`` and/or closes, so the client must call
  ``apps.connections.open`` again.  Slash-command ack payloads and ``response_url`` POSTs
  become ephemeral or in-channel messages (``response_url``: 5 uses / 30 min).
* **HTTP Events API**: ``deliver_http`` POSTs a v0-signed body (JSON event callback, form
  slash command, or ``payload=`` interactive form) to an app on loopback, optionally with a
  bad signature, a stale timestamp and ``X-Slack-Retry-*`` headers.
* Incoming user messages (events sent through the fake, ``add_message``) land in the channel
  history, so ``conversations.replies`` sees the thread the bot is answering.

What it does NOT model
----------------------
* TLS (everything is ``http://``/``ws://``), proxies, Enterprise Grid / org installs, OAuth,
  token rotation, user tokens; scopes only for ``conversations.replies`` (every other method
  works with every valid bot token).
* Automatic Events API redelivery (Slack retries un-acked events after 3 s up to 3 times);
  tests resend by hand with ``retry_attempt``/``retry_reason`` and the same ``event_id``.
* Event generation from the bot's own actions (posting does not echo a ``message`` event),
  channel membership (``not_in_channel``), archived channels, the 3 s ack deadline itself
  (only measured), Socket Mode load balancing across connections, ``too_many_websockets``.
* Rendering: mrkdwn / Block Kit are stored, never validated beyond counts (no
  ``invalid_blocks`` for malformed blocks, no ``msg_blocks_too_long``); ``text`` is not
  truncated; streaming ``task_update``/``plan_update`` chunks are stored, not interpreted.
* Exact rate-limit numbers (Slack publishes tiers, not numbers; ``conversations.replies`` is
  only rate-limited when a test asks), workspace-wide caps.
* The legacy ``files.upload`` (sunset) and most of the Web API (unknown_method).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import mimetypes
import re
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import aiohttp
from aiohttp import web

from testing.fakes import slack_payloads as P

SPEC_NAME = "slack-web-openapi.json"  # in testing/specs (spec_check.SPECS_DIR)

MAX_TEXT = 40_000
MAX_MARKDOWN_TEXT = 12_000
MAX_BLOCKS = 50
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60

# Form-encoded args that carry JSON (slack-sdk json.dumps them when it sends a form body).
_JSON_ARGS = {"blocks", "attachments", "files", "prompts", "chunks", "metadata", "view"}
# Keys kept on stored messages for tests that Slack would not return.
_INTERNAL_KEYS = {"channel", "edits"}
_TS_RE = re.compile(r"^\d{10}\.\d{6}$")
_INTERACTIVE_TYPES = {
    "block_actions",
    "block_suggestion",
    "message_action",
    "shortcut",
    "view_submission",
    "view_closed",
    "interactive_message",
    "dialog_submission",
}

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en-US">
<head><meta charset="utf-8"><title>Slack</title></head>
<body class="signin">
<h1>Sign in to Slack</h1>
<form id="signin_form" action="/signin" method="post">
<input type="email" name="email" placeholder="name@work-email.com">
<button type="submit">Sign In With Email</button>
</form>
</body>
</html>
"""


# The scopes a bot token has unless a test revokes some (`FakeSlack.revoke_scope`).
_BOT_SCOPES = (
    "app_mentions:read", "assistant:write", "channels:history", "chat:write", "commands",
    "files:read", "files:write", "groups:history", "im:history", "im:read", "im:write",
    "mpim:history", "users:read",
)  # fmt: skip


def _history_scope(channel: dict) -> str:
    if channel.get("is_im"):
        return "im:history"
    if channel.get("is_mpim"):
        return "mpim:history"
    return "groups:history" if channel.get("is_private") else "channels:history"


def _ts_value(ts: str) -> tuple[int, int]:
    whole, _, fraction = ts.partition(".")
    return int(whole or 0), int(fraction or 0)


class SlackError(Exception):
    """Raise inside a Web API handler to answer ``{"ok": false, "error": error}``."""

    def __init__(
        self,
        error: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        extra: dict | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.extra = extra or {}


@dataclass
class ApiCall:
    """One Web API request as the fake saw it."""

    method: str
    args: dict[str, Any]
    token: str | None
    http_verb: str
    content_type: str
    at: float
    status: int = 0
    response: dict | None = None

    @property
    def ok(self) -> bool:
        return bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        return None if self.response is None else self.response.get("error")


@dataclass
class Upload:
    """A file uploaded with files.getUploadURLExternal -> POST -> files.completeUploadExternal."""

    file_id: str
    filename: str
    length: int  # the length the client declared in getUploadURLExternal
    alt_txt: str | None = None
    snippet_type: str | None = None
    upload_url: str = ""
    data: bytes | None = None  # None until the upload POST arrived
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False
    file: dict | None = None  # the Slack file object after completion

    @property
    def size(self) -> int:
        return len(self.data or b"")


@dataclass
class Stream:
    """A chat.startStream message: its chunks in order and the accumulated text."""

    ts: str
    channel: str
    thread_ts: str | None
    recipient_user_id: str | None
    recipient_team_id: str | None
    started_at: float
    chunks: list[str] = field(default_factory=list)  # markdown text pieces, in order
    raw_chunks: list[dict] = field(default_factory=list)  # every chunk object, in order
    calls: list[str] = field(default_factory=list)  # "start", "append", "stop"
    state: str = "streaming"  # "streaming" | "stopped" | "expired"
    final_text: str | None = None
    stop_args: dict | None = None

    @property
    def text(self) -> str:
        return "".join(self.chunks)


@dataclass
class HostedFile:
    meta: dict
    data: bytes
    redirect_to: str | None = None
    serve_mimetype: str | None = None


@dataclass
class _Socket:
    ws: web.WebSocketResponse
    request: web.Request
    number: int
    opened_at: float


class _Bucket:
    def __init__(self, rate_per_s: float, burst: float) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self.tokens = burst
        self.at = time.monotonic()

    def take(self) -> float:
        """0 if a token was taken, else seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


def sign_v0(secret: str, timestamp: str, body: bytes | str) -> str:
    """Slack's request signature: ``v0=`` + HMAC-SHA256(secret, "v0:{ts}:{body}")."""
    raw = body.encode() if isinstance(body, str) else body
    base = b"v0:" + timestamp.encode() + b":" + raw
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class FakeSlack:
    """Loopback Slack: Web API, file host, Socket Mode websocket and HTTP event sender."""

    def __init__(
        self,
        bot_token: str = "xoxb-test",
        app_token: str = "xapp-test",
        signing_secret: str = "s3cret",
        *,
        team_id: str = P.TEAM_ID,
        team_name: str = P.TEAM_NAME,
        team_domain: str = P.TEAM_DOMAIN,
        app_id: str = P.APP_ID,
        bot_user_id: str = P.BOT_USER_ID,
        bot_id: str = P.BOT_ID,
        bot_name: str = P.BOT_NAME,
        auto_create_channels: bool = True,
        strict_threads: bool = True,
        trigger_ttl: float = 3.0,
        stream_max_age: float | None = None,
        single_use_tickets: bool = True,
        check_spec: bool | str | Path = False,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.app_id = app_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.auto_create_channels = auto_create_channels
        self.strict_threads = strict_threads
        self.trigger_ttl = trigger_ttl
        self.stream_max_age = stream_max_age
        self.single_use_tickets = single_use_tickets

        self.port: int = 0
        self.url: str = ""
        self.api_url: str = ""

        # -- state tests read
        self.calls: list[ApiCall] = []
        self.messages: defaultdict[str, list[dict]] = defaultdict(list)
        self.deleted_messages: list[dict] = []
        self.ephemeral: list[dict] = []
        self.streams: dict[str, Stream] = {}
        self.uploads: list[Upload] = []
        self.statuses: list[dict] = []
        self.suggested_prompts: list[dict] = []
        self.titles: list[dict] = []
        self.views: dict[str, dict] = {}
        self.view_calls: list[dict] = []
        self.response_url_posts: list[dict] = []
        self.users: dict[str, dict] = {}
        self.channels: dict[str, dict] = {}
        self.revoked_scopes: set[str] = set()  # see `revoke_scope`
        self.replies_pages = 0  # conversations.replies pages served
        self.files: dict[str, HostedFile] = {}
        self.file_requests: list[dict] = []
        self.rate_limited_count = 0
        self.envelopes: dict[str, dict] = {}
        self.acks: dict[str, dict] = {}
        self.ack_latency: dict[str, float] = {}
        self.duplicate_acks: list[dict] = []
        self.socket_messages: list[Any] = []  # every frame a client sent (parsed if JSON)
        self.socket_connections = 0
        self.http_deliveries: list[dict] = []
        self.internal_errors: list[tuple[str, Exception]] = []  # fake bugs (-> fatal_error)
        self.spec_problems: list[tuple[str, list[str]]] = []
        self.spec_checked: set[str] = set()
        self.spec_skipped: set[str] = set()

        # -- internals
        self._handlers = self._build_handlers()
        self._rate_limit_next: dict[str, deque[int]] = defaultdict(deque)
        self._fail_next: dict[str, deque[SlackError]] = defaultdict(deque)
        self._limits: dict[str, float] | None = None
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._pending_uploads: dict[str, Upload] = {}
        self._upload_by_key: dict[str, Upload] = {}
        self._triggers: dict[str, float] = {}
        self._response_urls: dict[str, dict] = {}
        self._tickets: set[str] = set()
        self._sockets: list[_Socket] = []
        self._sockets_changed = asyncio.Event()
        self._sent_at: dict[str, float] = {}
        self._envelope_ctx: dict[str, dict] = {}
        self._ack_events: dict[str, asyncio.Event] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._spec: Any = None
        self._spec_verbs: dict[str, str] = {}
        if check_spec:
            self._load_spec(SPEC_NAME if check_spec is True else check_spec)

        self.add_user(bot_user_id, bot_name, is_bot=True, bot_id=bot_id)
        self.add_user(P.USER_ID, P.USER_NAME, real_name="Alice Example")
        self.add_user("UBOB", "bob", real_name="Bob Example")
        self.add_user("UADMIN", "admin", real_name="Ada Admin", is_admin=True)
        self.add_user("UOWNER", "owner", real_name="Olga Owner", is_admin=True, is_owner=True)
        self.add_channel(P.CHANNEL_ID, P.CHANNEL_NAME, is_general=True)
        self.add_channel(P.DM_CHANNEL_ID, is_im=True, user=P.USER_ID)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/v1/{key}", self._upload_post)
        app.router.add_get("/files-pri/{team_file}/download/{name}", self._file_get)
        app.router.add_get("/files-pri/{team_file}/{name}", self._file_get)
        app.router.add_get("/link/", self._socket)
        app.router.add_get("/socket-mode", self._socket)
        app.router.add_post("/commands/{team}/{n}/{key}", self._response_url)
        app.router.add_post("/actions/{team}/{n}/{key}", self._response_url)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = self.url + "/api/"
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        for sock in list(self._sockets):
            with contextlib.suppress(Exception):
                await sock.ws.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ setup helpers

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        is_primary_owner: bool = False,
        is_bot: bool = False,
        is_restricted: bool = False,
        is_ultra_restricted: bool = False,
        deleted: bool = False,
        tz: str = "Europe/Amsterdam",
        tz_offset: int = 3600,
        bot_id: str | None = None,
        email: str | None = None,
    ) -> dict:
        """Register a user for users.info (returns the Slack user object)."""
        real = real_name or name
        profile: dict[str, Any] = {
            "title": "",
            "phone": "",
            "skype": "",
            "real_name": real,
            "real_name_normalized": real,
            "display_name": name,
            "display_name_normalized": name,
            "fields": None,
            "status_text": "",
            "status_emoji": "",
            "status_expiration": 0,
            "avatar_hash": "g" + secrets.token_hex(5)[:11],
            "first_name": real.split(" ")[0],
            "last_name": " ".join(real.split(" ")[1:]),
            "image_24": "https://a.slack-edge.com/80588/img/avatars/ava_0001-24.png",
            "image_48": "https://a.slack-edge.com/80588/img/avatars/ava_0001-48.png",
            "image_72": "https://a.slack-edge.com/80588/img/avatars/ava_0001-72.png",
            "team": self.team_id,
        }
        if is_bot:
            profile["bot_id"] = bot_id or self.bot_id
            profile["api_app_id"] = self.app_id
            profile["always_active"] = True
        elif email or not deleted:
            profile["email"] = email or f"{name}@example.com"
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": deleted,
            "color": "9f69e7",
            "real_name": real,
            "tz": tz,
            "tz_label": "Central European Time",
            "tz_offset": tz_offset,
            "profile": profile,
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_primary_owner": is_primary_owner,
            "is_restricted": is_restricted,
            "is_ultra_restricted": is_ultra_restricted,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }
        self.users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        name: str | None = None,
        *,
        is_im: bool = False,
        is_private: bool = False,
        is_mpim: bool = False,
        is_general: bool = False,
        user: str | None = None,
        is_member: bool = True,
        num_members: int = 3,
    ) -> dict:
        """Register a conversation (``D…``/``is_im`` for DMs, then ``user`` is the other party)."""
        is_im = is_im or channel_id.startswith("D")
        created = 1_690_000_000
        if is_im:
            ch: dict[str, Any] = {
                "id": channel_id,
                "created": created,
                "is_archived": False,
                "is_im": True,
                "is_org_shared": False,
                "context_team_id": self.team_id,
                "updated": created * 1000,
                "user": user or P.USER_ID,
                "is_user_deleted": False,
                "priority": 0,
            }
        else:
            name = name or channel_id.lower()
            ch = {
                "id": channel_id,
                "name": name,
                "is_channel": not is_private and not is_mpim,
                "is_group": is_private and not is_mpim,
                "is_im": False,
                "is_mpim": is_mpim,
                "is_private": is_private or is_mpim,
                "created": created,
                "is_archived": False,
                "is_general": is_general,
                "unlinked": 0,
                "name_normalized": name,
                "is_shared": False,
                "is_org_shared": False,
                "is_pending_ext_shared": False,
                "pending_shared": [],
                "context_team_id": self.team_id,
                "updated": created * 1000,
                "parent_conversation": None,
                "creator": P.USER_ID,
                "is_ext_shared": False,
                "shared_team_ids": [self.team_id],
                "pending_connected_team_ids": [],
                "is_member": is_member,
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0},
                "previous_names": [],
                "num_members": num_members,
            }
        self.channels[channel_id] = ch
        return ch

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = P.USER_ID,
        ts: str | None = None,
        thread_ts: str | None = None,
        files: list[dict] | None = None,
    ) -> dict:
        """Seed the channel history with a user's message (returns the stored message)."""
        event = P.message(
            text,
            user=user,
            channel=channel,
            ts=ts,
            thread_ts=thread_ts,
            files=files,
            team=self.team_id,
        )
        return self._record_user_message(event)

    def add_file(
        self,
        name: str,
        data: bytes,
        mimetype: str,
        filetype: str | None = None,
        *,
        title: str | None = None,
        user: str = P.USER_ID,
        declared_size: int | None = None,
        redirect_to: str | bool | None = None,
        serve_mimetype: str | None = None,
        **extra: Any,
    ) -> dict:
        """Host ``data`` and return its Slack file object (for ``event["files"]``).

        ``declared_size`` lies about ``size``; ``redirect_to=True`` makes url_private answer
        302 to the same file on ``http://localhost:PORT`` (another host), a string redirects
        there; ``serve_mimetype`` serves a Content-Type other than ``mimetype``.
        """
        self._require_started()
        filetype = filetype or (Path(name).suffix.lstrip(".").lower() or "binary")
        meta = P.file_object(
            file_id=P.new_file_id(),
            name=name,
            mimetype=mimetype,
            filetype=filetype,
            size=len(data) if declared_size is None else declared_size,
            base_url=self.url,
            team_id=self.team_id,
            user=user,
            title=title,
            **extra,
        )
        self.files[meta["id"]] = HostedFile(meta=meta, data=data, serve_mimetype=serve_mimetype)
        if redirect_to:
            self.set_file_redirect(meta["id"], None if redirect_to is True else redirect_to)
        return meta

    def set_file_redirect(self, file_id: str, location: str | None = None) -> str:
        """Make the file's URLs answer 302; default target: same path on ``localhost``."""
        hosted = self.files[file_id]
        if location is None:
            parts = urlsplit(hosted.meta["url_private"])
            location = urlunsplit(parts._replace(netloc=f"localhost:{self.port}"))
        hosted.redirect_to = location
        return location

    # ------------------------------------------------------------------ behaviour switches

    def rate_limit_next(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer 429 ``ratelimited``."""
        for _ in range(times):
            self._rate_limit_next[method].append(retry_after)

    def fail_next(
        self,
        method: str,
        error: str,
        *,
        times: int = 1,
        status: int = 200,
        headers: dict[str, str] | None = None,
        extra: dict | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}``."""
        for _ in range(times):
            self._fail_next[method].append(
                SlackError(error, status=status, headers=headers, extra=extra)
            )

    def clear_faults(self) -> None:
        """Forget every fault queued by ``fail_next`` and ``rate_limit_next`` not used yet."""
        self._fail_next.clear()
        self._rate_limit_next.clear()

    def enable_rate_limits(
        self,
        *,
        post_per_second: float = 1.0,
        post_burst: float = 1.0,
        update_per_minute: float = 50.0,
        update_burst: float = 50.0,
        append_per_minute: float = 100.0,
        append_burst: float = 100.0,
    ) -> None:
        """Token buckets: chat.postMessage per channel, chat.update per workspace (Tier 3),
        chat.appendStream per workspace (Tier 4)."""
        self._limits = {
            "post_rate": post_per_second,
            "post_burst": post_burst,
            "update_rate": update_per_minute / 60.0,
            "update_burst": update_burst,
            "append_rate": append_per_minute / 60.0,
            "append_burst": append_burst,
        }
        self._buckets.clear()

    def disable_rate_limits(self) -> None:
        self._limits = None
        self._buckets.clear()

    def expire_stream(self, ts: str) -> None:
        """Later appends/stops of this stream answer ``message_not_in_streaming_state``."""
        self.streams[ts].state = "expired"

    # ------------------------------------------------------------------ read helpers

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    def find_message(self, channel: str, ts: str) -> dict | None:
        for m in self.messages.get(channel, []):
            if m["ts"] == ts:
                return m
        return None

    def thread(self, channel: str, thread_ts: str) -> list[dict]:
        """Parent + replies of a thread, oldest first (stored dicts)."""
        return sorted(
            (
                m
                for m in self.messages.get(channel, [])
                if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts
            ),
            key=lambda m: m["ts"],
        )

    def bot_messages(self, channel: str | None = None) -> list[dict]:
        chans = [channel] if channel else list(self.messages)
        return [
            m for c in chans for m in self.messages.get(c, []) if m.get("bot_id") == self.bot_id
        ]

    @property
    def open_sockets(self) -> int:
        return len(self._sockets)

    # ------------------------------------------------------------------ Web API plumbing

    def _build_handlers(self) -> dict[str, tuple[Any, str]]:
        return {
            "api.test": (self._api_test, "any"),
            "auth.test": (self._auth_test, "bot"),
            "apps.connections.open": (self._apps_connections_open, "app"),
            "chat.postMessage": (self._chat_post_message, "bot"),
            "chat.update": (self._chat_update, "bot"),
            "chat.delete": (self._chat_delete, "bot"),
            "chat.postEphemeral": (self._chat_post_ephemeral, "bot"),
            "chat.getPermalink": (self._chat_get_permalink, "bot"),
            "chat.startStream": (self._chat_start_stream, "bot"),
            "chat.appendStream": (self._chat_append_stream, "bot"),
            "chat.stopStream": (self._chat_stop_stream, "bot"),
            "assistant.threads.setStatus": (self._assistant_set_status, "bot"),
            "assistant.threads.setSuggestedPrompts": (self._assistant_set_prompts, "bot"),
            "assistant.threads.setTitle": (self._assistant_set_title, "bot"),
            "users.info": (self._users_info, "bot"),
            "conversations.info": (self._conversations_info, "bot"),
            "conversations.replies": (self._conversations_replies, "bot"),
            "files.getUploadURLExternal": (self._files_get_upload_url, "bot"),
            "files.completeUploadExternal": (self._files_complete_upload, "bot"),
            "files.info": (self._files_info, "bot"),
            "views.open": (self._views_open, "bot"),
            "views.update": (self._views_update, "bot"),
            "reactions.add": (self._reactions_add, "bot"),
        }

    async def _read_args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        ctype = request.content_type
        if ctype == "multipart/form-data":
            form = await request.post()
            for k, v in form.items():
                args[k] = v if isinstance(v, str) else v.file.read()
        else:
            raw = await request.read()
            if ctype == "application/json":
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError as e:
                        raise SlackError("invalid_json") from e
                    if not isinstance(body, dict):
                        raise SlackError("json_not_object")
                    args.update(body)
            elif raw:
                args.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        for k in _JSON_ARGS & args.keys():
            v = args[k]
            if isinstance(v, str) and v[:1] in "[{":
                with contextlib.suppress(ValueError):
                    args[k] = json.loads(v)
        return args

    def _token_kind(self, token: str) -> str | None:
        if token == self.bot_token:
            return "bot"
        if token == self.app_token:
            return "app"
        return None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call = ApiCall(
            method=method,
            args={},
            token=None,
            http_verb=request.method,
            content_type=request.content_type,
            at=time.monotonic(),
        )
        self.calls.append(call)
        headers: dict[str, str] = {}
        try:
            args = await self._read_args(request)
            auth = request.headers.get("Authorization", "")
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
            if "token" in args:
                token = token or args["token"]
                args.pop("token")
            call.args, call.token = args, token
            status, body, headers = 200, self._dispatch(method, args, token), {}
        except SlackError as e:
            status, headers = e.status, e.headers
            body = {"ok": False, "error": e.error, **e.extra}
        except Exception as e:  # a bug in the fake: answer like Slack, keep it visible
            self.internal_errors.append((method, e))
            status, body = 200, {"ok": False, "error": "fatal_error"}
        if status == 429:
            self.rate_limited_count += 1
        call.status, call.response = status, body
        self._check_spec(call)
        return web.json_response(body, status=status, headers=headers)

    def _dispatch(self, method: str, args: dict[str, Any], token: str | None) -> dict:
        if self._fail_next.get(method):
            raise self._fail_next[method].popleft()
        if self._rate_limit_next.get(method):
            retry_after = self._rate_limit_next[method].popleft()
            raise SlackError("ratelimited", status=429, headers={"Retry-After": str(retry_after)})
        entry = self._handlers.get(method)
        if entry is None:
            raise SlackError("unknown_method", extra={"req_method": method})
        handler, kind = entry
        if not token:
            raise SlackError("not_authed")
        got = self._token_kind(token)
        if got is None:
            raise SlackError("invalid_auth")
        if kind != "any" and got != kind:
            raise SlackError("not_allowed_token_type")
        self._apply_limiter(method, args)
        return handler(args)

    def _apply_limiter(self, method: str, args: dict[str, Any]) -> None:
        if self._limits is None:
            return
        if method == "chat.postMessage":
            key = (method, str(args.get("channel", "")))
            rate, burst = self._limits["post_rate"], self._limits["post_burst"]
        elif method == "chat.update":
            key = (method, "")
            rate, burst = self._limits["update_rate"], self._limits["update_burst"]
        elif method == "chat.appendStream":
            key = (method, "")
            rate, burst = self._limits["append_rate"], self._limits["append_burst"]
        else:
            return
        bucket = self._buckets.setdefault(key, _Bucket(rate, burst))
        wait = bucket.take()
        if wait > 0:
            raise SlackError(
                "ratelimited", status=429, headers={"Retry-After": str(max(1, math.ceil(wait)))}
            )

    # -- spec checking (testing/fakes/spec_check.py, written by someone else)

    def _load_spec(self, path: str | Path) -> None:
        from testing.fakes import spec_check

        self._spec = spec_check.load_spec(path)
        for p, ops in self._spec.document.get("paths", {}).items():
            verbs = [v for v in ops if v in ("get", "post", "put", "delete", "patch")]
            if verbs:
                self._spec_verbs[p] = verbs[0]

    def _check_spec(self, call: ApiCall) -> None:
        """Check a successful call's response (and its args) against the 2020 spec.

        Only ``ok: true`` answers: the spec files errors under ``default`` and its error
        enums predate many real errors (``ratelimited``, ``invalid_thread_ts``…).  The spec
        verb is used even if the client used another (auth.test is GET in the spec).
        """
        if self._spec is None or call.response is None:
            return
        path = "/" + call.method
        verb = self._spec_verbs.get(path)
        if verb is None:
            self.spec_skipped.add(call.method)
            return
        if call.status != 200 or not call.response.get("ok"):
            return
        self.spec_checked.add(call.method)
        problems = list(self._spec.check_response(verb, path, call.status, call.response))
        problems += self._spec.check_request(verb, path, call.args)
        if problems:
            self.spec_problems.append((call.method, problems))

    # ------------------------------------------------------------------ helpers for handlers

    def _require_started(self) -> None:
        if not self.url:
            raise RuntimeError("FakeSlack is not started (use `async with FakeSlack() as slack`)")

    @staticmethod
    def _need(args: dict[str, Any], *names: str) -> None:
        for n in names:
            if args.get(n) in (None, ""):
                raise SlackError(
                    "invalid_arguments",
                    extra={
                        "response_metadata": {"messages": [f"[ERROR] missing required field: {n}"]}
                    },
                )

    def _channel(self, ref: Any) -> dict:
        if not ref or not isinstance(ref, str):
            raise SlackError("channel_not_found")
        ref = ref.lstrip("#")
        if ref in self.channels:
            return self.channels[ref]
        for ch in self.channels.values():
            if ch.get("name") == ref:
                return ch
        if self.auto_create_channels and re.fullmatch(r"[CGD][A-Z0-9]+", ref):
            return self.add_channel(ref, is_private=ref.startswith("G"))
        raise SlackError("channel_not_found")

    def _check_thread(self, channel: str, thread_ts: Any) -> str | None:
        if thread_ts in (None, ""):
            return None
        thread_ts = str(thread_ts)
        if not _TS_RE.match(thread_ts):
            raise SlackError("invalid_thread_ts")
        if self.strict_threads and self.find_message(channel, thread_ts) is None:
            raise SlackError("thread_not_found")
        return thread_ts

    @staticmethod
    def _check_text(args: dict[str, Any]) -> None:
        text = args.get("text")
        if isinstance(text, str) and len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        md = args.get("markdown_text")
        if isinstance(md, str) and len(md) > MAX_MARKDOWN_TEXT:
            raise SlackError("msg_too_long")
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            raise SlackError("invalid_blocks_format")
        if isinstance(blocks, list) and len(blocks) > MAX_BLOCKS:
            raise SlackError("invalid_blocks")

    def _bot_profile(self) -> dict:
        return {
            "id": self.bot_id,
            "deleted": False,
            "name": self.bot_name,
            "updated": 1_700_000_000,
            "app_id": self.app_id,
            "icons": {
                "image_36": "https://a.slack-edge.com/80588/img/plugins/app/bot_36.png",
                "image_48": "https://a.slack-edge.com/80588/img/plugins/app/bot_48.png",
                "image_72": "https://a.slack-edge.com/80588/img/plugins/app/service_72.png",
            },
            "team_id": self.team_id,
        }

    def _new_bot_message(
        self, channel: str, *, text: str = "", thread_ts: str | None = None
    ) -> dict:
        msg: dict[str, Any] = {
            "user": self.bot_user_id,
            "type": "message",
            "ts": P.new_ts(),
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": text,
            "team": self.team_id,
            "bot_profile": self._bot_profile(),
            "channel": channel,
        }
        if thread_ts:
            msg["thread_ts"] = thread_ts
            parent = self.find_message(channel, thread_ts)
            if parent is not None and parent.get("user"):
                msg["parent_user_id"] = parent["user"]
        self.messages[channel].append(msg)
        return msg

    def _public(self, msg: dict) -> dict:
        """A stored message as the API returns it (thread stats on parents, no test-only keys)."""
        out = {k: v for k, v in msg.items() if k not in _INTERNAL_KEYS}
        channel = msg.get("channel")
        if channel and msg.get("thread_ts") in (None, msg["ts"]):
            replies = [
                m
                for m in self.messages.get(channel or "", [])
                if m.get("thread_ts") == msg["ts"] and m["ts"] != msg["ts"]
            ]
            if replies:
                users = list(dict.fromkeys(m.get("user") or m.get("bot_id") for m in replies))
                out.update(
                    thread_ts=msg["ts"],
                    reply_count=len(replies),
                    reply_users_count=len(users),
                    latest_reply=replies[-1]["ts"],
                    reply_users=users,
                    is_locked=False,
                    subscribed=False,
                )
        return out

    def _message_fields(self, msg: dict, args: dict[str, Any]) -> None:
        for key in ("blocks", "attachments", "metadata", "username", "icon_emoji", "icon_url"):
            if key in args:
                msg[key] = args[key]
        if args.get("reply_broadcast") in (True, "1", "true"):
            msg["subtype"] = "thread_broadcast"

    # ------------------------------------------------------------------ Web API methods

    def _api_test(self, args: dict[str, Any]) -> dict:
        return {"ok": True, "args": args}

    def _auth_test(self, args: dict[str, Any]) -> dict:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, args: dict[str, Any]) -> dict:
        ticket = secrets.token_hex(16)
        self._tickets.add(ticket)
        return {
            "ok": True,
            "url": f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}",
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict:
        ch = self._channel(args.get("channel"))
        if not any(args.get(k) for k in ("text", "blocks", "attachments", "markdown_text")):
            raise SlackError("no_text")
        self._check_text(args)
        thread_ts = self._check_thread(ch["id"], args.get("thread_ts"))
        text = args.get("text") or args.get("markdown_text") or ""
        msg = self._new_bot_message(ch["id"], text=text, thread_ts=thread_ts)
        self._message_fields(msg, args)
        return {"ok": True, "channel": ch["id"], "ts": msg["ts"], "message": self._public(msg)}

    def _own_message(self, args: dict[str, Any], *, forbidden: str) -> tuple[dict, dict]:
        ch = self._channel(args.get("channel"))
        ts = args.get("ts")
        msg = self.find_message(ch["id"], str(ts)) if ts else None
        if msg is None:
            raise SlackError("message_not_found")
        if msg.get("bot_id") != self.bot_id:
            raise SlackError(forbidden)
        return ch, msg

    def _chat_update(self, args: dict[str, Any]) -> dict:
        ch, msg = self._own_message(args, forbidden="cant_update_message")
        if not any(
            k in args for k in ("text", "blocks", "attachments", "markdown_text", "file_ids")
        ):
            raise SlackError("no_text")
        self._check_text(args)
        edit_ts = P.new_ts()
        msg.setdefault("edits", []).append(
            {
                "text": msg.get("text", ""),
                "blocks": msg.get("blocks"),
                "attachments": msg.get("attachments"),
                "replaced_at": edit_ts,
            }
        )
        if "text" in args or "markdown_text" in args:
            msg["text"] = args.get("text") or args.get("markdown_text") or ""
        for key in ("blocks", "attachments", "metadata"):
            if key in args:
                if args[key] in ([], "[]"):
                    msg.pop(key, None)
                else:
                    msg[key] = args[key]
        msg["edited"] = {"user": self.bot_user_id, "ts": edit_ts}
        return {
            "ok": True,
            "channel": ch["id"],
            "ts": msg["ts"],
            "text": msg["text"],
            "message": self._public(msg),
        }

    def _chat_delete(self, args: dict[str, Any]) -> dict:
        ch, msg = self._own_message(args, forbidden="cant_delete_message")
        self.messages[ch["id"]].remove(msg)
        self.deleted_messages.append(msg)
        return {"ok": True, "channel": ch["id"], "ts": msg["ts"]}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict:
        ch = self._channel(args.get("channel"))
        self._need(args, "user")
        if args["user"] not in self.users:
            raise SlackError("user_not_in_channel")
        if not any(args.get(k) for k in ("text", "blocks", "attachments", "markdown_text")):
            raise SlackError("no_text")
        self._check_text(args)
        ts = P.new_ts()
        self.ephemeral.append(
            {
                "via": "chat.postEphemeral",
                "channel": ch["id"],
                "user": args["user"],
                "text": args.get("text") or args.get("markdown_text") or "",
                "blocks": args.get("blocks"),
                "thread_ts": args.get("thread_ts"),
                "message_ts": ts,
            }
        )
        return {"ok": True, "message_ts": ts}

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict:
        ch = self._channel(args.get("channel"))
        ts = str(args.get("message_ts") or "")
        if self.find_message(ch["id"], ts) is None:
            raise SlackError("message_not_found")
        link = f"https://{self.team_domain}.slack.com/archives/{ch['id']}/p{ts.replace('.', '')}"
        return {"ok": True, "channel": ch["id"], "permalink": link}

    # -- streaming

    @staticmethod
    def _markdown_pieces(args: dict[str, Any]) -> tuple[list[str], list[dict]]:
        pieces: list[str] = []
        raw: list[dict] = []
        md = args.get("markdown_text")
        if isinstance(md, str) and md:
            pieces.append(md)
            raw.append({"type": "markdown_text", "text": md})
        chunks = args.get("chunks")
        if chunks is not None:
            if not isinstance(chunks, list) or not all(
                isinstance(c, dict) and c.get("type") for c in chunks
            ):
                raise SlackError("invalid_chunks")
            for c in chunks:
                raw.append(c)
                if c["type"] == "markdown_text":
                    text = c.get("text") or ""
                    if len(text) > MAX_MARKDOWN_TEXT:
                        raise SlackError("msg_too_long")
                    pieces.append(text)
        return pieces, raw

    def _chat_start_stream(self, args: dict[str, Any]) -> dict:
        ch = self._channel(args.get("channel"))
        self._need(args, "thread_ts")
        thread_ts = self._check_thread(ch["id"], args.get("thread_ts"))
        if not ch.get("is_im"):
            if not args.get("recipient_team_id"):
                raise SlackError("missing_recipient_team_id")
            if not args.get("recipient_user_id"):
                raise SlackError("missing_recipient_user_id")
        self._check_text(args)
        pieces, raw = self._markdown_pieces(args)
        msg = self._new_bot_message(ch["id"], text="".join(pieces), thread_ts=thread_ts)
        stream = Stream(
            ts=msg["ts"],
            channel=ch["id"],
            thread_ts=thread_ts,
            recipient_user_id=args.get("recipient_user_id"),
            recipient_team_id=args.get("recipient_team_id"),
            started_at=time.monotonic(),
            chunks=pieces,
            raw_chunks=raw,
            calls=["start"],
        )
        self.streams[msg["ts"]] = stream
        return {"ok": True, "channel": ch["id"], "ts": msg["ts"]}

    def _live_stream(self, args: dict[str, Any]) -> tuple[Stream, dict]:
        ch = self._channel(args.get("channel"))
        self._need(args, "ts")
        ts = str(args["ts"])
        msg = self.find_message(ch["id"], ts)
        stream = self.streams.get(ts)
        if msg is None:
            raise SlackError("message_not_found")
        if stream is None:
            raise SlackError("message_not_in_streaming_state")
        if (
            stream.state == "streaming"
            and self.stream_max_age is not None
            and time.monotonic() - stream.started_at > self.stream_max_age
        ):
            stream.state = "expired"
        if stream.state != "streaming":
            raise SlackError("message_not_in_streaming_state")
        return stream, msg

    def _chat_append_stream(self, args: dict[str, Any]) -> dict:
        stream, msg = self._live_stream(args)
        self._check_text(args)
        pieces, raw = self._markdown_pieces(args)
        if not raw:
            raise SlackError("invalid_arguments")
        stream.chunks.extend(pieces)
        stream.raw_chunks.extend(raw)
        stream.calls.append("append")
        msg["text"] = stream.text
        return {"ok": True, "channel": stream.channel, "ts": stream.ts}

    def _chat_stop_stream(self, args: dict[str, Any]) -> dict:
        stream, msg = self._live_stream(args)
        self._check_text(args)
        pieces, raw = self._markdown_pieces(args)
        stream.chunks.extend(pieces)
        stream.raw_chunks.extend(raw)
        stream.calls.append("stop")
        stream.state = "stopped"
        stream.final_text = stream.text
        stream.stop_args = {k: v for k, v in args.items() if k not in ("channel", "ts")}
        msg["text"] = stream.text
        for key in ("blocks", "metadata"):
            if args.get(key):
                msg[key] = args[key]
        return {
            "ok": True,
            "channel": stream.channel,
            "ts": stream.ts,
            "message": self._public(msg),
        }

    # -- assistant

    def _assistant_set_status(self, args: dict[str, Any]) -> dict:
        self._need(args, "channel_id", "thread_ts")
        if "status" not in args:
            raise SlackError("invalid_arguments")
        self._channel(args["channel_id"])
        self.statuses.append(dict(args))
        return {"ok": True}

    def _assistant_set_prompts(self, args: dict[str, Any]) -> dict:
        self._need(args, "channel_id")
        prompts = args.get("prompts")
        if not isinstance(prompts, list) or not prompts:
            raise SlackError("invalid_arguments")
        self._channel(args["channel_id"])
        self.suggested_prompts.append(dict(args))
        return {"ok": True}

    def _assistant_set_title(self, args: dict[str, Any]) -> dict:
        self._need(args, "channel_id", "thread_ts", "title")
        self._channel(args["channel_id"])
        self.titles.append(dict(args))
        return {"ok": True}

    # -- users / conversations

    def _need_scope(self, scope: str) -> None:
        """`missing_scope` (with `needed` and `provided`, as Slack answers) when a test took
        `scope` away with `revoke_scope`."""
        if scope in self.revoked_scopes:
            provided = ",".join(sorted(set(_BOT_SCOPES) - self.revoked_scopes))
            raise SlackError("missing_scope", extra={"needed": scope, "provided": provided})

    def revoke_scope(self, *scopes: str) -> None:
        """Take `scopes` away from the bot token: methods needing them answer `missing_scope`."""
        self.revoked_scopes.update(scopes)

    def _users_info(self, args: dict[str, Any]) -> dict:
        user = self.users.get(str(args.get("user", "")))
        if user is None:
            raise SlackError("user_not_found")
        return {"ok": True, "user": user}

    def _conversations_info(self, args: dict[str, Any]) -> dict:
        return {"ok": True, "channel": self._channel(args.get("channel"))}

    def _conversations_replies(self, args: dict[str, Any]) -> dict:
        ch = self._channel(args.get("channel"))
        self._need_scope(_history_scope(ch))
        ts = str(args.get("ts") or "")
        msg = self.find_message(ch["id"], ts)
        if msg is None:
            raise SlackError("thread_not_found")
        root = msg.get("thread_ts") or msg["ts"]
        thread = self.thread(ch["id"], root)
        inclusive = str(args.get("inclusive", "")).lower() in ("1", "true")
        if args.get("latest"):
            latest = _ts_value(str(args["latest"]))
            thread = [
                m
                for m in thread
                if _ts_value(m["ts"]) < latest or (inclusive and _ts_value(m["ts"]) == latest)
            ]
        if args.get("oldest"):
            oldest = _ts_value(str(args["oldest"]))
            thread = [
                m
                for m in thread
                if _ts_value(m["ts"]) > oldest or (inclusive and _ts_value(m["ts"]) == oldest)
            ]
        self.replies_pages += 1
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 1000)
        page = thread[start : start + limit]
        body: dict[str, Any] = {"ok": True, "messages": [self._public(m) for m in page]}
        body["has_more"] = start + limit < len(thread)
        if body["has_more"]:
            body["response_metadata"] = {"next_cursor": str(start + limit)}
        return body

    # -- files

    def _files_get_upload_url(self, args: dict[str, Any]) -> dict:
        self._need(args, "filename", "length")
        try:
            length = int(args["length"])
        except (TypeError, ValueError) as e:
            raise SlackError("invalid_arguments") from e
        if length <= 0:
            raise SlackError("invalid_arguments")
        key = secrets.token_urlsafe(24)
        up = Upload(
            file_id=P.new_file_id(),
            filename=str(args["filename"]),
            length=length,
            alt_txt=args.get("alt_txt"),
            snippet_type=args.get("snippet_type"),
            upload_url=f"{self.url}/upload/v1/{key}",
        )
        self._pending_uploads[up.file_id] = up
        self._upload_by_key[key] = up
        return {"ok": True, "upload_url": up.upload_url, "file_id": up.file_id}

    def _files_complete_upload(self, args: dict[str, Any]) -> dict:
        files = args.get("files")
        if not isinstance(files, list) or not files:
            raise SlackError("invalid_arguments")
        channel = None
        if args.get("channel_id"):
            channel = self._channel(args["channel_id"])["id"]
        elif args.get("channels"):
            channel = self._channel(str(args["channels"]).split(",")[0])["id"]
        thread_ts = None
        if args.get("thread_ts"):
            if channel is None:
                raise SlackError("invalid_arguments")
            thread_ts = self._check_thread(channel, args["thread_ts"])
        comment = args.get("initial_comment")
        if isinstance(comment, str) and len(comment) > MAX_TEXT:
            raise SlackError("msg_too_long")
        ups: list[Upload] = []
        for f in files:
            up = self._pending_uploads.get(str(f.get("id"))) if isinstance(f, dict) else None
            if up is None or up.data is None:
                raise SlackError("file_not_found")
            ups.append(up)
        objs = []
        for up, f in zip(ups, files, strict=True):
            up.title = f.get("title") or up.filename
            up.channel, up.thread_ts, up.initial_comment = channel, thread_ts, comment
            mimetype = mimetypes.guess_type(up.filename)[0] or "application/octet-stream"
            filetype = Path(up.filename).suffix.lstrip(".").lower() or "binary"
            meta = P.file_object(
                file_id=up.file_id,
                name=up.filename,
                mimetype=mimetype,
                filetype=filetype,
                size=up.size,
                base_url=self.url,
                team_id=self.team_id,
                user=self.bot_user_id,
                title=up.title,
            )
            if up.alt_txt:
                meta["alt_txt"] = up.alt_txt
            self.files[up.file_id] = HostedFile(meta=meta, data=up.data or b"")
            up.file, up.completed = meta, True
            del self._pending_uploads[up.file_id]
            self.uploads.append(up)
            objs.append(meta)
        if channel is not None:
            msg = self._new_bot_message(channel, text=comment or "", thread_ts=thread_ts)
            msg["files"] = objs
            msg["upload"] = True
            msg["display_as_bot"] = False
            if args.get("blocks"):
                msg["blocks"] = args["blocks"]
        return {"ok": True, "files": [{"id": o["id"], "title": o["title"]} for o in objs]}

    def _files_info(self, args: dict[str, Any]) -> dict:
        hosted = self.files.get(str(args.get("file", "")))
        if hosted is None:
            raise SlackError("file_not_found")
        return {
            "ok": True,
            "file": hosted.meta,
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }

    # -- views / reactions

    def _check_trigger(self, trigger_id: str) -> None:
        issued = self._triggers.get(trigger_id)
        if issued is None:
            raise SlackError("invalid_trigger_id")
        if time.monotonic() - issued > self.trigger_ttl:
            raise SlackError("expired_trigger_id")

    def _make_view(
        self, spec: dict, *, view_id: str | None = None, root: str | None = None
    ) -> dict:
        if not isinstance(spec, dict) or spec.get("type") not in ("modal", "home"):
            raise SlackError("invalid_arguments")
        if spec["type"] == "modal" and not spec.get("title"):
            raise SlackError("invalid_arguments")
        view_id = view_id or P.new_view_id()
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": spec["type"],
            "title": spec.get("title"),
            "submit": spec.get("submit"),
            "close": spec.get("close"),
            "blocks": spec.get("blocks", []),
            "private_metadata": spec.get("private_metadata", ""),
            "callback_id": spec.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_urlsafe(6)[:8]}",
            "clear_on_close": bool(spec.get("clear_on_close", False)),
            "notify_on_close": bool(spec.get("notify_on_close", False)),
            "root_view_id": root or view_id,
            "previous_view_id": None,
            "app_id": self.app_id,
            "external_id": spec.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    def _views_open(self, args: dict[str, Any]) -> dict:
        trigger = args.get("trigger_id") or args.get("interactivity_pointer")
        if not trigger:
            raise SlackError("invalid_arguments")
        if "view" not in args:
            raise SlackError("invalid_arguments")
        self._check_trigger(str(trigger))
        view = self._make_view(args["view"])
        self.views[view["id"]] = view
        self.view_calls.append({"method": "views.open", "trigger_id": trigger, "view": view})
        return {"ok": True, "view": view}

    def _views_update(self, args: dict[str, Any]) -> dict:
        if "view" not in args:
            raise SlackError("invalid_arguments")
        current = None
        if args.get("view_id"):
            current = self.views.get(str(args["view_id"]))
        elif args.get("external_id"):
            current = next(
                (v for v in self.views.values() if v.get("external_id") == args["external_id"]),
                None,
            )
        else:
            raise SlackError("invalid_arguments")
        if current is None:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        view = self._make_view(args["view"], view_id=current["id"], root=current["root_view_id"])
        self.views[view["id"]] = view
        self.view_calls.append({"method": "views.update", "view": view})
        return {"ok": True, "view": view}

    def _reactions_add(self, args: dict[str, Any]) -> dict:
        ch = self._channel(args.get("channel"))
        name = str(args.get("name") or "").strip(":")
        if not args.get("timestamp"):
            raise SlackError("no_item_specified")
        if not name:
            raise SlackError("invalid_name")
        msg = self.find_message(ch["id"], str(args["timestamp"]))
        if msg is None:
            raise SlackError("message_not_found")
        reactions = msg.setdefault("reactions", [])
        for r in reactions:
            if r["name"] == name:
                if self.bot_user_id in r["users"]:
                    raise SlackError("already_reacted")
                r["users"].append(self.bot_user_id)
                r["count"] += 1
                break
        else:
            reactions.append({"name": name, "users": [self.bot_user_id], "count": 1})
        return {"ok": True}

    # ------------------------------------------------------------------ upload host / file host

    async def _upload_post(self, request: web.Request) -> web.Response:
        up = self._upload_by_key.get(request.match_info["key"])
        if up is None or up.completed:
            return web.Response(status=404, text="Not Found")
        if request.content_type == "multipart/form-data":
            form = await request.post()
            part = next((v for v in form.values() if not isinstance(v, str)), None)
            data = part.file.read() if part is not None else b""
        else:
            data = await request.read()
        up.data = data
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    async def _file_get(self, request: web.Request) -> web.StreamResponse:
        team_file = request.match_info["team_file"]
        file_id = team_file.split("-", 1)[1] if "-" in team_file else team_file
        hosted = self.files.get(file_id)
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        entry = {
            "file_id": file_id,
            "path": request.path,
            "host": request.host,
            "authorization": auth or None,
            "authorized": token is not None and self._token_kind(token) == "bot",
            "status": 0,
        }
        self.file_requests.append(entry)
        if hosted is None:
            entry["status"] = 404
            return web.Response(status=404, text="Not Found")
        if hosted.redirect_to and request.host == f"127.0.0.1:{self.port}":
            entry["status"] = 302
            raise web.HTTPFound(hosted.redirect_to)
        if not entry["authorized"]:
            entry["status"] = 200
            return web.Response(text=LOGIN_PAGE, content_type="text/html", charset="utf-8")
        entry["status"] = 200
        headers = {}
        if "/download/" in request.path:
            headers["Content-Disposition"] = f'attachment; filename="{hosted.meta["name"]}"'
        return web.Response(
            body=hosted.data,
            content_type=hosted.serve_mimetype or hosted.meta["mimetype"],
            headers=headers,
        )

    # ------------------------------------------------------------------ Socket Mode

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if self.single_use_tickets:
            if ticket not in self._tickets:
                return web.Response(status=401, text="invalid ticket")
            self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.socket_connections += 1
        sock = _Socket(
            ws=ws, request=request, number=self.socket_connections, opened_at=time.monotonic()
        )
        self._sockets.append(sock)
        self._notify_sockets()
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": len(self._sockets),
                    "debug_info": {
                        "host": f"applink-fake-{sock.number}",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
        )
        try:
            async for frame in ws:
                if frame.type == aiohttp.WSMsgType.TEXT:
                    self._on_socket_text(frame.data)
        finally:
            if sock in self._sockets:
                self._sockets.remove(sock)
            self._notify_sockets()
        return ws

    def _on_socket_text(self, data: str) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            self.socket_messages.append(data)
            return
        self.socket_messages.append(msg)
        env_id = msg.get("envelope_id") if isinstance(msg, dict) else None
        if not env_id:
            return
        if env_id in self.acks:
            self.duplicate_acks.append(msg)
            return
        self.acks[env_id] = msg
        if env_id in self._sent_at:
            self.ack_latency[env_id] = time.monotonic() - self._sent_at[env_id]
        ctx = self._envelope_ctx.get(env_id)
        if ctx is not None and isinstance(msg.get("payload"), dict) and msg["payload"]:
            self._apply_command_response(ctx, msg["payload"], via="ack")
        self._ack_event(env_id).set()

    def _ack_event(self, envelope_id: str) -> asyncio.Event:
        if envelope_id not in self._ack_events:
            self._ack_events[envelope_id] = asyncio.Event()
        return self._ack_events[envelope_id]

    async def wait_connected(self, timeout: float = 5.0, *, connections: int | None = None) -> None:  # noqa: ASYNC109
        """Wait for an open socket (and, if given, ``socket_connections >= connections``)."""

        def ready() -> bool:
            return bool(self._sockets) and (
                connections is None or self.socket_connections >= connections
            )

        if not await self._wait_for(ready, timeout):
            raise TimeoutError(
                f"no Socket Mode connection (open={len(self._sockets)}, "
                f"total={self.socket_connections}, wanted={connections})"
            )

    async def _wait_for(self, predicate: Any, seconds: float) -> bool:
        """Wait until ``predicate()`` holds, re-checking whenever a socket opens or closes."""
        deadline = time.monotonic() + seconds
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            changed = self._sockets_changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await changed.wait()
        return True

    def _notify_sockets(self) -> None:
        self._sockets_changed.set()
        self._sockets_changed = asyncio.Event()

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict:  # noqa: ASYNC109
        """The client's ack frame for ``envelope_id`` (raises TimeoutError)."""
        if envelope_id not in self.acks:
            async with asyncio.timeout(timeout):
                await self._ack_event(envelope_id).wait()
        return self.acks[envelope_id]

    async def _send_envelope(
        self,
        type_: str,
        payload: dict,
        *,
        accepts_response_payload: bool,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        ctx: dict | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> str:
        await self.wait_connected(timeout)
        sock = self._sockets[-1]
        env_id = P.new_envelope_id()
        envelope: dict[str, Any] = {
            "envelope_id": env_id,
            "payload": payload,
            "type": type_,
            "accepts_response_payload": accepts_response_payload,
        }
        if type_ == "events_api":
            envelope["retry_attempt"] = retry_attempt or 0
            envelope["retry_reason"] = retry_reason or ""
        self.envelopes[env_id] = envelope
        if ctx is not None:
            self._envelope_ctx[env_id] = ctx
        self._ack_event(env_id)
        self._sent_at[env_id] = time.monotonic()
        await sock.ws.send_str(json.dumps(envelope))
        return env_id

    def build_event_callback(self, event: dict, *, event_id: str | None = None) -> dict:
        """Wrap an inner event with this workspace's ids (no-op for a full callback)."""
        if event.get("type") in ("event_callback", "url_verification"):
            body = dict(event)
            if event_id:
                body["event_id"] = event_id
            return body
        return P.event_callback(
            event,
            team_id=self.team_id,
            api_app_id=self.app_id,
            bot_user_id=self.bot_user_id,
            event_id=event_id,
        )

    async def send_event(
        self,
        event: dict,
        *,
        event_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> str:
        """Push an ``events_api`` envelope; returns its envelope_id (see ``wait_ack``).

        ``event`` is an inner event (``slack_payloads.app_mention(...)``) or a full
        ``event_callback`` body.  Reuse ``event_id`` with ``retry_attempt`` to model a retry.
        """
        body = self.build_event_callback(event, event_id=event_id)
        self.record_event(body.get("event") or {})
        return await self._send_envelope(
            "events_api",
            body,
            accepts_response_payload=False,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
            timeout=timeout,
        )

    def new_response_url(self, *, channel_id: str, user_id: str, kind: str = "commands") -> str:
        n = len(self._response_urls) + 1
        key = secrets.token_urlsafe(18)
        url = f"{self.url}/{kind}/{self.team_id}/{n}/{key}"
        self._response_urls[key] = {
            "channel_id": channel_id,
            "user_id": user_id,
            "uses": 0,
            "created": time.monotonic(),
        }
        return url

    def register_trigger(self, trigger_id: str) -> None:
        self._triggers[trigger_id] = time.monotonic()

    def build_slash_command(
        self,
        command: str,
        text: str = "",
        user_id: str = P.USER_ID,
        channel_id: str = P.CHANNEL_ID,
        **fields: Any,
    ) -> dict[str, str]:
        """Slash-command fields with a live response_url and trigger_id of this fake."""
        ch = self.channels.get(channel_id) or {}
        user = self.users.get(user_id) or {}
        payload = P.slash_command(
            command,
            text,
            user_id=user_id,
            user_name=fields.pop("user_name", user.get("name", "user")),
            channel_id=channel_id,
            channel_name=fields.pop("channel_name", ch.get("name", "directmessage")),
            team_id=self.team_id,
            team_domain=self.team_domain,
            api_app_id=self.app_id,
            response_url=fields.pop("response_url", None)
            or self.new_response_url(channel_id=channel_id, user_id=user_id),
            **fields,
        )
        self.register_trigger(payload["trigger_id"])
        return payload

    async def send_slash_command(
        self,
        command: str,
        text: str = "",
        user_id: str = P.USER_ID,
        channel_id: str = P.CHANNEL_ID,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
        **fields: Any,
    ) -> str:
        """Push a ``slash_commands`` envelope; the ack payload / response_url posts are recorded."""
        payload = self.build_slash_command(command, text, user_id, channel_id, **fields)
        ctx = {"channel_id": channel_id, "user_id": user_id, "command": payload["command"]}
        return await self._send_envelope(
            "slash_commands", payload, accepts_response_payload=True, ctx=ctx, timeout=timeout
        )

    async def send_interactive(self, payload: dict, *, timeout: float = 5.0) -> str:  # noqa: ASYNC109
        """Push an ``interactive`` envelope (message shortcut, view_submission, block_actions…).

        A ``response_url`` in the payload is replaced by a live one of this fake, and its
        ``trigger_id`` becomes valid for views.open for ``trigger_ttl`` seconds.
        """
        payload = self._prepare_interactive(payload)
        accepts = payload.get("type") in ("view_submission", "block_suggestion")
        return await self._send_envelope(
            "interactive", payload, accepts_response_payload=accepts, timeout=timeout
        )

    def _prepare_interactive(self, payload: dict) -> dict:
        payload = json.loads(json.dumps(payload))
        if payload.get("trigger_id"):
            self.register_trigger(payload["trigger_id"])
        if "response_url" in payload:
            channel = (payload.get("channel") or {}).get("id", "")
            user = (payload.get("user") or {}).get("id", "")
            payload["response_url"] = self.new_response_url(
                channel_id=channel, user_id=user, kind="actions"
            )
        return payload

    async def disconnect_socket(
        self,
        reason: str = "refresh_requested",
        *,
        send_message: bool = True,
        close: bool = True,
        abort: bool = False,
        grace: float = 2.0,
    ) -> None:
        """Tell every open connection to go away and/or drop it.

        ``send_message``: send ``{"type": "disconnect", "reason": reason}`` first.  Like Slack,
        the old connection then stays open until the client has opened a new one (at most
        ``grace`` seconds) and is closed after that (``close``).  ``send_message=False``
        closes at once (the client sees a CLOSE frame); ``abort=True`` cuts the TCP
        connection without a close frame (the client only notices through ping/pong).
        """
        for sock in list(self._sockets):
            if send_message:
                with contextlib.suppress(Exception):
                    await sock.ws.send_str(
                        json.dumps(
                            {
                                "type": "disconnect",
                                "reason": reason,
                                "debug_info": {"host": f"applink-fake-{sock.number}"},
                            }
                        )
                    )
                if close or abort:
                    newer = sock.number
                    await self._wait_for(
                        lambda n=newer: any(s.number > n for s in self._sockets), grace
                    )
            if abort and sock.request.transport is not None:
                sock.request.transport.abort()
            elif close:
                await sock.ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)
            if (abort or close) and sock in self._sockets:
                self._sockets.remove(sock)

    # ------------------------------------------------------------------ response_url / command replies

    async def _response_url(self, request: web.Request) -> web.Response:
        ctx = self._response_urls.get(request.match_info["key"])
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = dict(parse_qsl(raw.decode("utf-8", "replace")))
            if "payload" in body:
                body = json.loads(body["payload"])
        record = {"url": str(request.url), "body": body, "status": 200}
        self.response_url_posts.append(record)
        if ctx is None:
            record["status"] = 404
            return web.Response(status=404, text="invalid_token")
        ctx["uses"] += 1
        if time.monotonic() - ctx["created"] > RESPONSE_URL_TTL:
            record["status"] = 404
            return web.Response(status=404, text="expired_url")
        if ctx["uses"] > RESPONSE_URL_USES:
            record["status"] = 404
            return web.Response(status=404, text="used_url")
        if not any(body.get(k) for k in ("text", "blocks", "attachments", "delete_original")):
            record["status"] = 400
            return web.Response(status=400, text="no_text")
        self._apply_command_response(ctx, body, via="response_url")
        return web.Response(text="ok", content_type="text/plain")

    def _apply_command_response(self, ctx: dict, body: dict, *, via: str) -> None:
        channel = ctx.get("channel_id") or ""
        if body.get("response_type") == "in_channel" and channel:
            self._channel(channel)
            msg = self._new_bot_message(
                channel, text=body.get("text") or "", thread_ts=body.get("thread_ts")
            )
            for key in ("blocks", "attachments"):
                if key in body:
                    msg[key] = body[key]
        else:
            self.ephemeral.append(
                {
                    "via": via,
                    "channel": channel,
                    "user": ctx.get("user_id"),
                    "text": body.get("text") or "",
                    "blocks": body.get("blocks"),
                    "thread_ts": body.get("thread_ts"),
                    "body": body,
                }
            )

    # ------------------------------------------------------------------ incoming user messages

    def record_event(self, event: dict) -> None:
        """Apply an inner event to the channel history (send_event/deliver_http do this):
        user/bot messages are stored, ``message_changed`` edits, ``message_deleted`` removes."""
        if not isinstance(event, dict):
            return
        etype, subtype = event.get("type"), event.get("subtype")
        channel = event.get("channel")
        if not channel or not isinstance(channel, str):
            return
        if etype in ("message", "app_mention") and subtype in (
            None,
            "file_share",
            "thread_broadcast",
            "bot_message",
        ):
            self._record_user_message(event)
        elif etype == "message" and subtype == "message_changed":
            new = event.get("message") or {}
            stored = self.find_message(channel, new.get("ts", ""))
            if stored is not None:
                stored.setdefault("edits", []).append(
                    {"text": stored.get("text"), "blocks": stored.get("blocks")}
                )
                stored.update({k: v for k, v in new.items() if k not in _INTERNAL_KEYS})
        elif etype == "message" and subtype == "message_deleted":
            stored = self.find_message(channel, event.get("deleted_ts", ""))
            if stored is not None:
                self.messages[channel].remove(stored)
                self.deleted_messages.append(stored)

    def _record_user_message(self, event: dict) -> dict:
        channel = event["channel"]
        if channel not in self.channels and self.auto_create_channels:
            with contextlib.suppress(SlackError):
                self._channel(channel)
        existing = self.find_message(channel, event["ts"])
        if existing is not None:
            return existing
        msg = {
            k: v
            for k, v in event.items()
            if k not in ("event_ts", "channel_type") and not (k == "type" and v == "app_mention")
        }
        msg["type"] = "message"
        msg["channel"] = channel
        self.messages[channel].append(msg)
        self.messages[channel].sort(key=lambda m: m["ts"])
        return msg

    # ------------------------------------------------------------------ HTTP Events API delivery

    def _encode_http_body(self, payload: dict | str | bytes) -> tuple[bytes, str]:
        if isinstance(payload, bytes):
            ctype = (
                "application/json" if payload[:1] == b"{" else "application/x-www-form-urlencoded"
            )
            return payload, ctype
        if isinstance(payload, str):
            ctype = (
                "application/json" if payload[:1] == "{" else "application/x-www-form-urlencoded"
            )
            return payload.encode(), ctype
        if "command" in payload and "response_url" in payload:
            return urlencode(payload).encode(), "application/x-www-form-urlencoded"
        if payload.get("type") in _INTERACTIVE_TYPES:
            body = "payload=" + quote(json.dumps(self._prepare_interactive(payload)))
            return body.encode(), "application/x-www-form-urlencoded"
        body_dict = self.build_event_callback(payload)
        self.record_event(body_dict.get("event") or {})
        return json.dumps(body_dict).encode(), "application/json"

    async def deliver_http(
        self,
        url: str,
        payload: dict | str | bytes,
        *,
        sign: bool = True,
        bad_signature: bool = False,
        timestamp: float | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> tuple[int, str]:
        """POST a signed request to an app on loopback; returns ``(status, body)``.

        ``payload``: an inner event or event_callback dict (JSON), slash-command fields
        (form), an interactive payload (``payload=`` form) or a pre-encoded body.
        """
        assert self._session is not None, "FakeSlack is not started"
        body, ctype = self._encode_http_body(payload)
        ts = str(int(time.time() if timestamp is None else timestamp))
        headers = {
            "Content-Type": ctype,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        if sign:
            secret = self.signing_secret + ("-wrong" if bad_signature else "")
            headers["X-Slack-Request-Timestamp"] = ts
            headers["X-Slack-Signature"] = sign_v0(secret, ts, body)
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
        if retry_reason is not None:
            headers["X-Slack-Retry-Reason"] = retry_reason
        started = time.monotonic()
        async with self._session.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            text = await resp.text()
            status = resp.status
        self.http_deliveries.append(
            {
                "url": url,
                "status": status,
                "body": text,
                "latency": time.monotonic() - started,
                "headers": headers,
                "request_body": body,
            }
        )
        return status, text
