"""Loopback fake of Discord (REST v10 + gateway websocket + CDN) for wire tests.

Drive it with the REAL discord.py 2.7.1 client::

    async with FakeDiscord(token="test-token", message_content=True) as dc:
        discord.http.Route.BASE = dc.api_url                                  # REST, webhooks, followups
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(dc.gateway_url)
        client = discord.Client(intents=..., guild_ready_timeout=0.05)
        task = asyncio.create_task(client.start("test-token"))
        await client.wait_until_ready()
        msg = await dc.send_message_create(dc.text_channel["id"], dc.member, "hi <@BOT>")
        ...
        await client.close()

Both seams are class attributes: restore them afterwards. One aiohttp server on
127.0.0.1 (random port) serves ``/api/v10/...`` (REST), ``/gateway`` (websocket; READY
points ``resume_gateway_url`` at ``/resume-gateway`` on the same server so a test can tell a
RESUME connection from a fresh one) and ``/cdn/...`` + ``/media/...`` (attachment bytes).

What is modelled
  * World: application + bot user (application id == bot user id, like modern apps), guilds
    with @everyone/managed bot role/extra roles, text channels (with permission overwrites),
    public/private threads with thread members, DM channels, members whose permissions are
    computed the Discord way (owner, ADMINISTRATOR, @everyone, roles, channel overwrites;
    threads use their parent's overwrites).
  * Gateway: JSON encoding; ``compress=zlib-stream`` (what discord.py asks for when no zstd
    library is installed - this venv) is honoured with one zlib context per connection and
    Z_SYNC_FLUSH-terminated binary frames; ``zstd-stream`` falls back to plain text frames
    (discord.py decodes text frames without decompressing). HELLO (configurable interval),
    HEARTBEAT -> ACK, IDENTIFY -> READY + GUILD_CREATE per guild (members list reduced to the
    bot unless GUILD_MEMBERS is identified), RESUME -> missed events replayed by ``seq`` then
    RESUMED, INVALID_SESSION for unknown/invalidated sessions, RECONNECT on request,
    REQUEST_GUILD_MEMBERS -> GUILD_MEMBERS_CHUNK. Close codes 4001/4002/4003/4004/4005/4010/
    4012/4013/4014 for the matching mistakes (4014 when a privileged intent is identified
    but not granted to the application). Shard routing ``(guild_id >> 22) % num_shards``
    when IDENTIFY carries ``shard``. Intent filtering of GUILD_*/MESSAGE_* events and the
    MESSAGE_CONTENT rule (content, embeds, attachments, components, poll emptied unless the
    message is from the bot, in a DM, or mentions the bot).
  * The bot's own REST-created messages, edits and deletions come back as MESSAGE_CREATE /
    MESSAGE_UPDATE / MESSAGE_DELETE (as on real Discord - a bot must ignore its own
    messages), thread creation as THREAD_CREATE, world changes made after connect as
    CHANNEL_CREATE / THREAD_CREATE / GUILD_CREATE / GUILD_MEMBER_ADD.
  * REST: ``Authorization: Bot <token>`` (401 otherwise; webhook-token and interaction
    callback routes need none), the routes listed in ``_build_routes``, validation with
    Discord's error codes (50035 Invalid Form Body with a nested ``errors`` tree, 50006
    empty message, 40005 request entity too large -> HTTP 413, 50013/50001 permissions (message
    history: the list is empty without Read Message History, one message 403 50013; both 403
    50001 without View Channel),
    10003/10008/10015/10062 unknown objects, 40060 interaction already acknowledged, 50027
    invalid webhook token, 160004 thread already created, voice message rules 50159-50161),
    ``application/json`` without charset (discord.py only parses JSON when the content type
    is exactly that), ``Via`` header (discord.py treats a 429 without ``Via`` as a
    Cloudflare ban and raises).
  * Rate limits: every route has a bucket (``X-RateLimit-Limit/Remaining/Reset/Reset-After/
    Bucket`` headers; generous default 50/s), keyed by the major parameter (channel, guild,
    webhook id+token); ``rate_limit_next`` forces 429s; ``enable_message_rate_limit`` turns
    on a shared per-channel bucket for POST/PATCH messages (default 5 per 5 s).
  * Interactions: 3 s acknowledgement window (``interaction_deadline``), 15 min token
    (``interaction_token_ttl``), callback types 4/5/6/7/8/9 (JSON and multipart,
    ``?with_response=1`` -> 200 InteractionCallbackResponse, else 204), followups and
    ``@original`` edits through ``/webhooks/{application_id}/{token}``; the first followup
    after a type-5 deferral edits the "thinking" message instead of posting a new one, and
    ephemeral messages never appear in ``dc.messages`` nor on the gateway.
  * CDN: attachments served with their bytes; declared size may lie; per-file failures;
    per-file 302 redirects (``cdn_redirect``, e.g. to another host).
  * Every REST request/response body is checked against the official OpenAPI document
    with ``testing/fakes/spec_check.py`` when available; problems land in
    ``dc.spec_problems`` (``dc.assert_spec_clean()`` raises if any).

What is NOT modelled
  * Voice gateway/UDP, stage/voice channels behaviour, presences (PRESENCE_UPDATE sent by the
    client is only recorded), typing events towards the bot, reactions events, polls,
    stickers, emojis, invites, audit log, bans/moderation, webhooks other than interaction
    webhooks, guild/channel editing beyond a few thread fields, forum tags.
  * Sharding beyond ``GET /gateway/bot`` numbers and per-shard event routing: no
    max_concurrency/identify rate limiting, no session_start_limit exhaustion, no
    "sharding required" closes; gateway send rate limit (120/60 s) not enforced; missing
    heartbeats are not punished (zombie connections are only simulated via
    ``ack_heartbeats = False``); sessions never time out on their own.
  * Global (50 req/s) and invalid-request (10 000 / 10 min) limits are not enforced, only
    forced via ``rate_limit_next(..., is_global=True)``; Cloudflare bans not modelled.
  * ETF encoding, zstd compression, the Components V2 validation rules, embed URL
    unfurling, message search, archived-thread listing, auto-archiving over time, slowmode,
    automod, application command permissions v2, localisation, entitlements.
  * Exact error bodies where Discord is inconsistent: field-level error codes are plausible
    (``BASE_TYPE_MAX_LENGTH`` ...), not byte-for-byte captures.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import mimetypes
import os
import re
import secrets
import socket
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import quote, unquote

from aiohttp import WSMsgType, web

from . import discord_payloads as P
from .discord_payloads import (
    AppFlag,
    CallbackType,
    ChannelType,
    Intent,
    InteractionType,
    MsgFlag,
    MsgType,
    OptionType,
    Perm,
)

__all__ = ["ApiError", "Call", "CdnFile", "FakeDiscord", "GatewaySession", "Upload"]

#: resolved by ``spec_check.load_spec`` relative to ``testing/specs``
DEFAULT_SPEC = os.environ.get("DISCORD_OPENAPI_SPEC", "discord-openapi.json")

API_PREFIX = "/api/v10"
MAX_CONTENT = 2000
MAX_FILES = 10
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000

# Message flags a client may set when creating/editing a message.
_SETTABLE_FLAGS = (
    (1 << 2)  # SUPPRESS_EMBEDS
    | MsgFlag.EPHEMERAL
    | MsgFlag.SUPPRESS_NOTIFICATIONS
    | MsgFlag.IS_VOICE_MESSAGE
    | (1 << 15)  # IS_COMPONENTS_V2
)
_INTERNAL_MSG_KEYS = frozenset({"edits"})

_PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
_MENTION_RE = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION_RE = re.compile(r"<@&(\d+)>")


# ---------------------------------------------------------------------------
# Small records
# ---------------------------------------------------------------------------
class ApiError(Exception):
    """Raised inside handlers; becomes an HTTP error response with a Discord error body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = body


def _unknown(code: int, what: str, status: int = 404) -> ApiError:
    return ApiError(status, P.error(code, f"Unknown {what}"))


_MISSING_PERMS = ApiError(403, P.error(50013, "Missing Permissions"))
_MISSING_ACCESS = ApiError(403, P.error(50001, "Missing Access"))


class Call(NamedTuple):
    """One REST request as the fake saw it (``method, path, json`` unpack first)."""

    method: str
    path: str  # relative to the API base, e.g. "/channels/1/messages"
    json: Any  # parsed JSON body, or the ``payload_json`` of a multipart body
    status: int
    route: str  # route template, e.g. "/channels/{channel_id}/messages"
    query: dict[str, str]
    files: list[tuple[str, str, int]]  # (form field, filename, byte count)
    at: float


@dataclass
class Upload:
    field: str
    filename: str
    content_type: str | None
    data: bytes

    @property
    def index(self) -> int | None:
        m = re.fullmatch(r"files\[(\d+)\]", self.field)
        return int(m.group(1)) if m else None


@dataclass
class CdnFile:
    data: bytes
    content_type: str | None
    filename: str
    fail_status: int | None = None
    hits: int = 0
    redirect_to: str | None = None


@dataclass
class _Bucket:
    name: str
    limit: int
    window: float
    count: int = 0
    reset_at: float = 0.0

    @property
    def hash(self) -> str:
        return hashlib.sha1(self.name.encode()).hexdigest()[:32]


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    request: web.Request
    path: str
    compress: str | None
    compressor: Any = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: GatewaySession | None = None
    closed: bool = False

    async def send(self, frame: dict[str, Any]) -> None:
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        if self.closed or self.ws.closed:
            raise ConnectionResetError("gateway connection closed")
        if self.compressor is not None:
            data = self.compressor.compress(text.encode()) + self.compressor.flush(
                zlib.Z_SYNC_FLUSH
            )
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(text)


@dataclass(eq=False)
class GatewaySession:
    id: str
    intents: int
    shard: tuple[int, int]
    identify: dict[str, Any]
    seq: int = 0
    buffer: list[dict[str, Any]] = field(default_factory=list)
    conn: _Conn | None = None
    invalid: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def has(self, intent: int) -> bool:
        return bool(self.intents & intent)


@dataclass
class _Guild:
    data: dict[str, Any]
    roles: dict[str, dict[str, Any]]
    members: dict[str, dict[str, Any]]  # user_id -> member (with "user")
    commands_scope: bool = True

    @property
    def id(self) -> str:
        return self.data["id"]


@dataclass
class _Interaction:
    id: str
    token: str
    type: int
    payload: dict[str, Any]
    channel_id: str
    guild_id: str | None
    user: dict[str, Any]
    created: float
    command_name: str | None = None
    command_type: int | None = None
    message_id: str | None = None  # component interactions: the message the component is on
    triggered_by: str | None = None  # modal submits: the interaction answered with the modal
    response_type: int | None = None
    original_message_id: str | None = None
    loading_pending: bool = False
    ack_expired: bool = False
    token_expired: bool = False


@dataclass
class _Req:
    method: str
    path: str
    route: str
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    files: list[Upload]
    content_type: str
    request: web.Request


@dataclass
class _Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Callable[[_Req], Any]
    auth: bool = True


# ---------------------------------------------------------------------------
# spec checker (optional)
# ---------------------------------------------------------------------------
#: Gateway events whose ``d`` is a REST object the spec describes.
_EVENT_SCHEMAS = {
    "MESSAGE_CREATE": "MessageResponse",
    "MESSAGE_UPDATE": "MessageResponse",
    "THREAD_CREATE": "ThreadResponse",
    "THREAD_UPDATE": "ThreadResponse",
    "CHANNEL_CREATE": "GuildChannelResponse",
}

#: The spec types field-level error codes (``errors.<field>._errors[].code``) as integers;
#: Discord sends strings such as "BASE_TYPE_MAX_LENGTH" (developer docs, "Error Messages"
#: example). The fake stays realistic and files these under ``dc.spec_deviations``.
_KNOWN_SPEC_DEVIATION = re.compile(
    r"\$\.errors\..*_errors'?\]?\[\d+\]\.code: '.*' is not of type 'integer'"
)


def _number_components(components: list[Any]) -> list[Any]:
    """Copy of ``components`` where every component has an ``id`` (Discord numbers them 1..n
    in tree order, keeping ids the app chose)."""
    out = json.loads(json.dumps(components))
    used: set[int] = set()

    def walk(nodes: list[Any], visit: Callable[[dict[str, Any]], None]) -> None:
        for node in nodes:
            if isinstance(node, dict):
                visit(node)
                for key in ("components", "items"):
                    if isinstance(node.get(key), list):
                        walk(node[key], visit)
                for key in ("accessory", "component"):
                    if isinstance(node.get(key), dict):
                        walk([node[key]], visit)

    walk(out, lambda n: used.add(n["id"]) if isinstance(n.get("id"), int) else None)
    counter = iter(i for i in range(1, 1 << 30) if i not in used)

    def assign(node: dict[str, Any]) -> None:
        if not isinstance(node.get("id"), int):
            node["id"] = next(counter)

    walk(out, assign)
    return out


def _stringify_snowflakes(node: Any, key: str = "") -> Any:
    """Integer snowflakes -> strings before checking a request against the spec.

    The spec types every id as a decimal string, Discord also accepts JSON integers, and
    discord.py sends integers (``message_reference.message_id``, new attachment ``id`` 0..9,
    ``allowed_mentions.users``...). Not a client bug, so not reported.
    """
    idish = key == "id" or key.endswith(("_id", "_ids")) or key in ("users", "roles")
    if isinstance(node, dict):
        return {k: _stringify_snowflakes(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_stringify_snowflakes(v, key if idish else "") for v in node]
    if idish and isinstance(node, int) and not isinstance(node, bool):
        return str(node)
    return node


_spec_cache: dict[str, Any] = {}


def _load_spec(path: str) -> tuple[Any, str | None]:
    if path in _spec_cache:
        return _spec_cache[path]
    from . import spec_check

    result = (spec_check.load_spec(path), None)
    _spec_cache[path] = result
    return result


# ---------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------
class FakeDiscord:
    """A loopback Discord. See the module docstring for scope."""

    def __init__(
        self,
        token: str = "test-token",
        *,
        message_content: bool = False,
        members_intent: bool = False,
        presences_intent: bool = False,
        verified: bool = False,
        heartbeat_interval: int = 41250,
        upload_limit: int = 10 * 1024 * 1024,
        interaction_deadline: float = 3.0,
        interaction_token_ttl: float = 15 * 60,
        shards: int = 1,
        default_rate_limit: tuple[int, float] = (50, 1.0),
        spec_path: str | None = DEFAULT_SPEC,
        echo_own_messages: bool = True,
    ) -> None:
        self.token = token
        #: privileged intents switched on for the application in the developer portal
        self.message_content = message_content
        self.members_intent = members_intent
        self.presences_intent = presences_intent
        #: verified apps (>100 guilds) get the full flag bits, others the ``*_LIMITED`` ones
        self.verified = verified
        self.heartbeat_interval = heartbeat_interval
        self.upload_limit = upload_limit
        self.interaction_deadline = interaction_deadline
        self.interaction_token_ttl = interaction_token_ttl
        self.shards = shards
        self.default_rate_limit = default_rate_limit
        self.message_rate_limit: tuple[int, float] | None = None
        self.echo_own_messages = echo_own_messages
        self.ack_heartbeats = True

        self._snowflake = P.SnowflakeGen(worker=3)
        self._base: str | None = None
        self._runner: web.AppRunner | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._outbox: asyncio.Queue[tuple[str, Callable[..., Any], asyncio.Future[None]]] | None = (
            None
        )

        # --- state a test reads -----------------------------------------------------------
        self.users: dict[str, dict[str, Any]] = {}
        self.guilds: dict[str, _Guild] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.threads: dict[str, dict[str, Any]] = {}
        self.thread_members: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.message_index: dict[str, dict[str, Any]] = {}
        self.ephemeral_messages: list[dict[str, Any]] = []
        self.deleted_messages: list[dict[str, Any]] = []
        self.typing: dict[str, list[float]] = defaultdict(list)
        self.history_reads: list[str] = []  # channel ids of GET /channels/{id}/messages calls
        self.interactions: dict[str, dict[str, Any]] = {}
        self.interaction_responses: dict[str, dict[str, Any]] = {}
        self.followups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.commands: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
        self.command_syncs: list[dict[str, Any]] = []
        self.calls: list[Call] = []
        self.cdn: dict[str, CdnFile] = {}
        self.attachments: dict[str, dict[str, Any]] = {}  # every attachment dict ever made
        self.sessions: dict[str, GatewaySession] = {}
        self.gateway_connections: list[dict[str, Any]] = []
        self.gateway_received: list[dict[str, Any]] = []
        self.identify_payloads: list[dict[str, Any]] = []
        self.presence_updates: list[dict[str, Any]] = []
        self.identify_count = 0
        self.resume_count = 0
        self.heartbeat_count = 0
        self.rate_limited_count = 0
        self.spec_problems: list[str] = []
        self.spec_deviations: list[str] = []  # known spec-vs-Discord differences, not bugs
        self.internal_errors: list[str] = []  # exceptions inside the fake's handlers
        self.app_edits: list[dict[str, Any]] = []

        self._interactions: dict[str, _Interaction] = {}
        self._tokens: dict[str, str] = {}  # interaction token -> interaction id
        self._conns: set[_Conn] = set()
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._forced_429: list[dict[str, Any]] = []
        self._nonces: dict[tuple[str, str], str] = {}
        self._dm_by_user: dict[str, str] = {}
        self._routes = self._build_routes()
        self._spec, self.spec_error = (
            (None, "disabled") if spec_path is None else _load_spec(spec_path)
        )

        self._build_default_world()

    # =====================================================================================
    # lifecycle
    # =====================================================================================
    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application(client_max_size=512 * 1024 * 1024)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._api)
        for path in ("/gateway", "/gateway/", "/resume-gateway", "/resume-gateway/"):
            app.router.add_get(path, self._gateway)
        for prefix in ("/cdn", "/media"):
            app.router.add_route(
                "GET",
                prefix + "/attachments/{channel_id}/{attachment_id}/{filename}",
                self._cdn_get,
            )
            app.router.add_route(
                "HEAD",
                prefix + "/attachments/{channel_id}/{attachment_id}/{filename}",
                self._cdn_get,
            )
        # Asset.BASE-style images (set ``discord.asset.Asset.BASE = dc.cdn_url`` to use them)
        app.router.add_get("/cdn/{kind:embed/avatars|avatars|icons}/{tail:.*}", self._cdn_image)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()
        self._base = f"http://127.0.0.1:{port}"
        self._outbox = asyncio.Queue()
        self._pump_task = asyncio.create_task(self._pump(), name="fake-discord-pump")

    async def close(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
            self._pump_task = None
        for conn in list(self._conns):
            conn.closed = True
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"server shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- URLs ------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._base is None:
            raise RuntimeError("FakeDiscord is not started (use `async with FakeDiscord() as dc`)")
        return self._base

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/gateway"

    @property
    def resume_gateway_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/resume-gateway"

    @property
    def cdn_url(self) -> str:
        return self.base_url + "/cdn"

    @property
    def media_url(self) -> str:
        return self.base_url + "/media"

    # =====================================================================================
    # world
    # =====================================================================================
    def _build_default_world(self) -> None:
        self.application_id = self._snowflake()
        self.bot_user = P.user(self.application_id, "switchboard", bot=True, global_name=None)
        self.users[self.application_id] = self.bot_user
        self.owner = self.add_user("owner", global_name="Server Owner")
        self.application_name = "Switchboard (fake)"
        self.application_description = "Fake application for wire tests"

        self.guild = self.add_guild("Test Guild", owner=self.owner)
        gid = self.guild["id"]
        g = self.guilds[gid]
        self.bot_role = next(r for r in g.roles.values() if r.get("tags", {}).get("bot_id"))
        self.admin_role = self.add_role("Admin", Perm.MANAGE_GUILD, guild_id=gid)
        self.manager_role = self.add_role("Channel Manager", Perm.MANAGE_CHANNELS, guild_id=gid)

        self.admin = self.add_member(username="admin", roles=[self.admin_role["id"]], guild_id=gid)
        self.member = self.add_member(username="member", guild_id=gid)
        self.manager = self.add_member(
            username="manager", roles=[self.manager_role["id"]], guild_id=gid
        )
        self.text_channel = self.add_channel("general", guild_id=gid)
        self.guild["system_channel_id"] = self.text_channel["id"]
        self.thread = self.add_thread(self.text_channel, "existing-thread", owner=self.member)
        self.dm = self.dm_channel(self.member)

    def add_user(self, username: str, *, bot: bool = False, global_name: str | None = None) -> dict:
        uid = self._snowflake()
        user = P.user(uid, username, bot=bot, global_name=global_name)
        self.users[uid] = user
        return user

    def add_guild(self, name: str, *, owner: dict | str | None = None) -> dict[str, Any]:
        """A guild with @everyone, the managed bot role and the bot + owner as members."""
        gid = self._snowflake()
        owner_user = self._user(owner) if owner is not None else self.owner
        data = P.guild(gid, name, owner_id=owner_user["id"])
        everyone = P.role(gid, "@everyone", Perm.EVERYONE_DEFAULT, position=0)
        bot_role = P.role(
            self._snowflake(),
            self.bot_user["username"],
            Perm.BOT_DEFAULT,
            position=1,
            managed=True,
            bot_id=self.application_id,
        )
        g = _Guild(data=data, roles={gid: everyone, bot_role["id"]: bot_role}, members={})
        self.guilds[gid] = g
        g.members[self.application_id] = P.member(self.bot_user, [bot_role["id"]])
        g.members[owner_user["id"]] = P.member(owner_user, [])
        if self._outbox is not None:
            self._emit_nowait("GUILD_CREATE", lambda s: self._guild_create(g, s), guild_id=gid)
        return data

    def add_role(self, name: str, permissions: int, *, guild_id: str | None = None) -> dict:
        g = self._guild(guild_id)
        role = P.role(self._snowflake(), name, permissions, position=len(g.roles))
        g.roles[role["id"]] = role
        return role

    def add_member(
        self,
        user: dict | str | None = None,
        *,
        username: str | None = None,
        permissions: int | None = None,
        roles: Iterable[str] = (),
        guild_id: str | None = None,
        nick: str | None = None,
    ) -> dict[str, Any]:
        """Add a member (creating the user unless given); returns the USER dict.

        ``permissions`` creates a dedicated role with exactly those bits (on top of
        @everyone) and assigns it.
        """
        g = self._guild(guild_id)
        if user is None:
            user_obj = self.add_user(username or f"user{len(self.users)}")
        else:
            user_obj = self._user(user)
        role_ids = [str(r) for r in roles]
        if permissions is not None:
            role = self.add_role(f"perms-{user_obj['username']}", permissions, guild_id=g.id)
            role_ids.append(role["id"])
        g.members[user_obj["id"]] = P.member(user_obj, role_ids, nick=nick)
        if self._outbox is not None:
            data = dict(g.members[user_obj["id"]], guild_id=g.id)
            self._emit_nowait(
                "GUILD_MEMBER_ADD",
                lambda s: data if s.has(Intent.GUILD_MEMBERS) else None,
                guild_id=g.id,
            )
        return user_obj

    def set_bot_permissions(self, permissions: int, *, guild_id: str | None = None) -> None:
        """Replace the managed bot role's permission bits."""
        g = self._guild(guild_id)
        for role in g.roles.values():
            if role.get("tags", {}).get("bot_id") == self.application_id:
                role["permissions"] = str(permissions)

    def add_channel(
        self,
        name: str,
        *,
        guild_id: str | None = None,
        type: int = ChannelType.GUILD_TEXT,
        topic: str | None = None,
        overwrites: list[dict[str, Any]] | None = None,
        parent_id: str | None = None,
    ) -> dict[str, Any]:
        """A guild channel; ``overwrites`` are ``P.overwrite(...)`` dicts."""
        g = self._guild(guild_id)
        position = sum(1 for c in self.channels.values() if c.get("guild_id") == g.id)
        ch = P.text_channel(
            self._snowflake(),
            g.id,
            name,
            position=position,
            topic=topic,
            permission_overwrites=overwrites,
            parent_id=parent_id,
            type=type,
        )
        self.channels[ch["id"]] = ch
        if self._outbox is not None:
            self._emit_nowait("CHANNEL_CREATE", lambda s: dict(ch), guild_id=g.id)
        return ch

    def add_thread(
        self,
        parent: dict | str,
        name: str = "thread",
        *,
        owner: dict | str | None = None,
        type: int = ChannelType.PUBLIC_THREAD,
        archived: bool = False,
        locked: bool = False,
        members: Iterable[dict | str] = (),
        bot_joined: bool = True,
        id: str | None = None,
    ) -> dict[str, Any]:
        parent_ch = self._channel(parent)
        owner_user = self._user(owner) if owner is not None else self.bot_user
        th = P.thread_channel(
            id or self._snowflake(),
            parent_ch["guild_id"],
            parent_ch["id"],
            name,
            owner_id=owner_user["id"],
            type=type,
            archived=archived,
            locked=locked,
            auto_archive_duration=parent_ch.get("default_auto_archive_duration", 1440),
        )
        self.channels[th["id"]] = th
        self.threads[th["id"]] = th
        self._thread_join(th, owner_user["id"])
        if bot_joined:
            self._thread_join(th, self.application_id)
        for m in members:
            self._thread_join(th, self._user(m)["id"])
        if self._outbox is not None:
            self._emit_nowait(
                "THREAD_CREATE", lambda s: dict(th, newly_created=True), guild_id=th["guild_id"]
            )
        return th

    def dm_channel(self, user: dict | str) -> dict[str, Any]:
        """The DM channel between the bot and ``user`` (created on first use)."""
        u = self._user(user)
        cid = self._dm_by_user.get(u["id"])
        if cid is None:
            ch = P.dm_channel(self._snowflake(), u)
            self.channels[ch["id"]] = ch
            self._dm_by_user[u["id"]] = ch["id"]
            cid = ch["id"]
        return self.channels[cid]

    def add_attachment(
        self,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        *,
        duration_secs: float | None = None,
        waveform: bytes | str | None = None,
        declared_size: int | None = None,
        description: str | None = None,
        title: str | None = None,
        flags: int = 0,
        channel_id: str | None = None,
        ephemeral: bool = False,
    ) -> dict[str, Any]:
        """Store bytes on the CDN and return a wire attachment dict pointing at them.

        ``declared_size`` lets the ``size`` field lie (the CDN still serves ``data``).
        Voice messages: pass ``duration_secs`` and ``waveform`` (bytes or base64 string) and
        ``content_type="audio/ogg"``.
        """
        aid = self._snowflake()
        if content_type is None:
            content_type = mimetypes.guess_type(filename)[0]
        self.cdn[aid] = CdnFile(data=data, content_type=content_type, filename=filename)
        dims = P.image_size(data) if (content_type or "").startswith("image/") else None
        cid = channel_id or self.text_channel["id"]
        path = f"/attachments/{cid}/{aid}/{quote(filename)}"
        sig = (
            f"?ex={int(time.time()) + 86400:x}&is={int(time.time()):x}&hm={secrets.token_hex(32)}&"
        )
        if filename.startswith("SPOILER_"):
            flags |= 8
        att = P.attachment(
            aid,
            filename,
            size=len(data) if declared_size is None else declared_size,
            url=self.cdn_url + path + sig,
            proxy_url=self.media_url + path + sig,
            content_type=content_type,
            duration_secs=duration_secs,
            waveform=waveform,
            width=dims[0] if dims else None,
            height=dims[1] if dims else None,
            description=description,
            title=title,
            flags=flags,
            ephemeral=ephemeral,
        )
        self.attachments[aid] = att
        return att

    def cdn_redirect(self, attachment: dict | str, location: str | None) -> None:
        """Make the CDN answer 302 to ``location`` for this attachment (None restores it)."""
        aid = attachment["id"] if isinstance(attachment, dict) else str(attachment)
        self.cdn[aid].redirect_to = location

    def cdn_fail(self, attachment: dict | str, status: int | None = 404) -> None:
        """Make the CDN answer ``status`` for this attachment (None restores it)."""
        aid = attachment["id"] if isinstance(attachment, dict) else str(attachment)
        self.cdn[aid].fail_status = status

    @property
    def application(self) -> dict[str, Any]:
        app = P.application(
            self.application_id,
            self.application_name,
            bot_user=self.bot_user,
            owner=self.owner,
            flags=self.application_flags,
        )
        app["description"] = self.application_description
        return app

    @property
    def application_flags(self) -> int:
        flags = AppFlag.APPLICATION_COMMAND_BADGE if any(self.commands.values()) else 0
        for enabled, full, limited in (
            (
                self.message_content,
                AppFlag.GATEWAY_MESSAGE_CONTENT,
                AppFlag.GATEWAY_MESSAGE_CONTENT_LIMITED,
            ),
            (
                self.members_intent,
                AppFlag.GATEWAY_GUILD_MEMBERS,
                AppFlag.GATEWAY_GUILD_MEMBERS_LIMITED,
            ),
            (self.presences_intent, AppFlag.GATEWAY_PRESENCE, AppFlag.GATEWAY_PRESENCE_LIMITED),
        ):
            if enabled:
                flags |= full if self.verified else limited
        return flags

    @property
    def intents(self) -> int | None:
        """Intents of the latest IDENTIFY (None before the first)."""
        return self.identify_payloads[-1].get("intents") if self.identify_payloads else None

    # -- lookups -----------------------------------------------------------------------------
    def _user(self, user: dict | str | int) -> dict[str, Any]:
        uid = str(user["id"] if isinstance(user, dict) else user)
        try:
            return self.users[uid]
        except KeyError:
            raise KeyError(f"unknown user {uid}") from None

    def _guild(self, guild_id: str | None) -> _Guild:
        return self.guilds[str(guild_id) if guild_id else self.guild["id"]]

    def _channel(self, channel: dict | str | int) -> dict[str, Any]:
        cid = str(channel["id"] if isinstance(channel, dict) else channel)
        return self.channels[cid]

    def member_of(self, user: dict | str, guild_id: str | None = None) -> dict[str, Any] | None:
        return self._guild(guild_id).members.get(self._user(user)["id"])

    def permissions_for(
        self, user: dict | str, channel: dict | str | None = None, *, guild_id: str | None = None
    ) -> int:
        """Permission bits of ``user`` (in ``channel`` when given), computed like Discord."""
        uid = self._user(user)["id"]
        ch = self._channel(channel) if channel is not None else None
        if ch is not None and ch.get("guild_id") is None:  # DM
            return Perm.EVERYONE_DEFAULT & ~Perm.MANAGE_MESSAGES
        g = self._guild(ch["guild_id"] if ch else guild_id)
        if uid == g.data["owner_id"]:
            return Perm.ALL
        m = g.members.get(uid)
        if m is None:
            return 0
        base = int(g.roles[g.id]["permissions"])
        for rid in m["roles"]:
            if rid in g.roles:
                base |= int(g.roles[rid]["permissions"])
        if base & Perm.ADMINISTRATOR:
            return Perm.ALL
        if ch is None:
            return base
        if ch["type"] in ChannelType.THREADS:
            ch = self.channels.get(ch["parent_id"], ch)
        ows = {o["id"]: o for o in ch.get("permission_overwrites", [])}
        perms = base
        if g.id in ows:
            perms = (perms & ~int(ows[g.id]["deny"])) | int(ows[g.id]["allow"])
        allow = deny = 0
        for rid in m["roles"]:
            if rid in ows and ows[rid]["type"] == 0:
                allow |= int(ows[rid]["allow"])
                deny |= int(ows[rid]["deny"])
        perms = (perms & ~deny) | allow
        if uid in ows and ows[uid]["type"] == 1:
            perms = (perms & ~int(ows[uid]["deny"])) | int(ows[uid]["allow"])
        if not perms & Perm.VIEW_CHANNEL:
            return 0
        return perms

    def original_response(self, interaction: dict | str) -> dict[str, Any] | None:
        """The stored original-response message of an interaction (None before one exists)."""
        iid = str(interaction["id"] if isinstance(interaction, dict) else interaction)
        meta = self._interactions[iid]
        return self.message_index.get(meta.original_message_id or "")

    def expire_interaction(self, interaction: dict | str, *, token: bool = False) -> None:
        """Past the 3 s acknowledgement window (and, with ``token=True``, the 15 min token)."""
        iid = str(interaction["id"] if isinstance(interaction, dict) else interaction)
        meta = self._interactions[iid]
        meta.ack_expired = True
        meta.token_expired = meta.token_expired or token

    # =====================================================================================
    # rate limits
    # =====================================================================================
    def rate_limit_next(
        self,
        method: str,
        route_pattern: str,
        times: int = 1,
        retry_after: float = 0.05,
        *,
        is_global: bool = False,
        scope: str = "user",
    ) -> None:
        """Answer the next ``times`` matching requests with 429.

        ``route_pattern`` is a template as in the spec (``/channels/{channel_id}/messages/
        {message_id}``) or a concrete path relative to the API base; ``method`` may be "*".
        """
        self._forced_429.append(
            {
                "method": method.upper(),
                "pattern": route_pattern,
                "times": times,
                "retry_after": retry_after,
                "global": is_global,
                "scope": "global" if is_global else scope,
            }
        )

    def enable_message_rate_limit(self, limit: int = 5, per: float = 5.0) -> None:
        """Shared per-channel bucket for POST/PATCH messages (Discord's 5 per 5 s)."""
        self.message_rate_limit = (limit, per)
        for key in [k for k in self._buckets if k[0] == "message-write"]:
            del self._buckets[key]

    def disable_message_rate_limit(self) -> None:
        self.message_rate_limit = None

    def _bucket_for(self, req: _Req) -> _Bucket:
        p = req.params
        if (
            req.method in ("POST", "PATCH")
            and req.route
            in (
                "/channels/{channel_id}/messages",
                "/channels/{channel_id}/messages/{message_id}",
            )
            and self.message_rate_limit is not None
        ):
            name = "message-write"
            limit, window = self.message_rate_limit
        else:
            name = f"{req.method} {req.route}"
            limit, window = self.default_rate_limit
        if "channel_id" in p:
            major = p["channel_id"]
        elif "guild_id" in p:
            major = p["guild_id"]
        elif "webhook_id" in p:
            major = p["webhook_id"] + "+" + p.get("webhook_token", "")
        elif "interaction_id" in p:
            major = p["interaction_id"] + "+" + p.get("interaction_token", "")
        else:
            major = ""
        key = (name, major)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(name=name, limit=limit, window=window)
        return bucket

    @staticmethod
    def _rl_headers(bucket: _Bucket, now: float) -> dict[str, str]:
        reset_after = max(bucket.reset_at - now, 0.0)
        return {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(max(bucket.limit - bucket.count, 0)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket.hash,
        }

    def _forced(self, req: _Req) -> dict[str, Any] | None:
        for entry in self._forced_429:
            if entry["method"] not in ("*", req.method):
                continue
            if entry["pattern"] not in (req.route, req.path):
                continue
            entry["times"] -= 1
            if entry["times"] <= 0:
                self._forced_429.remove(entry)
            return entry
        return None

    def _too_many(
        self, retry_after: float, headers: dict[str, str], *, is_global: bool, scope: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.rate_limited_count += 1
        headers = dict(headers)
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        headers["X-RateLimit-Scope"] = scope
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        return 429, P.rate_limited(retry_after, is_global=is_global), headers

    # =====================================================================================
    # REST plumbing
    # =====================================================================================
    def _build_routes(self) -> list[_Route]:
        r: list[tuple[str, str, Callable[[_Req], Any], bool]] = [
            ("GET", "/gateway", self._get_gateway, False),
            ("GET", "/gateway/bot", self._get_gateway_bot, True),
            ("GET", "/users/@me", self._get_me, True),
            ("PATCH", "/users/@me", self._patch_me, True),
            ("POST", "/users/@me/channels", self._create_dm, True),
            ("GET", "/users/{user_id}", self._get_user, True),
            ("GET", "/applications/@me", self._get_application, True),
            ("PATCH", "/applications/@me", self._patch_application, True),
            ("GET", "/oauth2/applications/@me", self._get_application, True),
            ("GET", "/guilds/{guild_id}", self._get_guild, True),
            ("GET", "/guilds/{guild_id}/channels", self._get_guild_channels, True),
            ("GET", "/guilds/{guild_id}/roles", self._get_guild_roles, True),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self._get_guild_member, True),
            ("GET", "/channels/{channel_id}", self._get_channel, True),
            ("PATCH", "/channels/{channel_id}", self._patch_channel, True),
            ("GET", "/channels/{channel_id}/messages", self._list_messages, True),
            ("POST", "/channels/{channel_id}/messages", self._post_message, True),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message, True),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._patch_message, True),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_message, True),
            (
                "PUT",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me",
                self._put_reaction,
                True,
            ),
            (
                "DELETE",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me",
                self._delete_reaction,
                True,
            ),
            ("POST", "/channels/{channel_id}/typing", self._typing, True),
            (
                "POST",
                "/channels/{channel_id}/messages/{message_id}/threads",
                self._thread_from_message,
                True,
            ),
            ("POST", "/channels/{channel_id}/threads", self._thread_without_message, True),
            ("GET", "/channels/{channel_id}/thread-members", self._list_thread_members, True),
            (
                "GET",
                "/channels/{channel_id}/thread-members/{user_id}",
                self._get_thread_member,
                True,
            ),
            (
                "PUT",
                "/channels/{channel_id}/thread-members/{user_id}",
                self._put_thread_member,
                True,
            ),
            (
                "DELETE",
                "/channels/{channel_id}/thread-members/{user_id}",
                self._delete_thread_member,
                True,
            ),
            ("GET", "/applications/{application_id}/commands", self._list_commands, True),
            ("PUT", "/applications/{application_id}/commands", self._put_commands, True),
            ("POST", "/applications/{application_id}/commands", self._post_command, True),
            (
                "GET",
                "/applications/{application_id}/commands/{command_id}",
                self._get_command,
                True,
            ),
            (
                "PATCH",
                "/applications/{application_id}/commands/{command_id}",
                self._patch_command,
                True,
            ),
            (
                "DELETE",
                "/applications/{application_id}/commands/{command_id}",
                self._delete_command,
                True,
            ),
            (
                "GET",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self._list_commands,
                True,
            ),
            (
                "PUT",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self._put_commands,
                True,
            ),
            (
                "POST",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self._post_command,
                True,
            ),
            (
                "GET",
                "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
                self._get_command,
                True,
            ),
            (
                "PATCH",
                "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
                self._patch_command,
                True,
            ),
            (
                "DELETE",
                "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
                self._delete_command,
                True,
            ),
            (
                "POST",
                "/interactions/{interaction_id}/{interaction_token}/callback",
                self._interaction_callback,
                False,
            ),
            ("POST", "/webhooks/{webhook_id}/{webhook_token}", self._execute_webhook, False),
            (
                "GET",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self._get_webhook_message,
                False,
            ),
            (
                "PATCH",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self._patch_webhook_message,
                False,
            ),
            (
                "DELETE",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self._delete_webhook_message,
                False,
            ),
        ]
        routes = []
        for method, template, handler, auth in r:
            rx = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            routes.append(_Route(method, template, re.compile(rx), handler, auth))
        return routes

    def _match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str], bool]:
        path_matched = False
        for route in self._routes:
            m = route.regex.fullmatch(path)
            if not m:
                continue
            path_matched = True
            if route.method == method:
                return route, {k: unquote(v) for k, v in m.groupdict().items()}, True
        return None, {}, path_matched

    async def _read_body(self, request: web.Request) -> tuple[Any, list[Upload], str]:
        ctype = request.content_type
        if ctype == "multipart/form-data":
            reader = await request.multipart()
            payload: Any = None
            form: dict[str, str] = {}
            uploads: list[Upload] = []
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not hasattr(part, "filename"):
                    continue  # nested multipart: not used by Discord
                if part.filename is not None:
                    data = await part.read(decode=False)
                    uploads.append(
                        Upload(
                            part.name or "",
                            part.filename,
                            part.headers.get("Content-Type"),
                            bytes(data),
                        )
                    )
                elif part.name == "payload_json":
                    try:
                        payload = json.loads(await part.text())
                    except ValueError:
                        raise ApiError(
                            400, P.error(50109, "The request body contains invalid JSON.")
                        ) from None
                else:
                    form[part.name or ""] = await part.text()
            if payload is None and form:
                payload = form
            return payload, uploads, ctype
        raw = await request.read()
        if not raw:
            return None, [], ctype
        if ctype == "application/json":
            try:
                return json.loads(raw), [], ctype
            except ValueError:
                raise ApiError(
                    400, P.error(50109, "The request body contains invalid JSON.")
                ) from None
        return raw.decode("utf-8", "replace"), [], ctype

    @staticmethod
    def _response(status: int, body: Any, headers: dict[str, str]) -> web.Response:
        headers = {"Via": "1.1 google", **headers}
        if body is None or status == 204:
            return web.Response(status=status if body is None else 204, headers=headers)
        return web.Response(
            status=status,
            body=json.dumps(body, ensure_ascii=False).encode(),
            content_type="application/json",
            headers=headers,
        )

    async def _api(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.split("?", 1)[0]
        path = raw_path[len(API_PREFIX) :] or "/"
        method = request.method.upper()
        query = dict(request.query)
        route, params, path_known = self._match(method, path)
        if route is None:
            status = 405 if path_known else 404
            body = P.error(0, f"{status}: {'Method Not Allowed' if path_known else 'Not Found'}")
            self.calls.append(Call(method, path, None, status, "", query, [], time.time()))
            return self._response(status, body, {})

        body: Any = None
        uploads: list[Upload] = []
        headers: dict[str, str] = {}
        ctype = request.content_type
        try:
            if route.auth and request.headers.get("Authorization") != f"Bot {self.token}":
                raise ApiError(401, P.error(0, "401: Unauthorized"))
            body, uploads, ctype = await self._read_body(request)
            req = _Req(method, path, route.template, params, query, body, uploads, ctype, request)
            now = time.monotonic()
            bucket = self._bucket_for(req)
            if now >= bucket.reset_at:
                bucket.count = 0
                bucket.reset_at = now + bucket.window
            forced = self._forced(req)
            if forced is not None:
                rl = self._rl_headers(bucket, now)
                rl["X-RateLimit-Remaining"] = "0"
                rl["X-RateLimit-Reset-After"] = f"{forced['retry_after']:.3f}"
                status, out, headers = self._too_many(
                    forced["retry_after"], rl, is_global=forced["global"], scope=forced["scope"]
                )
            elif bucket.count >= bucket.limit:
                status, out, headers = self._too_many(
                    bucket.reset_at - now,
                    self._rl_headers(bucket, now),
                    is_global=False,
                    scope="user",
                )
            else:
                bucket.count += 1
                headers = self._rl_headers(bucket, now)
                result = await route.handler(req)
                status, out = result if isinstance(result, tuple) else (200, result)
        except ApiError as exc:
            status, out = exc.status, exc.body
        except Exception as exc:  # a bug in the fake: fail fast (discord.py retries 5xx slowly)
            self.internal_errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            status, out = (
                400,
                P.error(0, f"FakeDiscord internal error: {type(exc).__name__}: {exc}"),
            )
        file_info = [(u.field, u.filename, len(u.data)) for u in uploads]
        self.calls.append(
            Call(method, path, body, status, route.template, query, file_info, time.time())
        )
        self._spec_check(method, path, body, ctype, status, out)
        return self._response(status, out, headers)

    def _spec_check(
        self, method: str, path: str, body: Any, ctype: str, status: int, out: Any
    ) -> None:
        spec = self._spec
        if spec is None:
            return
        problems: list[str] = []
        if status < 400 and isinstance(body, (dict, list)):
            problems += spec.check_request(
                method,
                path,
                _stringify_snowflakes(body),
                "multipart/form-data" if ctype.startswith("multipart/") else "application/json",
            )
        if status != 204:
            problems += spec.check_response(method, path, status, out)
        for problem in problems:
            if _KNOWN_SPEC_DEVIATION.search(problem):
                self.spec_deviations.append(problem)
            else:
                self.spec_problems.append(problem)

    def assert_spec_clean(self) -> None:
        """Raise AssertionError listing every spec problem and fake-internal error so far."""
        if self.spec_problems or self.internal_errors:
            raise AssertionError(
                "FakeDiscord problems:\n" + "\n".join(self.internal_errors + self.spec_problems)
            )

    def check_component(self, name: str, instance: Any, label: str | None = None) -> list[str]:
        """Validate any object against a named spec schema (e.g. "MessageResponse")."""
        if self._spec is None:
            return []
        return self._spec.check_component(name, instance, label=label)

    # =====================================================================================
    # REST handlers: gateway, users, application, guilds
    # =====================================================================================
    async def _get_gateway(self, req: _Req) -> Any:
        return {"url": self.gateway_url}

    async def _get_gateway_bot(self, req: _Req) -> Any:
        return {
            "url": self.gateway_url,
            "shards": self.shards,
            "session_start_limit": {
                "total": 1000,
                "remaining": max(1000 - self.identify_count, 0),
                "reset_after": 86_400_000,
                "max_concurrency": 1,
            },
        }

    async def _get_me(self, req: _Req) -> Any:
        return P.current_user(self.bot_user)

    async def _patch_me(self, req: _Req) -> Any:
        body = req.json or {}
        if "username" in body:
            self.bot_user["username"] = body["username"]
        return P.current_user(self.bot_user)

    async def _get_user(self, req: _Req) -> Any:
        user = self.users.get(req.params["user_id"])
        if user is None:
            raise _unknown(10013, "User")
        return user

    async def _get_application(self, req: _Req) -> Any:
        return self.application

    async def _patch_application(self, req: _Req) -> Any:
        body = req.json or {}
        self.app_edits.append(body)
        if isinstance(body.get("description"), str):
            self.application_description = body["description"]
        return self.application

    def _guild_or_404(self, gid: str) -> _Guild:
        g = self.guilds.get(gid)
        if g is None:
            raise _unknown(10004, "Guild")
        return g

    def _guild_rest(self, g: _Guild) -> dict[str, Any]:
        return dict(g.data, roles=list(g.roles.values()))

    async def _get_guild(self, req: _Req) -> Any:
        return self._guild_rest(self._guild_or_404(req.params["guild_id"]))

    async def _get_guild_channels(self, req: _Req) -> Any:
        g = self._guild_or_404(req.params["guild_id"])
        return [
            dict(c)
            for c in self.channels.values()
            if c.get("guild_id") == g.id and c["type"] not in ChannelType.THREADS
        ]

    async def _get_guild_roles(self, req: _Req) -> Any:
        return list(self._guild_or_404(req.params["guild_id"]).roles.values())

    async def _get_guild_member(self, req: _Req) -> Any:
        g = self._guild_or_404(req.params["guild_id"])
        m = g.members.get(req.params["user_id"])
        if m is None:
            raise _unknown(10007, "Member")
        return m

    # =====================================================================================
    # REST handlers: channels, messages
    # =====================================================================================
    def _channel_or_404(self, cid: str) -> dict[str, Any]:
        ch = self.channels.get(cid)
        if ch is None:
            raise _unknown(10003, "Channel")
        if ch.get("guild_id") and not self.permissions_for(self.bot_user, ch) & Perm.VIEW_CHANNEL:
            raise _MISSING_ACCESS
        return ch

    def _wire_channel(self, ch: dict[str, Any]) -> dict[str, Any]:
        out = dict(ch)
        if ch["type"] in ChannelType.THREADS:
            out["member_count"] = min(len(self.thread_members.get(ch["id"], {})), 50)
            tm = self.thread_members.get(ch["id"], {}).get(self.application_id)
            if tm is not None:
                out["member"] = dict(tm)
        return out

    async def _get_channel(self, req: _Req) -> Any:
        return self._wire_channel(self._channel_or_404(req.params["channel_id"]))

    async def _patch_channel(self, req: _Req) -> Any:
        ch = self._channel_or_404(req.params["channel_id"])
        body = req.json or {}
        is_thread = ch["type"] in ChannelType.THREADS
        perms = self.permissions_for(self.bot_user, ch) if ch.get("guild_id") else 0
        owner = is_thread and ch["owner_id"] == self.application_id
        if not (perms & (Perm.MANAGE_THREADS if is_thread else Perm.MANAGE_CHANNELS) or owner):
            raise _MISSING_PERMS
        for key in ("name", "topic", "rate_limit_per_user", "nsfw"):
            if key in body:
                ch[key] = body[key]
        if is_thread:
            meta = ch["thread_metadata"]
            for key in ("archived", "locked", "auto_archive_duration", "invitable"):
                if key in body:
                    meta[key] = body[key]
            if "archived" in body:
                meta["archive_timestamp"] = P.iso()
            self._emit_nowait(
                "THREAD_UPDATE", lambda s: self._wire_channel(ch), guild_id=ch["guild_id"]
            )
        return self._wire_channel(ch)

    def _msg_or_404(self, ch: dict[str, Any], mid: str) -> dict[str, Any]:
        msg = self.message_index.get(mid)
        if msg is None or msg["channel_id"] != ch["id"] or msg["flags"] & MsgFlag.EPHEMERAL:
            raise _unknown(10008, "Message")
        return msg

    async def _list_messages(self, req: _Req) -> Any:
        ch = self._channel_or_404(req.params["channel_id"])
        self.history_reads.append(ch["id"])
        if ch.get("guild_id"):
            # As Discord: 403 Missing Access without View Channel; without Read Message
            # History the list is simply empty.
            perms = self.permissions_for(self.bot_user, ch)
            if not perms & Perm.VIEW_CHANNEL:
                raise _MISSING_ACCESS
            if not perms & Perm.READ_MESSAGE_HISTORY:
                return []
        try:
            limit = int(req.query.get("limit", "50"))
        except ValueError:
            raise ApiError(
                400, P.form_error({"limit": ("NUMBER_TYPE_COERCE", "Value is not int.")})
            ) from None
        if not 1 <= limit <= 100:
            raise ApiError(
                400,
                P.form_error(
                    {"limit": ("NUMBER_TYPE_MAX", "int value should be less than or equal to 100.")}
                ),
            )
        msgs = sorted(self.messages.get(ch["id"], []), key=lambda m: int(m["id"]))
        if "before" in req.query:
            msgs = [m for m in msgs if int(m["id"]) < int(req.query["before"])]
            msgs = msgs[-limit:]
        elif "after" in req.query:
            msgs = [m for m in msgs if int(m["id"]) > int(req.query["after"])][:limit]
        elif "around" in req.query:
            pivot = int(req.query["around"])
            older = [m for m in msgs if int(m["id"]) <= pivot][-(limit // 2 + limit % 2) :]
            newer = [m for m in msgs if int(m["id"]) > pivot][: limit // 2]
            msgs = older + newer
        else:
            msgs = msgs[-limit:]
        intents = Intent.MESSAGE_CONTENT if self.message_content else 0
        return [self._wire_message(m, intents=intents) for m in reversed(msgs)]

    async def _get_message(self, req: _Req) -> Any:
        ch = self._channel_or_404(req.params["channel_id"])
        if ch.get("guild_id"):
            perms = self.permissions_for(self.bot_user, ch)
            if not perms & Perm.VIEW_CHANNEL:
                raise _MISSING_ACCESS
            if not perms & Perm.READ_MESSAGE_HISTORY:
                raise _MISSING_PERMS  # one message needs Read Message History: 403 50013
        msg = self._msg_or_404(ch, req.params["message_id"])
        intents = Intent.MESSAGE_CONTENT if self.message_content else 0
        return self._wire_message(msg, intents=intents)

    def _check_can_send(self, ch: dict[str, Any], *, files: bool, embeds: bool = False) -> None:
        if ch.get("guild_id") is None:
            return
        perms = self.permissions_for(self.bot_user, ch)
        if not perms & Perm.VIEW_CHANNEL:
            raise _MISSING_ACCESS
        if ch["type"] in ChannelType.THREADS:
            meta = ch["thread_metadata"]
            if meta.get("locked") and not perms & Perm.MANAGE_THREADS:
                raise ApiError(400, P.error(50083, "Thread is archived"))
            needed = Perm.SEND_MESSAGES_IN_THREADS
            if (
                ch["type"] == ChannelType.PRIVATE_THREAD
                and self.application_id not in self.thread_members.get(ch["id"], {})
                and not perms & Perm.MANAGE_THREADS
            ):
                raise _MISSING_ACCESS
        else:
            needed = Perm.SEND_MESSAGES
        if not perms & needed:
            raise _MISSING_PERMS
        if files and not perms & Perm.ATTACH_FILES:
            raise _MISSING_PERMS

    async def _post_message(self, req: _Req) -> Any:
        ch = self._channel_or_404(req.params["channel_id"])
        payload = req.json if isinstance(req.json, dict) else {}
        self._check_can_send(ch, files=bool(req.files))
        nonce = payload.get("nonce")
        if nonce is not None and payload.get("enforce_nonce"):
            existing = self._nonces.get((ch["id"], str(nonce)))
            if existing and existing in self.message_index:
                return self._wire_message(
                    self.message_index[existing], intents=Intent.MESSAGE_CONTENT
                )
        msg = self._new_message_from_payload(ch, payload, req.files, author=self.bot_user)
        if nonce is not None:
            self._nonces[(ch["id"], str(nonce))] = msg["id"]
        self._store_message(msg)
        self._emit_message("MESSAGE_CREATE", msg)
        return self._wire_message(msg, intents=Intent.MESSAGE_CONTENT)

    async def _patch_message(self, req: _Req) -> Any:
        ch = self._channel_or_404(req.params["channel_id"])
        msg = self._msg_or_404(ch, req.params["message_id"])
        payload = req.json if isinstance(req.json, dict) else {}
        if msg["author"]["id"] != self.application_id or msg.get("webhook_id"):
            only_flags = set(payload) <= {"flags"}
            if not only_flags:
                raise ApiError(
                    403, P.error(50005, "Cannot edit a message authored by another user")
                )
        if req.files:
            self._check_can_send(ch, files=True)
        self._apply_edit(msg, payload, req.files)
        self._emit_message("MESSAGE_UPDATE", msg)
        return self._wire_message(msg, intents=Intent.MESSAGE_CONTENT)

    async def _delete_message(self, req: _Req) -> Any:
        ch = self._channel_or_404(req.params["channel_id"])
        msg = self._msg_or_404(ch, req.params["message_id"])
        if (
            msg["author"]["id"] != self.application_id
            and ch.get("guild_id")
            and not self.permissions_for(self.bot_user, ch) & Perm.MANAGE_MESSAGES
        ):
            raise _MISSING_PERMS
        self._remove_message(msg)
        return 204, None

    async def _put_reaction(self, req: _Req) -> Any:
        ch = self._channel_or_404(req.params["channel_id"])
        msg = self._msg_or_404(ch, req.params["message_id"])
        emoji = req.params["emoji_name"]
        name, _, eid = emoji.partition(":")
        reactions = msg.setdefault("reactions", [])
        for r in reactions:
            if r["emoji"]["name"] == name:
                if not r["me"]:
                    r["me"] = True
                    r["count"] += 1
                    r["count_details"]["normal"] += 1
                break
        else:
            reactions.append(
                {
                    "emoji": {"id": eid or None, "name": name},
                    "count": 1,
                    "count_details": {"burst": 0, "normal": 1},
                    "burst_colors": [],
                    "me": True,
                    "me_burst": False,
                    "burst_me": False,
                    "burst_count": 0,
                }
            )
        return 204, None

    async def _delete_reaction(self, req: _Req) -> Any:
        ch = self._channel_or_404(req.params["channel_id"])
        msg = self._msg_or_404(ch, req.params["message_id"])
        name = req.params["emoji_name"].partition(":")[0]
        for r in list(msg.get("reactions", [])):
            if r["emoji"]["name"] == name and r["me"]:
                r["me"] = False
                r["count"] -= 1
                r["count_details"]["normal"] -= 1
                if r["count"] <= 0:
                    msg["reactions"].remove(r)
        return 204, None

    async def _typing(self, req: _Req) -> Any:
        ch = self._channel_or_404(req.params["channel_id"])
        self._check_can_send(ch, files=False)
        self.typing[ch["id"]].append(time.time())
        return 204, None

    # -- threads ---------------------------------------------------------------------------
    def _thread_join(self, th: dict[str, Any], user_id: str) -> None:
        members = self.thread_members[th["id"]]
        if user_id not in members:
            members[user_id] = P.thread_member(th["id"], user_id)
        th["member_count"] = min(len(members), 50)

    def _validate_thread_body(self, body: dict[str, Any]) -> None:
        name = body.get("name")
        errors: dict[str, tuple[str, str]] = {}
        if not isinstance(name, str) or not name.strip():
            errors["name"] = ("BASE_TYPE_REQUIRED", "This field is required")
        elif len(name) > 100:
            errors["name"] = ("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        aad = body.get("auto_archive_duration")
        if aad is not None and aad not in (60, 1440, 4320, 10080):
            errors["auto_archive_duration"] = (
                "BASE_TYPE_CHOICES",
                "Value must be one of {60, 1440, 4320, 10080}.",
            )
        if errors:
            raise ApiError(400, P.form_error(errors))

    async def _thread_from_message(self, req: _Req) -> Any:
        ch = self._channel_or_404(req.params["channel_id"])
        if ch.get("guild_id") is None:
            raise ApiError(400, P.error(50003, "Cannot execute action on a DM channel"))
        if ch["type"] not in (ChannelType.GUILD_TEXT, ChannelType.GUILD_ANNOUNCEMENT):
            raise ApiError(400, P.error(50024, "Cannot execute action on this channel type"))
        msg = self._msg_or_404(ch, req.params["message_id"])
        if msg["id"] in self.threads:
            raise ApiError(
                400, P.error(160004, "A thread has already been created for this message")
            )
        if not self.permissions_for(self.bot_user, ch) & Perm.CREATE_PUBLIC_THREADS:
            raise _MISSING_PERMS
        body = req.json if isinstance(req.json, dict) else {}
        self._validate_thread_body(body)
        th = P.thread_channel(
            msg["id"],
            ch["guild_id"],
            ch["id"],
            body["name"],
            owner_id=self.application_id,
            type=ChannelType.ANNOUNCEMENT_THREAD
            if ch["type"] == ChannelType.GUILD_ANNOUNCEMENT
            else ChannelType.PUBLIC_THREAD,
            auto_archive_duration=body.get("auto_archive_duration")
            or ch.get("default_auto_archive_duration", 1440),
            rate_limit_per_user=body.get("rate_limit_per_user") or 0,
        )
        self.channels[th["id"]] = th
        self.threads[th["id"]] = th
        self._thread_join(th, self.application_id)
        msg["flags"] |= MsgFlag.HAS_THREAD
        self._emit_nowait(
            "THREAD_CREATE",
            lambda s: dict(self._wire_channel(th), newly_created=True),
            guild_id=th["guild_id"],
        )
        return 201, self._wire_channel(th)

    async def _thread_without_message(self, req: _Req) -> Any:
        ch = self._channel_or_404(req.params["channel_id"])
        if ch.get("guild_id") is None:
            raise ApiError(400, P.error(50003, "Cannot execute action on a DM channel"))
        body = req.json if isinstance(req.json, dict) else {}
        forum = ch["type"] == ChannelType.GUILD_FORUM
        if ch["type"] not in (
            ChannelType.GUILD_TEXT,
            ChannelType.GUILD_ANNOUNCEMENT,
            ChannelType.GUILD_FORUM,
        ):
            raise ApiError(400, P.error(50024, "Cannot execute action on this channel type"))
        self._validate_thread_body(body)
        ttype = ChannelType.PUBLIC_THREAD if forum else body.get("type", ChannelType.PRIVATE_THREAD)
        if ttype not in (
            ChannelType.PUBLIC_THREAD,
            ChannelType.PRIVATE_THREAD,
            ChannelType.ANNOUNCEMENT_THREAD,
        ):
            raise ApiError(
                400,
                P.form_error({"type": ("BASE_TYPE_CHOICES", "Value must be one of {10, 11, 12}.")}),
            )
        need = (
            Perm.CREATE_PRIVATE_THREADS
            if ttype == ChannelType.PRIVATE_THREAD
            else Perm.CREATE_PUBLIC_THREADS
        )
        if forum:
            need = Perm.SEND_MESSAGES
        if not self.permissions_for(self.bot_user, ch) & need:
            raise _MISSING_PERMS
        th = P.thread_channel(
            self._snowflake(),
            ch["guild_id"],
            ch["id"],
            body["name"],
            owner_id=self.application_id,
            type=ttype,
            auto_archive_duration=body.get("auto_archive_duration")
            or ch.get("default_auto_archive_duration", 1440),
            invitable=body.get("invitable"),
            rate_limit_per_user=body.get("rate_limit_per_user") or 0,
        )
        self.channels[th["id"]] = th
        self.threads[th["id"]] = th
        self._thread_join(th, self.application_id)
        out = self._wire_channel(th)
        if forum:
            starter_payload = body.get("message") or {}
            starter = self._new_message_from_payload(
                th, starter_payload, req.files, author=self.bot_user, msg_id=th["id"]
            )
            self._store_message(starter, count_in_thread=False)
            out["message"] = self._wire_message(starter, intents=Intent.MESSAGE_CONTENT)
        self._emit_nowait(
            "THREAD_CREATE",
            lambda s: dict(self._wire_channel(th), newly_created=True),
            guild_id=th["guild_id"],
        )
        return 201, out

    def _thread_or_404(self, cid: str) -> dict[str, Any]:
        ch = self._channel_or_404(cid)
        if ch["type"] not in ChannelType.THREADS:
            raise ApiError(400, P.error(50024, "Cannot execute action on this channel type"))
        return ch

    def _uid_param(self, req: _Req) -> str:
        uid = req.params["user_id"]
        return self.application_id if uid == "@me" else uid

    async def _list_thread_members(self, req: _Req) -> Any:
        th = self._thread_or_404(req.params["channel_id"])
        return list(self.thread_members.get(th["id"], {}).values())

    async def _get_thread_member(self, req: _Req) -> Any:
        th = self._thread_or_404(req.params["channel_id"])
        tm = self.thread_members.get(th["id"], {}).get(self._uid_param(req))
        if tm is None:
            raise _unknown(10007, "Member")
        return tm

    async def _put_thread_member(self, req: _Req) -> Any:
        th = self._thread_or_404(req.params["channel_id"])
        uid = self._uid_param(req)
        if uid not in self.users:
            raise _unknown(10013, "User")
        if th["thread_metadata"].get("archived"):
            raise ApiError(400, P.error(50083, "Thread is archived"))
        self._thread_join(th, uid)
        return 204, None

    async def _delete_thread_member(self, req: _Req) -> Any:
        th = self._thread_or_404(req.params["channel_id"])
        members = self.thread_members.get(th["id"], {})
        members.pop(self._uid_param(req), None)
        th["member_count"] = min(len(members), 50)
        return 204, None

    async def _create_dm(self, req: _Req) -> Any:
        body = req.json if isinstance(req.json, dict) else {}
        rid = str(body.get("recipient_id", ""))
        if rid not in self.users or rid == self.application_id:
            raise ApiError(400, P.error(50033, "Invalid Recipient(s)"))
        return self.dm_channel(rid)

    # =====================================================================================
    # messages: build, validate, store, serialise
    # =====================================================================================
    def _validate_message_payload(
        self,
        payload: dict[str, Any],
        uploads: list[Upload],
        *,
        creating: bool,
        kept_attachments: int = 0,
    ) -> None:
        errors: dict[str, tuple[str, str]] = {}
        content = payload.get("content")
        if content is not None and not isinstance(content, str):
            content = str(content)
        if content is not None and len(content) > MAX_CONTENT:
            errors["content"] = (
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_CONTENT} or fewer in length.",
            )
        embeds = payload.get("embeds") or []
        if len(embeds) > MAX_EMBEDS:
            errors["embeds"] = ("BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
        total = 0
        for i, e in enumerate(embeds[:MAX_EMBEDS]):
            for key, limit in (("title", 256), ("description", 4096)):
                value = e.get(key) or ""
                total += len(value)
                if len(value) > limit:
                    errors[f"embeds.{i}.{key}"] = (
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {limit} or fewer in length.",
                    )
            fields = e.get("fields") or []
            if len(fields) > 25:
                errors[f"embeds.{i}.fields"] = (
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 25 or fewer in length.",
                )
            for j, f in enumerate(fields):
                total += len(f.get("name") or "") + len(f.get("value") or "")
                if len(f.get("value") or "") > 1024:
                    errors[f"embeds.{i}.fields.{j}.value"] = (
                        "BASE_TYPE_MAX_LENGTH",
                        "Must be 1024 or fewer in length.",
                    )
            total += len((e.get("footer") or {}).get("text") or "") + len(
                (e.get("author") or {}).get("name") or ""
            )
        if total > MAX_EMBED_TOTAL:
            errors.setdefault(
                "embeds", ("MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
            )
        n_files = len(uploads) + kept_attachments
        if n_files > MAX_FILES or len(payload.get("attachments") or []) > MAX_FILES:
            errors["attachments"] = (
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MAX_FILES} or fewer in length.",
            )
        if errors:
            raise ApiError(400, P.form_error(errors))
        for up in uploads:
            if len(up.data) > self.upload_limit:
                raise ApiError(413, P.error(40005, "Request entity too large"))
        flags = payload.get("flags") or 0
        if flags & MsgFlag.IS_VOICE_MESSAGE:
            if len(uploads) + kept_attachments != 1:
                raise ApiError(
                    400, P.error(50159, "Voice messages must have a single audio attachment")
                )
            if (content or "").strip() or embeds or payload.get("components"):
                raise ApiError(
                    400, P.error(50161, "Voice messages do not support additional content")
                )
            meta = (payload.get("attachments") or [{}])[0]
            if meta.get("duration_secs") is None or not meta.get("waveform"):
                raise ApiError(400, P.error(50160, "Voice messages must have supporting metadata"))
        if creating:
            has_body = bool(
                (content or "").strip()
                or embeds
                or uploads
                or payload.get("sticker_ids")
                or payload.get("components")
                or payload.get("poll")
            )
            if not has_body:
                raise ApiError(400, P.error(50006, "Cannot send an empty message"))

    def _attachments_from_uploads(
        self,
        channel_id: str,
        payload: dict[str, Any],
        uploads: list[Upload],
        *,
        ephemeral: bool = False,
    ) -> list[dict[str, Any]]:
        meta_by_index: dict[str, dict[str, Any]] = {}
        for a in payload.get("attachments") or []:
            if isinstance(a, dict) and "id" in a:
                meta_by_index[str(a["id"])] = a
        out = []
        for pos, up in enumerate(uploads):
            idx = up.index if up.index is not None else pos
            meta = meta_by_index.get(str(idx), {})
            filename = meta.get("filename") or up.filename
            if meta.get("is_spoiler") and not filename.startswith("SPOILER_"):
                filename = "SPOILER_" + filename
            ctype = mimetypes.guess_type(filename)[0]
            att = self.add_attachment(
                filename,
                up.data,
                ctype,
                duration_secs=meta.get("duration_secs"),
                waveform=meta.get("waveform"),
                description=meta.get("description"),
                title=meta.get("title"),
                channel_id=channel_id,
                ephemeral=ephemeral,
            )
            att["data"] = up.data
            out.append(att)
        return out

    def _resolve_mentions(
        self,
        content: str,
        allowed: dict[str, Any] | None,
        channel: dict[str, Any],
        reply_to: dict[str, Any] | None,
    ) -> tuple[list[dict[str, Any]], list[str], bool]:
        parse = (
            {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse") or [])
        )
        explicit_users = {str(u) for u in (allowed or {}).get("users") or []}
        explicit_roles = {str(r) for r in (allowed or {}).get("roles") or []}
        ids: list[str] = []
        for uid in _MENTION_RE.findall(content or ""):
            if uid in self.users and uid not in ids and ("users" in parse or uid in explicit_users):
                ids.append(uid)
        if reply_to is not None:
            replied = reply_to["author"]["id"]
            wants = allowed is None or bool(allowed.get("replied_user"))
            if wants and replied not in ids and not reply_to.get("webhook_id"):
                ids.append(replied)
        roles: list[str] = []
        gid = channel.get("guild_id")
        if gid:
            g = self.guilds[gid]
            for rid in _ROLE_MENTION_RE.findall(content or ""):
                if (
                    rid in g.roles
                    and rid not in roles
                    and ("roles" in parse or rid in explicit_roles)
                ):
                    roles.append(rid)
        everyone = bool(re.search(r"@(everyone|here)", content or "")) and "everyone" in parse
        return [self.users[u] for u in ids], roles, everyone

    def _new_message_from_payload(
        self,
        ch: dict[str, Any],
        payload: dict[str, Any],
        uploads: list[Upload],
        *,
        author: dict[str, Any],
        msg_id: str | None = None,
        msg_type: int | None = None,
        extra_flags: int = 0,
        webhook: _Interaction | None = None,
        followup_of: str | None = None,
    ) -> dict[str, Any]:
        self._validate_message_payload(payload, uploads, creating=not extra_flags & MsgFlag.LOADING)
        ref_in = payload.get("message_reference")
        reply_to = None
        reference = None
        if isinstance(ref_in, dict) and ref_in.get("message_id"):
            ref_type = ref_in.get("type", 0) or 0
            ref_channel = str(ref_in.get("channel_id") or ch["id"])
            target = self.message_index.get(str(ref_in["message_id"]))
            if (
                target is None
                or target["channel_id"] != ref_channel
                or target["flags"] & MsgFlag.EPHEMERAL
            ):
                if ref_in.get("fail_if_not_exists", True):
                    raise ApiError(
                        400,
                        P.form_error(
                            {
                                "message_reference": (
                                    "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                                    "Unknown message",
                                )
                            }
                        ),
                    )
            else:
                reply_to = target if ref_type == 0 else None
                reference = P.message_reference(
                    target["id"],
                    target["channel_id"],
                    self.channels[target["channel_id"]].get("guild_id"),
                    type=ref_type,
                )
        content = payload.get("content") or ""
        if not isinstance(content, str):
            content = str(content)
        flags = ((payload.get("flags") or 0) & _SETTABLE_FLAGS) | extra_flags
        if webhook is None:
            flags &= ~MsgFlag.EPHEMERAL
        ephemeral = bool(flags & MsgFlag.EPHEMERAL)
        mentions, mention_roles, everyone = self._resolve_mentions(
            content, payload.get("allowed_mentions"), ch, reply_to
        )
        if (
            everyone
            and ch.get("guild_id")
            and not self.permissions_for(author, ch) & Perm.MENTION_EVERYONE
        ):
            everyone = False
        if msg_type is None:
            msg_type = MsgType.REPLY if reply_to is not None else MsgType.DEFAULT
        interaction_metadata = None
        if webhook is not None:
            interaction_metadata = self._interaction_metadata(webhook)
            if followup_of is not None:
                interaction_metadata["original_response_message_id"] = followup_of
        msg = P.message(
            msg_id or self._snowflake(),
            ch["id"],
            author,
            content,
            type=msg_type,
            flags=flags,
            mentions=mentions,
            mention_roles=mention_roles,
            mention_everyone=everyone,
            attachments=self._attachments_from_uploads(
                ch["id"], payload, uploads, ephemeral=ephemeral
            ),
            embeds=[self._normalise_embed(e) for e in payload.get("embeds") or []],
            components=_number_components(payload.get("components") or []),
            message_reference=reference,
            tts=bool(payload.get("tts")),
            nonce=payload.get("nonce"),
            webhook_id=self.application_id if webhook is not None else None,
            application_id=self.application_id if webhook is not None else None,
            interaction_metadata=interaction_metadata,
        )
        if webhook is not None and webhook.command_name:
            msg["interaction"] = {
                "id": webhook.id,
                "type": webhook.type,
                "name": webhook.command_name,
                "user": webhook.user,
            }
        if payload.get("poll"):
            msg["poll"] = payload["poll"]
        if payload.get("sticker_ids"):
            msg["sticker_items"] = [
                {"id": str(s), "name": "sticker", "format_type": 1} for s in payload["sticker_ids"]
            ]
        msg["edits"] = []
        return msg

    def _interaction_metadata(self, meta: _Interaction) -> dict[str, Any]:
        """``interaction_metadata`` of messages created through an interaction's webhook."""
        data: dict[str, Any] = {
            "id": meta.id,
            "type": meta.type,
            "user": meta.user,
            "authorizing_integration_owners": meta.payload.get(
                "authorizing_integration_owners", {}
            ),
        }
        if meta.command_name:
            data["name"] = meta.command_name
            data["command_type"] = meta.command_type or 1
            target = (meta.payload.get("data") or {}).get("target_id")
            if target and meta.command_type == 2:
                data["target_user"] = self.users.get(target)
            elif target and meta.command_type == 3:
                data["target_message_id"] = target
        if meta.type == InteractionType.MESSAGE_COMPONENT:
            data["interacted_message_id"] = meta.message_id
        if meta.type == InteractionType.MODAL_SUBMIT:
            trigger = self._interactions.get(meta.triggered_by or "")
            data["triggering_interaction_metadata"] = (
                self._interaction_metadata(trigger)
                if trigger is not None
                else {"id": self._snowflake(), "type": 2, "authorizing_integration_owners": {}}
            )
        return data

    @staticmethod
    def _normalise_embed(e: dict[str, Any]) -> dict[str, Any]:
        out = dict(e)
        out.setdefault("type", "rich")
        out.pop("content_scan_version", None)
        return out

    def _store_message(self, msg: dict[str, Any], *, count_in_thread: bool = True) -> None:
        self.message_index[msg["id"]] = msg
        if msg["flags"] & MsgFlag.EPHEMERAL:
            self.ephemeral_messages.append(msg)
            return
        ch = self.channels[msg["channel_id"]]
        self.messages[ch["id"]].append(msg)
        ch["last_message_id"] = msg["id"]
        if ch["type"] in ChannelType.THREADS:
            meta = ch["thread_metadata"]
            if meta.get("archived") and not meta.get("locked"):
                meta["archived"] = False
                meta["archive_timestamp"] = P.iso()
            if count_in_thread:
                ch["message_count"] += 1
            ch["total_message_sent"] += 1
            msg["position"] = ch["total_message_sent"]

    def _remove_message(self, msg: dict[str, Any]) -> None:
        lst = self.messages.get(msg["channel_id"], [])
        if msg in lst:
            lst.remove(msg)
            self._emit_nowait(
                "MESSAGE_DELETE",
                lambda s: self._delete_event(msg),
                guild_id=self.channels[msg["channel_id"]].get("guild_id"),
                message_event=True,
            )
        self.message_index.pop(msg["id"], None)
        msg["deleted_at"] = P.iso()
        self.deleted_messages.append(msg)

    def _delete_event(self, msg: dict[str, Any]) -> dict[str, Any]:
        data = {"id": msg["id"], "channel_id": msg["channel_id"]}
        gid = self.channels[msg["channel_id"]].get("guild_id")
        if gid:
            data["guild_id"] = gid
        return data

    def _apply_edit(
        self, msg: dict[str, Any], payload: dict[str, Any], uploads: list[Upload]
    ) -> None:
        kept = msg["attachments"]
        if "attachments" in payload and payload["attachments"] is not None:
            keep_ids = {str(a.get("id")) for a in payload["attachments"] if isinstance(a, dict)}
            kept = [a for a in msg["attachments"] if a["id"] in keep_ids]
        # attachment entries that describe new files (ids are upload indexes, not snowflakes)
        existing_ids = {a["id"] for a in msg["attachments"]}
        new_meta = [
            a
            for a in payload.get("attachments") or []
            if isinstance(a, dict) and str(a.get("id")) not in existing_ids
        ]
        new_uploads_payload = dict(payload, attachments=new_meta)
        self._validate_message_payload(
            new_uploads_payload, uploads, creating=False, kept_attachments=len(kept)
        )
        before = {
            "content": msg["content"],
            "embeds": msg["embeds"],
            "attachments": msg["attachments"],
        }
        if "content" in payload:
            msg["content"] = payload["content"] or ""
            allowed = payload.get("allowed_mentions")
            reply_to = None
            if msg.get("message_reference") and msg["type"] == MsgType.REPLY:
                reply_to = self.message_index.get(msg["message_reference"].get("message_id", ""))
                if reply_to is not None and any(
                    u["id"] == reply_to["author"]["id"] for u in msg["mentions"]
                ):
                    allowed = {
                        **(allowed or {"parse": ["users", "roles", "everyone"]}),
                        "replied_user": True,
                    }
            mentions, roles, everyone = self._resolve_mentions(
                msg["content"], allowed, self.channels[msg["channel_id"]], reply_to
            )
            msg["mentions"], msg["mention_roles"], msg["mention_everyone"] = (
                mentions,
                roles,
                everyone,
            )
        if "embeds" in payload:
            msg["embeds"] = [self._normalise_embed(e) for e in payload["embeds"] or []]
        if "components" in payload:
            msg["components"] = _number_components(payload["components"] or [])
        if "flags" in payload and payload["flags"] is not None:
            keep = msg["flags"] & ~(1 << 2)
            msg["flags"] = keep | (payload["flags"] & (1 << 2))
        ephemeral = bool(msg["flags"] & MsgFlag.EPHEMERAL)
        new_atts = self._attachments_from_uploads(
            msg["channel_id"], new_uploads_payload, uploads, ephemeral=ephemeral
        )
        msg["attachments"] = kept + new_atts
        msg["edited_timestamp"] = P.iso()
        msg["edits"].append(
            {
                "timestamp": msg["edited_timestamp"],
                "at": time.time(),
                "content": msg["content"],
                "previous_content": before["content"],
                "embeds": msg["embeds"],
                "attachments": [a["filename"] for a in msg["attachments"]],
                "payload": payload,
            }
        )

    def _should_strip(self, msg: dict[str, Any], intents: int) -> bool:
        if intents & Intent.MESSAGE_CONTENT:
            return False
        if msg["author"]["id"] == self.application_id:
            return False
        ch = self.channels.get(msg["channel_id"])
        if ch is None or ch.get("guild_id") is None:
            return False
        return not any(u["id"] == self.application_id for u in msg["mentions"])

    def _wire_message(
        self,
        msg: dict[str, Any],
        *,
        intents: int,
        gateway: bool = False,
        nested: bool = False,
    ) -> dict[str, Any]:
        out = {k: v for k, v in msg.items() if k not in _INTERNAL_MSG_KEYS and k != "deleted_at"}
        out["attachments"] = [
            {k: v for k, v in a.items() if k != "data"} for a in msg["attachments"]
        ]
        ch = self.channels.get(msg["channel_id"], {})
        gid = ch.get("guild_id")
        ref = msg.get("message_reference")
        if not nested and ref and msg["type"] in (MsgType.REPLY, MsgType.THREAD_STARTER_MESSAGE):
            target = self.message_index.get(ref.get("message_id", ""))
            out["referenced_message"] = (
                self._wire_message(target, intents=intents, gateway=False, nested=True)
                if target
                else None
            )
        th = self.threads.get(msg["id"])
        if th is not None and th["id"] != msg["channel_id"] and not nested:
            out["thread"] = self._wire_channel(th)
        if self._should_strip(msg, intents):
            out["content"] = ""
            out["embeds"] = []
            out["attachments"] = []
            out["components"] = []
            out.pop("poll", None)
        if gateway and gid:
            out["guild_id"] = gid
            g = self.guilds[gid]
            m = g.members.get(msg["author"]["id"])
            if m is not None and not msg.get("webhook_id"):
                out["member"] = {k: v for k, v in m.items() if k != "user"}
            mentions = []
            for u in out["mentions"]:
                mm = g.members.get(u["id"])
                mentions.append(
                    dict(u, member={k: v for k, v in mm.items() if k != "user"}) if mm else u
                )
            out["mentions"] = mentions
        return out

    # =====================================================================================
    # application commands
    # =====================================================================================
    def _cmd_scope(self, req: _Req) -> str | None:
        if req.params["application_id"] != self.application_id:
            raise _MISSING_ACCESS
        gid = req.params.get("guild_id")
        if gid is not None:
            g = self._guild_or_404(gid)
            if not g.commands_scope:
                raise _MISSING_ACCESS
        return gid

    def _validate_command(self, spec: Any, prefix: str, errors: dict[str, tuple[str, str]]) -> None:
        if not isinstance(spec, dict):
            errors[prefix.rstrip(".") or "_"] = (
                "MODEL_TYPE_CONVERT",
                "Only dictionaries may be used in a ModelType",
            )
            return
        ctype = spec.get("type", 1) or 1
        name = spec.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 32:
            errors[prefix + "name"] = (
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 32 in length.",
            )
        elif ctype == 1 and (name != name.lower() or not re.fullmatch(r"[-_'\w]{1,32}", name)):
            errors[prefix + "name"] = (
                "APPLICATION_COMMAND_INVALID_NAME",
                "Command name is invalid",
            )
        if ctype == 1:
            desc = spec.get("description")
            if not isinstance(desc, str) or not 1 <= len(desc) <= 100:
                errors[prefix + "description"] = (
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
        options = spec.get("options") or []
        if len(options) > 25:
            errors[prefix + "options"] = ("BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        seen_optional = False
        names = set()
        for i, opt in enumerate(options):
            p = f"{prefix}options.{i}."
            if opt.get("type") in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP):
                self._validate_command(dict(opt, type=1), p, errors)
                continue
            oname = opt.get("name")
            if not isinstance(oname, str) or not 1 <= len(oname) <= 32:
                errors[p + "name"] = ("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
            elif oname in names:
                errors[p + "name"] = (
                    "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS",
                    "Option name already exists",
                )
            names.add(oname)
            odesc = opt.get("description")
            if not isinstance(odesc, str) or not 1 <= len(odesc) <= 100:
                errors[p + "description"] = (
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
            if opt.get("required"):
                if seen_optional:
                    errors[prefix + "options"] = (
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                seen_optional = True

    def _upsert_command(
        self, scope: str | None, spec: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        existing = next(
            (
                c
                for c in self.commands[scope]
                if c["name"] == spec["name"] and c["type"] == (spec.get("type", 1) or 1)
            ),
            None,
        )
        cmd = P.application_command(
            spec,
            id=existing["id"] if existing else self._snowflake(),
            application_id=self.application_id,
            guild_id=scope,
            version=self._snowflake(),
        )
        if existing:
            self.commands[scope][self.commands[scope].index(existing)] = cmd
        else:
            self.commands[scope].append(cmd)
        return cmd, existing is None

    async def _list_commands(self, req: _Req) -> Any:
        return list(self.commands.get(self._cmd_scope(req), []))

    async def _put_commands(self, req: _Req) -> Any:
        scope = self._cmd_scope(req)
        body = req.json
        if not isinstance(body, list):
            raise ApiError(400, P.form_error({"_": ("BASE_TYPE_LIST", "Must be a list.")}))
        errors: dict[str, tuple[str, str]] = {}
        for i, spec in enumerate(body):
            self._validate_command(spec, f"{i}.", errors)
        keys = [(s.get("name"), s.get("type", 1) or 1) for s in body if isinstance(s, dict)]
        if len(keys) != len(set(keys)):
            errors["_"] = (
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                "Application command names must be unique",
            )
        if sum(1 for _, t in keys if t == 1) > 100:
            errors["_"] = ("BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        if errors:
            raise ApiError(400, P.form_error(errors))
        old = {(c["name"], c["type"]): c for c in self.commands.get(scope, [])}
        self.commands[scope] = []
        for spec in body:
            prev = old.get((spec["name"], spec.get("type", 1) or 1))
            cmd = P.application_command(
                spec,
                id=prev["id"] if prev else self._snowflake(),
                application_id=self.application_id,
                guild_id=scope,
                version=self._snowflake(),
            )
            self.commands[scope].append(cmd)
        self.command_syncs.append({"guild_id": scope, "commands": body, "at": time.time()})
        return list(self.commands[scope])

    async def _post_command(self, req: _Req) -> Any:
        scope = self._cmd_scope(req)
        errors: dict[str, tuple[str, str]] = {}
        self._validate_command(req.json, "", errors)
        if errors:
            raise ApiError(400, P.form_error(errors))
        cmd, created = self._upsert_command(scope, req.json)
        return (201 if created else 200), cmd

    def _command_or_404(self, req: _Req) -> tuple[str | None, dict[str, Any]]:
        scope = self._cmd_scope(req)
        for c in self.commands.get(scope, []):
            if c["id"] == req.params["command_id"]:
                return scope, c
        raise _unknown(10063, "application command")

    async def _get_command(self, req: _Req) -> Any:
        return self._command_or_404(req)[1]

    async def _patch_command(self, req: _Req) -> Any:
        scope, cmd = self._command_or_404(req)
        merged = {
            k: v for k, v in cmd.items() if k not in ("id", "application_id", "version", "guild_id")
        }
        merged.update(req.json or {})
        errors: dict[str, tuple[str, str]] = {}
        self._validate_command(merged, "", errors)
        if errors:
            raise ApiError(400, P.form_error(errors))
        new = P.application_command(
            merged,
            id=cmd["id"],
            application_id=self.application_id,
            guild_id=scope,
            version=self._snowflake(),
        )
        self.commands[scope][self.commands[scope].index(cmd)] = new
        return new

    async def _delete_command(self, req: _Req) -> Any:
        scope, cmd = self._command_or_404(req)
        self.commands[scope].remove(cmd)
        return 204, None

    def _find_command(
        self, name: str, guild_id: str | None, ctype: int
    ) -> tuple[dict[str, Any] | None, bool]:
        """(registered command, is_guild_command)."""
        if guild_id is not None:
            for c in self.commands.get(guild_id, []):
                if c["name"] == name and c["type"] == ctype:
                    return c, True
        for c in self.commands.get(None, []):
            if c["name"] == name and c["type"] == ctype:
                return c, False
        return None, False

    # =====================================================================================
    # interactions
    # =====================================================================================
    def _interaction_context(
        self, user: dict[str, Any], channel: dict[str, Any]
    ) -> tuple[str | None, dict[str, Any] | None, dict[str, Any] | None, int, int, dict[str, Any]]:
        gid = channel.get("guild_id")
        if gid:
            g = self.guilds[gid]
            m = g.members.get(user["id"])
            if m is None:
                raise ValueError(
                    f"user {user['id']} is not a member of guild {gid}; use dc.add_member"
                )
            perms = self.permissions_for(user, channel)
            member_obj = dict(m, permissions=str(perms))
            app_perms = self.permissions_for(self.bot_user, channel)
            ch_obj = dict(self._wire_channel(channel), permissions=str(perms))
            return gid, member_obj, None, perms, app_perms, ch_obj
        ch_obj = dict(channel)
        return None, None, user, 0, Perm.EVERYONE_DEFAULT, ch_obj

    def _build_options(
        self,
        options: dict[str, Any] | list[dict[str, Any]] | None,
        defs: list[dict[str, Any]],
        guild_id: str | None,
        resolved: dict[str, dict[str, Any]],
        focused: str | None,
    ) -> list[dict[str, Any]]:
        if options is None:
            return []
        if isinstance(options, list):
            return options
        by_name = {d.get("name"): d for d in defs or []}
        out: list[dict[str, Any]] = []
        for name, value in options.items():
            d = by_name.get(name, {})
            otype = d.get("type")
            if otype in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP):
                out.append(
                    {
                        "name": name,
                        "type": otype,
                        "options": self._build_options(
                            value or {}, d.get("options") or [], guild_id, resolved, focused
                        ),
                    }
                )
                continue
            if otype is None:
                if isinstance(value, dict) and "filename" in value:
                    otype = OptionType.ATTACHMENT
                elif isinstance(value, dict) and "username" in value:
                    otype = OptionType.USER
                elif isinstance(value, dict) and "type" in value and "id" in value:
                    otype = OptionType.CHANNEL
                elif isinstance(value, bool):
                    otype = OptionType.BOOLEAN
                elif isinstance(value, int):
                    otype = OptionType.INTEGER
                elif isinstance(value, float):
                    otype = OptionType.NUMBER
                else:
                    otype = OptionType.STRING
            opt: dict[str, Any] = {"name": name, "type": otype}
            if otype == OptionType.ATTACHMENT:
                att = value if isinstance(value, dict) else self._attachment_by_id(str(value))
                wire = {k: v for k, v in att.items() if k != "data"}
                wire.setdefault("ephemeral", True)
                resolved.setdefault("attachments", {})[att["id"]] = wire
                opt["value"] = att["id"]
            elif otype in (OptionType.USER, OptionType.MENTIONABLE) and (
                (isinstance(value, dict) and "username" in value) or str(value) in self.users
            ):
                u = self._user(value)
                resolved.setdefault("users", {})[u["id"]] = u
                if guild_id and u["id"] in self.guilds[guild_id].members:
                    m = self.guilds[guild_id].members[u["id"]]
                    resolved.setdefault("members", {})[u["id"]] = dict(
                        {k: v for k, v in m.items() if k != "user"},
                        permissions=str(self.permissions_for(u, guild_id=guild_id)),
                    )
                opt["value"] = u["id"]
            elif otype == OptionType.CHANNEL:
                ch = self._channel(value)
                entry = {
                    k: ch[k]
                    for k in ("id", "name", "type", "parent_id", "thread_metadata", "guild_id")
                    if k in ch
                }
                entry["permissions"] = str(self.permissions_for(self.bot_user, ch))
                resolved.setdefault("channels", {})[ch["id"]] = entry
                opt["value"] = ch["id"]
            elif otype in (OptionType.ROLE, OptionType.MENTIONABLE):
                rid = str(value["id"] if isinstance(value, dict) else value)
                resolved.setdefault("roles", {})[rid] = (
                    self.guilds[guild_id].roles[rid] if guild_id else value
                )
                opt["value"] = rid
            else:
                opt["value"] = value
            if focused == name:
                opt["focused"] = True
            out.append(opt)
        return out

    def _attachment_by_id(self, aid: str) -> dict[str, Any]:
        try:
            return self.attachments[aid]
        except KeyError:
            raise KeyError(f"unknown attachment {aid}") from None

    def _register_interaction(
        self,
        itype: int,
        data: dict[str, Any] | None,
        user: dict[str, Any],
        channel: dict[str, Any],
        *,
        command_name: str | None = None,
        command_type: int | None = None,
        message: dict[str, Any] | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        gid, member_obj, user_obj, _perms, app_perms, ch_obj = self._interaction_context(
            user, channel
        )
        iid = self._snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(90)
        payload = P.interaction(
            iid,
            application_id=self.application_id,
            type=itype,
            token=token,
            data=data,
            channel=ch_obj,
            guild_id=gid,
            member_obj=member_obj,
            user_obj=user_obj,
            app_permissions=app_perms,
            attachment_size_limit=self.upload_limit,
            message_obj=self._wire_message(message, intents=Intent.MESSAGE_CONTENT)
            if message
            else None,
            locale=locale,
        )
        meta = _Interaction(
            id=iid,
            token=token,
            type=itype,
            payload=payload,
            channel_id=channel["id"],
            guild_id=gid,
            user=user,
            created=time.monotonic(),
            command_name=command_name,
            command_type=command_type,
            message_id=message["id"] if message else None,
        )
        self._interactions[iid] = meta
        self._tokens[token] = iid
        self.interactions[iid] = payload
        return payload

    async def send_interaction(
        self,
        name: str,
        options: dict[str, Any] | list[dict[str, Any]] | None = None,
        user: dict | str | None = None,
        channel_id: dict | str | None = None,
        *,
        guild_id: str | None = None,
        resolved_attachments: list[dict[str, Any]] | None = None,
        command_type: int = 1,
        target_id: str | None = None,
        focused: str | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """Dispatch INTERACTION_CREATE (type 2, or 4 autocomplete when ``focused`` names an option).

        ``options`` is ``{name: value}`` (types taken from the synced command, else inferred;
        attachment values are ``add_attachment`` dicts, user values user dicts/ids) or a raw
        list of option objects. Returns the interaction payload (``id``, ``token``...).
        """
        u = self._user(user) if user is not None else self.member
        ch = self._channel(channel_id) if channel_id is not None else self.text_channel
        gid = ch.get("guild_id") if guild_id is None else guild_id
        cmd, is_guild_cmd = self._find_command(name, gid, command_type)
        resolved: dict[str, dict[str, Any]] = {}
        data: dict[str, Any] = {
            "id": cmd["id"] if cmd else self._snowflake(),
            "name": name,
            "type": command_type,
        }
        opts = self._build_options(
            options, (cmd or {}).get("options") or [], gid, resolved, focused
        )
        if opts:
            data["options"] = opts
        for att in resolved_attachments or []:
            resolved.setdefault("attachments", {})[att["id"]] = {
                k: v for k, v in att.items() if k != "data"
            }
        if target_id is not None:
            data["target_id"] = str(target_id)
            if command_type == 3:
                target = self.message_index[str(target_id)]
                resolved.setdefault("messages", {})[target["id"]] = self._wire_message(
                    target, intents=Intent.MESSAGE_CONTENT
                )
            elif command_type == 2:
                tu = self._user(target_id)
                resolved.setdefault("users", {})[tu["id"]] = tu
                if gid and tu["id"] in self.guilds[gid].members:
                    m = self.guilds[gid].members[tu["id"]]
                    resolved.setdefault("members", {})[tu["id"]] = {
                        k: v for k, v in m.items() if k != "user"
                    }
        if resolved:
            data["resolved"] = resolved
        if is_guild_cmd:
            data["guild_id"] = gid
        itype = InteractionType.AUTOCOMPLETE if focused else InteractionType.APPLICATION_COMMAND
        payload = self._register_interaction(
            itype, data, u, ch, command_name=name, command_type=command_type, locale=locale
        )
        await self._emit("INTERACTION_CREATE", lambda s: payload, guild_id=payload.get("guild_id"))
        return payload

    async def send_component_interaction(
        self,
        message: dict | str,
        custom_id: str,
        user: dict | str | None = None,
        *,
        component_type: int = 2,
        values: list[str] | None = None,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE type 3 (button/select) on ``message``."""
        msg = self.message_index[str(message["id"] if isinstance(message, dict) else message)]
        u = self._user(user) if user is not None else self.member
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        payload = self._register_interaction(
            InteractionType.MESSAGE_COMPONENT,
            data,
            u,
            self.channels[msg["channel_id"]],
            message=msg,
        )
        await self._emit("INTERACTION_CREATE", lambda s: payload, guild_id=payload.get("guild_id"))
        return payload

    async def send_modal_submit(
        self,
        custom_id: str,
        fields: dict[str, str],
        user: dict | str | None = None,
        channel_id: dict | str | None = None,
        *,
        message: dict | str | None = None,
        triggered_by: dict | str | None = None,
    ) -> dict[str, Any]:
        """INTERACTION_CREATE type 5 with one text input per ``fields`` entry.

        ``triggered_by`` (interaction dict/id) defaults to the latest interaction answered
        with a modal of this ``custom_id``.
        """
        u = self._user(user) if user is not None else self.member
        ch = self._channel(channel_id) if channel_id is not None else self.text_channel
        data = {
            "custom_id": custom_id,
            "components": [
                {"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]}
                for k, v in fields.items()
            ],
        }
        msg = None
        if message is not None:
            msg = self.message_index[str(message["id"] if isinstance(message, dict) else message)]
        payload = self._register_interaction(InteractionType.MODAL_SUBMIT, data, u, ch, message=msg)
        if triggered_by is None:
            opened = [
                iid
                for iid, resp in self.interaction_responses.items()
                if resp["type"] == CallbackType.MODAL and resp["data"].get("custom_id") == custom_id
            ]
            triggered_by = opened[-1] if opened else None
        elif isinstance(triggered_by, dict):
            triggered_by = triggered_by["id"]
        self._interactions[payload["id"]].triggered_by = triggered_by
        await self._emit("INTERACTION_CREATE", lambda s: payload, guild_id=payload.get("guild_id"))
        return payload

    def _interaction_for_token(self, webhook_id: str, token: str) -> _Interaction:
        if webhook_id != self.application_id or token not in self._tokens:
            raise _unknown(10015, "Webhook")
        meta = self._interactions[self._tokens[token]]
        if meta.token_expired or time.monotonic() - meta.created > self.interaction_token_ttl:
            raise ApiError(401, P.error(50027, "Invalid Webhook Token"))
        return meta

    async def _interaction_callback(self, req: _Req) -> Any:
        iid = req.params["interaction_id"]
        meta = self._interactions.get(iid)
        if meta is None or meta.token != req.params["interaction_token"]:
            raise _unknown(10062, "interaction")
        if meta.ack_expired or time.monotonic() - meta.created > self.interaction_deadline:
            raise _unknown(10062, "interaction")
        if meta.response_type is not None:
            raise ApiError(400, P.error(40060, "Interaction has already been acknowledged."))
        body = req.json if isinstance(req.json, dict) else {}
        ctype = body.get("type")
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        allowed = {
            InteractionType.APPLICATION_COMMAND: {4, 5, 9},
            InteractionType.MESSAGE_COMPONENT: {4, 5, 6, 7, 9},
            InteractionType.MODAL_SUBMIT: {4, 5, 6, 7},
            InteractionType.AUTOCOMPLETE: {8},
        }[meta.type]
        if ctype not in allowed:
            raise ApiError(
                400,
                P.form_error(
                    {
                        "type": (
                            "INTERACTION_RESPONSE_TYPE_INVALID",
                            "Interaction response type is invalid",
                        )
                    }
                ),
            )
        ch = self.channels[meta.channel_id]
        message: dict[str, Any] | None = None
        if ctype == CallbackType.CHANNEL_MESSAGE_WITH_SOURCE:
            message = self._new_message_from_payload(
                ch,
                data,
                req.files,
                author=self.bot_user,
                msg_type=MsgType.CHAT_INPUT_COMMAND
                if meta.command_type in (None, 1)
                else MsgType.CONTEXT_MENU_COMMAND,
                webhook=meta,
            )
            self._store_message(message)
            meta.original_message_id = message["id"]
            self._emit_message("MESSAGE_CREATE", message)
        elif ctype == CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            message = self._new_message_from_payload(
                ch,
                {"flags": data.get("flags", 0) & MsgFlag.EPHEMERAL},
                [],
                author=self.bot_user,
                msg_type=MsgType.CHAT_INPUT_COMMAND
                if meta.command_type in (None, 1)
                else MsgType.CONTEXT_MENU_COMMAND,
                extra_flags=MsgFlag.LOADING,
                webhook=meta,
            )
            self._store_message(message)
            meta.original_message_id = message["id"]
            meta.loading_pending = True
            self._emit_message("MESSAGE_CREATE", message)
        elif ctype in (CallbackType.DEFERRED_UPDATE_MESSAGE, CallbackType.UPDATE_MESSAGE):
            meta.original_message_id = meta.message_id
            if meta.message_id is None:
                raise ApiError(
                    400,
                    P.form_error(
                        {
                            "type": (
                                "INTERACTION_RESPONSE_TYPE_INVALID",
                                "Interaction response type is invalid",
                            )
                        }
                    ),
                )
            message = self.message_index.get(meta.message_id)
            if ctype == CallbackType.UPDATE_MESSAGE and message is not None:
                self._apply_edit(message, data, req.files)
                self._emit_message("MESSAGE_UPDATE", message)
        elif ctype == CallbackType.MODAL:
            errors: dict[str, tuple[str, str]] = {}
            for key in ("custom_id", "title"):
                if not data.get(key):
                    errors[f"data.{key}"] = ("BASE_TYPE_REQUIRED", "This field is required")
            if not data.get("components"):
                errors["data.components"] = ("BASE_TYPE_REQUIRED", "This field is required")
            if errors:
                raise ApiError(400, P.form_error(errors))
        meta.response_type = ctype
        self.interaction_responses[iid] = {
            "type": ctype,
            "data": data,
            "files": [{"filename": u.filename, "data": u.data} for u in req.files],
            "at": time.time(),
            "message_id": message["id"] if message else None,
        }
        if req.query.get("with_response") not in ("1", "true", "True"):
            return 204, None
        info: dict[str, Any] = {"id": iid, "type": meta.type}
        if message is not None and ctype in (4, 5, 7):
            info["response_message_id"] = message["id"]
            info["response_message_loading"] = ctype == 5
            info["response_message_ephemeral"] = bool(message["flags"] & MsgFlag.EPHEMERAL)
        out: dict[str, Any] = {"interaction": info}
        if message is not None and ctype in (4, 7):  # the spec has no resource for 5
            out["resource"] = {
                "type": ctype,
                "message": self._wire_message(message, intents=Intent.MESSAGE_CONTENT),
            }
        return 200, out

    async def _execute_webhook(self, req: _Req) -> Any:
        meta = self._interaction_for_token(req.params["webhook_id"], req.params["webhook_token"])
        if meta.response_type is None or meta.response_type == CallbackType.MODAL:
            raise _unknown(10015, "Webhook")
        payload = req.json if isinstance(req.json, dict) else {}
        ch = self.channels[meta.channel_id]
        original = self.message_index.get(meta.original_message_id or "")
        if meta.loading_pending and original is not None:
            # First followup after a type-5 deferral edits the "thinking" message.
            self._validate_message_payload(payload, req.files, creating=True)
            meta.loading_pending = False
            original["flags"] &= ~MsgFlag.LOADING
            self._apply_edit(
                original, {k: v for k, v in payload.items() if k != "flags"}, req.files
            )
            self._emit_message("MESSAGE_UPDATE", original)
            msg = original
        else:
            msg = self._new_message_from_payload(
                ch,
                payload,
                req.files,
                author=self.bot_user,
                webhook=meta,
                followup_of=meta.original_message_id,
            )
            self._store_message(msg)
            self._emit_message("MESSAGE_CREATE", msg)
        self.followups[meta.token].append(msg)
        if req.query.get("wait") not in ("1", "true", "True"):
            return 204, None
        return self._wire_message(msg, intents=Intent.MESSAGE_CONTENT)

    def _webhook_message(self, req: _Req) -> tuple[_Interaction, dict[str, Any]]:
        meta = self._interaction_for_token(req.params["webhook_id"], req.params["webhook_token"])
        mid = req.params["message_id"]
        if mid == "@original":
            msg = self.message_index.get(meta.original_message_id or "")
        else:
            msg = self.message_index.get(mid)
            ok = msg is not None and (
                msg["id"] == meta.original_message_id
                or any(m["id"] == mid for m in self.followups.get(meta.token, []))
            )
            if not ok:
                msg = None
        if msg is None:
            raise _unknown(10008, "Message")
        return meta, msg

    async def _get_webhook_message(self, req: _Req) -> Any:
        _meta, msg = self._webhook_message(req)
        return self._wire_message(msg, intents=Intent.MESSAGE_CONTENT)

    async def _patch_webhook_message(self, req: _Req) -> Any:
        meta, msg = self._webhook_message(req)
        payload = req.json if isinstance(req.json, dict) else {}
        if msg["id"] == meta.original_message_id and meta.loading_pending:
            meta.loading_pending = False
        msg["flags"] &= ~MsgFlag.LOADING
        self._apply_edit(msg, payload, req.files)
        self._emit_message("MESSAGE_UPDATE", msg)
        return self._wire_message(msg, intents=Intent.MESSAGE_CONTENT)

    async def _delete_webhook_message(self, req: _Req) -> Any:
        _meta, msg = self._webhook_message(req)
        if msg["flags"] & MsgFlag.EPHEMERAL:
            self.message_index.pop(msg["id"], None)
            msg["deleted_at"] = P.iso()
            self.deleted_messages.append(msg)
        else:
            self._remove_message(msg)
        return 204, None

    # =====================================================================================
    # CDN
    # =====================================================================================
    async def _cdn_get(self, request: web.Request) -> web.StreamResponse:
        f = self.cdn.get(request.match_info["attachment_id"])
        if f is None or unquote(request.match_info["filename"]) != f.filename:
            return web.Response(status=404, text="This content is no longer available.")
        f.hits += 1
        if f.fail_status is not None:
            return web.Response(status=f.fail_status, text="error")
        if f.redirect_to is not None:
            raise web.HTTPFound(f.redirect_to)
        headers = {"Cache-Control": "public, max-age=31536000", "Via": "1.1 google"}
        return web.Response(
            status=200,
            body=f.data if request.method == "GET" else None,
            content_type=f.content_type or "application/octet-stream",
            headers=headers,
        )

    async def _cdn_image(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=_PNG_1X1, content_type="image/png")

    # =====================================================================================
    # gateway: events from the test side
    # =====================================================================================
    async def send_message_create(
        self,
        channel_id: dict | str,
        author: dict | str | None = None,
        content: str = "",
        *,
        mentions: list[dict | str] | None = None,
        mention_roles: list[str] | None = None,
        mention_everyone: bool = False,
        attachments: list[dict[str, Any]] | None = None,
        embeds: list[dict[str, Any]] | None = None,
        flags: int | None = None,
        reply_to: dict | str | None = None,
        message_reference: dict[str, Any] | None = None,
        nonce: str | None = None,
        type: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A user posts a message: stored in ``dc.messages`` and sent as MESSAGE_CREATE.

        ``mentions=None`` parses ``<@id>`` from ``content``. ``flags=None`` sets
        IS_VOICE_MESSAGE when the only attachment carries ``duration_secs`` + ``waveform``.
        ``reply_to`` (message dict/id) makes it a reply. Returns the stored message dict.
        """
        ch = self._channel(channel_id)
        a = self._user(author) if author is not None else self.member
        if mentions is None:
            mention_users = [
                self.users[u]
                for u in dict.fromkeys(_MENTION_RE.findall(content))
                if u in self.users
            ]
        else:
            mention_users = [self._user(m) for m in mentions]
        ref = message_reference
        if reply_to is not None:
            target = self.message_index[
                str(reply_to["id"] if isinstance(reply_to, dict) else reply_to)
            ]
            ref = P.message_reference(target["id"], target["channel_id"], ch.get("guild_id"))
            if target["author"]["id"] not in {u["id"] for u in mention_users} and mentions is None:
                mention_users.append(target["author"])
        atts = []
        for att in attachments or []:
            stored = dict(att)
            if "data" not in stored and att["id"] in self.cdn:
                stored["data"] = self.cdn[att["id"]].data
            atts.append(stored)
        if flags is None:
            flags = 0
            if (
                len(atts) == 1
                and atts[0].get("duration_secs") is not None
                and atts[0].get("waveform")
            ):
                flags |= MsgFlag.IS_VOICE_MESSAGE
        if type is None:
            type = MsgType.REPLY if ref is not None else MsgType.DEFAULT
        msg = P.message(
            self._snowflake(),
            ch["id"],
            a,
            content,
            type=type,
            flags=flags,
            mentions=mention_users,
            mention_roles=mention_roles,
            mention_everyone=mention_everyone,
            attachments=atts,
            embeds=embeds,
            message_reference=ref,
            nonce=nonce,
        )
        msg.update(extra)
        msg["edits"] = []
        self._store_message(msg)
        await self._emit(
            "MESSAGE_CREATE",
            lambda s: self._wire_message(msg, intents=s.intents, gateway=True),
            guild_id=ch.get("guild_id"),
            message_event=True,
        )
        return msg

    async def send_message_update(
        self, message: dict | str, content: str | None = None, **changes: Any
    ) -> dict:
        """A user edits their message (MESSAGE_UPDATE)."""
        msg = self.message_index[str(message["id"] if isinstance(message, dict) else message)]
        before = msg["content"]
        if content is not None:
            msg["content"] = content
        msg.update(changes)
        msg["edited_timestamp"] = P.iso()
        msg["edits"].append(
            {
                "timestamp": msg["edited_timestamp"],
                "at": time.time(),
                "content": msg["content"],
                "previous_content": before,
            }
        )
        await self._emit(
            "MESSAGE_UPDATE",
            lambda s: self._wire_message(msg, intents=s.intents, gateway=True),
            guild_id=self.channels[msg["channel_id"]].get("guild_id"),
            message_event=True,
        )
        return msg

    async def send_message_delete(self, message: dict | str) -> None:
        msg = self.message_index[str(message["id"] if isinstance(message, dict) else message)]
        self._remove_message(msg)
        await self.flush()

    async def dispatch(
        self, event: str, data: dict[str, Any], *, guild_id: str | None = None
    ) -> None:
        """Send any raw DISPATCH event to every live session (shard-routed by ``guild_id``)."""
        await self._emit(event, lambda s: data, guild_id=guild_id)

    async def flush(self) -> None:
        """Wait until every queued gateway event has been handed to the sessions."""
        if self._outbox is None:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._outbox.put(("", lambda s: None, fut))
        await fut

    # -- gateway: connection control -------------------------------------------------------
    def live_sessions(self) -> list[GatewaySession]:
        return [s for s in self.sessions.values() if s.conn is not None and not s.invalid]

    async def drop_gateway(
        self, code: int | None = 4000, *, invalidate: bool | None = None
    ) -> None:
        """Close every live gateway connection with ``code`` (None = abort the TCP connection).

        The session stays resumable unless ``invalidate`` (default: True for 4007/4009).
        """
        if invalidate is None:
            invalidate = code in (4007, 4009)
        for conn in list(self._conns):
            session = conn.session
            if session is not None:
                async with session.lock:
                    if session.conn is conn:
                        session.conn = None
                    if invalidate:
                        session.invalid = True
            conn.closed = True
            if code is None:
                transport = conn.request.transport
                if transport is not None:
                    transport.abort()
            else:
                with contextlib.suppress(Exception):
                    await conn.ws.close(code=code, message=b"dropped by test")

    async def send_reconnect(self) -> None:
        """op 7 RECONNECT to every live connection (the client resumes)."""
        for conn in list(self._conns):
            with contextlib.suppress(Exception):
                async with conn.lock:
                    await conn.send({"op": 7, "d": None})

    async def invalidate_session(self, resumable: bool = False) -> None:
        """op 9 INVALID_SESSION to every live connection."""
        for conn in list(self._conns):
            if conn.session is not None and not resumable:
                conn.session.invalid = True
            with contextlib.suppress(Exception):
                async with conn.lock:
                    await conn.send({"op": 9, "d": resumable})

    async def request_heartbeat(self) -> None:
        """op 1 from the server: the client must heartbeat immediately."""
        for conn in list(self._conns):
            with contextlib.suppress(Exception):
                async with conn.lock:
                    await conn.send({"op": 1, "d": None})

    async def wait_for(
        self, predicate: Callable[[], bool], within: float = 5.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"FakeDiscord: timed out waiting for {what or predicate}")
            await asyncio.sleep(0.01)

    async def wait_connected(self, within: float = 5.0) -> GatewaySession:
        """Wait until a session has a live, identified (or resumed) connection."""
        await self.wait_for(lambda: bool(self.live_sessions()), within, "a live gateway session")
        return self.live_sessions()[0]

    async def wait_for_resume(self, count: int = 1, within: float = 5.0) -> None:
        await self.wait_for(
            lambda: self.resume_count >= count and bool(self.live_sessions()), within, "RESUME"
        )

    async def wait_for_identify(self, count: int = 1, within: float = 5.0) -> None:
        await self.wait_for(
            lambda: self.identify_count >= count and bool(self.live_sessions()), within, "IDENTIFY"
        )

    # -- gateway: dispatch machinery -------------------------------------------------------
    def _emit_nowait(
        self,
        event: str,
        builder: Callable[[GatewaySession], Any],
        *,
        guild_id: str | None = None,
        message_event: bool = False,
    ) -> asyncio.Future[None] | None:
        if self._outbox is None:
            return None
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def routed(s: GatewaySession) -> Any:
            if not self._session_wants(s, event, guild_id, message_event):
                return None
            return builder(s)

        self._outbox.put_nowait((event, routed, fut))
        return fut

    async def _emit(
        self,
        event: str,
        builder: Callable[[GatewaySession], Any],
        *,
        guild_id: str | None = None,
        message_event: bool = False,
    ) -> None:
        fut = self._emit_nowait(event, builder, guild_id=guild_id, message_event=message_event)
        if fut is not None:
            await fut

    def _emit_message(self, event: str, msg: dict[str, Any]) -> None:
        """Gateway echo of a message created/edited through REST."""
        if not self.echo_own_messages or msg["flags"] & MsgFlag.EPHEMERAL:
            return
        self._emit_nowait(
            event,
            lambda s: self._wire_message(msg, intents=s.intents, gateway=True),
            guild_id=self.channels[msg["channel_id"]].get("guild_id"),
            message_event=True,
        )

    def _session_wants(
        self, s: GatewaySession, event: str, guild_id: str | None, message_event: bool
    ) -> bool:
        n = s.shard[1]
        target_shard = (int(guild_id) >> 22) % n if guild_id else 0
        if s.shard[0] != target_shard:
            return False
        if event == "INTERACTION_CREATE":
            return True
        if message_event:
            return s.has(Intent.GUILD_MESSAGES if guild_id else Intent.DIRECT_MESSAGES)
        if event.startswith(("GUILD_MEMBER", "GUILD_MEMBERS")):
            return s.has(Intent.GUILD_MEMBERS)
        if event.startswith(("GUILD_", "CHANNEL_", "THREAD_")):
            return s.has(Intent.GUILDS)
        return True

    async def _pump(self) -> None:
        assert self._outbox is not None
        while True:
            event, builder, fut = await self._outbox.get()
            try:
                if event:
                    for session in list(self.sessions.values()):
                        if session.invalid:
                            continue
                        data = builder(session)
                        if data is not None:
                            await self._session_send(session, event, data)
            except Exception as exc:  # pragma: no cover - surfaced to the awaiting test
                if not fut.done():
                    fut.set_exception(exc)
                continue
            if not fut.done():
                fut.set_result(None)

    def _check_event(self, event: str, data: Any) -> None:
        schema = _EVENT_SCHEMAS.get(event)
        if schema is None or self._spec is None:
            return
        self.spec_problems.extend(
            self._spec.check_component(schema, data, label=f"gateway {event}")
        )

    async def _session_send(self, session: GatewaySession, event: str, data: Any) -> None:
        self._check_event(event, data)
        async with session.lock:
            session.seq += 1
            frame = {"op": 0, "t": event, "s": session.seq, "d": data}
            session.buffer.append(frame)
            conn = session.conn
            if conn is not None:
                try:
                    async with conn.lock:
                        await conn.send(frame)
                except Exception:  # connection dying: the frame stays buffered for RESUME
                    if session.conn is conn:
                        session.conn = None

    # -- gateway: payloads -----------------------------------------------------------------
    def _guild_create(self, g: _Guild, s: GatewaySession) -> dict[str, Any]:
        members = list(g.members.values())
        if not s.has(Intent.GUILD_MEMBERS):
            members = [g.members[self.application_id]]
        channels = [
            {k: v for k, v in c.items() if k != "guild_id"}
            for c in self.channels.values()
            if c.get("guild_id") == g.id and c["type"] not in ChannelType.THREADS
        ]
        threads = []
        for th in self.threads.values():
            if th["guild_id"] != g.id or th["thread_metadata"].get("archived"):
                continue
            if not self.permissions_for(self.bot_user, th) & Perm.VIEW_CHANNEL:
                continue
            if th[
                "type"
            ] == ChannelType.PRIVATE_THREAD and self.application_id not in self.thread_members.get(
                th["id"], {}
            ):
                continue
            threads.append(self._wire_channel(th))
        data = dict(g.data)
        data.update(
            {
                "roles": list(g.roles.values()),
                "channels": channels,
                "threads": threads,
                "members": members,
                "member_count": len(g.members),
                "joined_at": g.members[self.application_id]["joined_at"],
                "large": len(g.members) > 250,
                "unavailable": False,
                "lazy": True,
                "voice_states": [],
                "presences": [],
                "stage_instances": [],
                "guild_scheduled_events": [],
                "soundboard_sounds": [],
                "embedded_activities": [],
                "application_command_counts": {},
                "premium_subscription_count": 0,
            }
        )
        return data

    def _ready(self, s: GatewaySession) -> dict[str, Any]:
        guilds = [
            {"id": gid, "unavailable": True}
            for gid in self.guilds
            if (int(gid) >> 22) % s.shard[1] == s.shard[0]
        ]
        data: dict[str, Any] = {
            "v": 10,
            "user": dict(P.current_user(self.bot_user), bot=True),
            "guilds": guilds,
            "session_id": s.id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "application": {"id": self.application_id, "flags": self.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "user_settings": {},
            "geo_ordered_rtc_regions": ["fake-local"],
            "auth": {},
            "_trace": ['["fake-discord-gateway",{"micros":0}]'],
        }
        if "shard" in s.identify:
            data["shard"] = list(s.shard)
        return data

    # -- gateway: websocket handler --------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        q = request.query
        compress = q.get("compress")
        conn = _Conn(ws=ws, request=request, path=request.path, compress=compress)
        if compress == "zlib-stream":
            conn.compressor = zlib.compressobj()
        self._conns.add(conn)
        self.gateway_connections.append(
            {
                "path": request.path,
                "v": q.get("v"),
                "encoding": q.get("encoding"),
                "compress": compress,
                "user_agent": request.headers.get("User-Agent"),
                "at": time.time(),
            }
        )
        try:
            if q.get("v") not in (None, "9", "10"):
                await ws.close(code=4012, message=b"Invalid API version")
                return ws
            if q.get("encoding", "json") != "json":
                await ws.close(code=4002, message=b"Error while decoding payload.")
                return ws
            async with conn.lock:
                await conn.send(
                    {
                        "op": 10,
                        "d": {
                            "heartbeat_interval": self.heartbeat_interval,
                            "_trace": ['["fake-discord",{}]'],
                        },
                        "s": None,
                        "t": None,
                    }
                )
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    raw = (
                        msg.data
                        if isinstance(msg.data, str)
                        else msg.data.decode("utf-8", "replace")
                    )
                    try:
                        frame = json.loads(raw)
                    except ValueError:
                        await ws.close(code=4002, message=b"Error while decoding payload.")
                        break
                    try:
                        if not await self._on_frame(conn, frame):
                            break
                    except (ConnectionError, RuntimeError):  # peer went away mid-reply
                        break
                    except Exception as exc:  # a bug in the fake
                        self.internal_errors.append(f"gateway: {type(exc).__name__}: {exc}")
                        await ws.close(code=4000, message=b"fake internal error")
                        break
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            conn.closed = True
            self._conns.discard(conn)
            s = conn.session
            if s is not None and s.conn is conn:
                s.conn = None
        return ws

    async def _close(self, conn: _Conn, code: int, reason: str) -> bool:
        conn.closed = True
        await conn.ws.close(code=code, message=reason.encode())
        return False

    async def _on_frame(self, conn: _Conn, frame: Any) -> bool:
        if not isinstance(frame, dict) or "op" not in frame:
            return await self._close(conn, 4002, "Error while decoding payload.")
        op, d = frame.get("op"), frame.get("d")
        logged = dict(frame)
        self.gateway_received.append(logged)
        if op == 1:
            self.heartbeat_count += 1
            if self.ack_heartbeats:
                async with conn.lock:
                    await conn.send({"op": 11, "d": None, "s": None, "t": None})
            return True
        if op == 2:
            return await self._on_identify(conn, d or {})
        if op == 6:
            return await self._on_resume(conn, d or {})
        if conn.session is None:
            return await self._close(conn, 4003, "Not authenticated.")
        if op == 3:
            self.presence_updates.append(d)
            return True
        if op == 4:  # voice state update: not modelled
            return True
        if op == 8:
            await self._on_request_members(conn, d or {})
            return True
        return await self._close(conn, 4001, "Unknown opcode.")

    async def _on_identify(self, conn: _Conn, d: dict[str, Any]) -> bool:
        if conn.session is not None:
            return await self._close(conn, 4005, "Already authenticated.")
        self.identify_payloads.append(d)
        if d.get("token") != self.token:
            return await self._close(conn, 4004, "Authentication failed.")
        shard = d.get("shard") or [0, 1]
        if not isinstance(shard, list) or len(shard) != 2 or not 0 <= int(shard[0]) < int(shard[1]):
            return await self._close(conn, 4010, "Invalid shard.")
        intents = d.get("intents")
        if not isinstance(intents, int) or intents < 0 or intents >= (1 << 26):
            return await self._close(conn, 4013, "Invalid intent(s).")
        granted = (
            (Intent.MESSAGE_CONTENT if self.message_content else 0)
            | (Intent.GUILD_MEMBERS if self.members_intent else 0)
            | (Intent.GUILD_PRESENCES if self.presences_intent else 0)
        )
        if intents & Intent.PRIVILEGED & ~granted:
            return await self._close(conn, 4014, "Disallowed intent(s).")
        self.identify_count += 1
        session = GatewaySession(
            id=secrets.token_hex(16),
            intents=intents,
            shard=(int(shard[0]), int(shard[1])),
            identify=d,
        )
        self.sessions[session.id] = session
        conn.session = session
        async with session.lock:
            for event, data in [("READY", self._ready(session))] + [
                ("GUILD_CREATE", self._guild_create(g, session))
                for gid, g in self.guilds.items()
                if (int(gid) >> 22) % session.shard[1] == session.shard[0]
                and session.has(Intent.GUILDS)
            ]:
                session.seq += 1
                frame = {"op": 0, "t": event, "s": session.seq, "d": data}
                session.buffer.append(frame)
                async with conn.lock:
                    await conn.send(frame)
            session.conn = conn
        return True

    async def _on_resume(self, conn: _Conn, d: dict[str, Any]) -> bool:
        if conn.session is not None:
            return await self._close(conn, 4005, "Already authenticated.")
        if d.get("token") != self.token:
            return await self._close(conn, 4004, "Authentication failed.")
        session = self.sessions.get(str(d.get("session_id")))
        seq = d.get("seq")
        if session is None or session.invalid or not isinstance(seq, int) or seq > session.seq:
            await asyncio.sleep(0.05)  # Discord waits 1-5 s; keep tests fast
            async with conn.lock:
                await conn.send({"op": 9, "d": False, "s": None, "t": None})
            return True
        self.resume_count += 1
        conn.session = session
        async with session.lock:
            old = session.conn
            if old is not None and old is not conn:
                old.closed = True
                with contextlib.suppress(Exception):
                    await old.ws.close(code=4000, message=b"session resumed elsewhere")
            for frame in session.buffer:
                if frame["s"] > seq:
                    async with conn.lock:
                        await conn.send(frame)
            session.seq += 1
            resumed = {
                "op": 0,
                "t": "RESUMED",
                "s": session.seq,
                "d": {"_trace": ['["fake-discord",{}]']},
            }
            session.buffer.append(resumed)
            async with conn.lock:
                await conn.send(resumed)
            session.conn = conn
        return True

    async def _on_request_members(self, conn: _Conn, d: dict[str, Any]) -> None:
        gids = d.get("guild_id")
        gids = gids if isinstance(gids, list) else [gids]
        session = conn.session
        assert session is not None
        for gid in gids:
            g = self.guilds.get(str(gid))
            if g is None:
                continue
            members = list(g.members.values())
            if d.get("user_ids"):
                wanted = {
                    str(u)
                    for u in (d["user_ids"] if isinstance(d["user_ids"], list) else [d["user_ids"]])
                }
                members = [m for m in members if m["user"]["id"] in wanted]
            elif d.get("query"):
                members = [m for m in members if m["user"]["username"].startswith(d["query"])]
            elif not session.has(Intent.GUILD_MEMBERS):
                await self._close(conn, 4013, "Invalid intent(s).")
                return
            if d.get("limit"):
                members = members[: d["limit"]]
            data: dict[str, Any] = {
                "guild_id": g.id,
                "members": members,
                "chunk_index": 0,
                "chunk_count": 1,
            }
            if d.get("nonce") is not None:
                data["nonce"] = d["nonce"]
            if d.get("presences"):
                data["presences"] = []
            await self._session_send(session, "GUILD_MEMBERS_CHUNK", data)
