"""The Discord adapter: a discord.py client, its events turned into core events, and the outbox
that delivers `Reply` values and streamed answers back.

Every message the bot can see is handed to the core with its facts (mention, DM, thread, the
bot's membership of the thread, reply to the bot); the core decides what it answers
(`bot.core.addressing`): a mention in a guild channel (the channel is the conversation), a
thread (its own conversation; no mention needed once the bot started, joined or answered in
it), and DMs. Slash commands are deferred at once and answered with interaction follow-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl

from adapters.discord.commands import (
    EPHEMERAL_COMMANDS,
    HASH_FILE,
    TEXT_OPTIONS,
    build_tree,
    sync_if_changed,
)
from adapters.discord.history import DiscordHistory
from adapters.discord.normalise import (
    DM_WORKSPACE,
    PLATFORM,
    arrived_empty,
    command_from_interaction,
    inbound_from_message,
    is_from_bot,
)
from adapters.discord.stream import (
    EDIT_INTERVAL,
    FIRST_DELAY,
    PEOPLE_ONLY,
    TYPING_AFTER,
    ChannelThrottle,
    DiscordStream,
)
from adapters.discord.voice import silence_voice_warnings
from bot.core.config import ConfigError, Settings
from bot.core.delivery import DeliveryFailed
from bot.core.types import Actor, ConversationKey, OutFile, Reply
from bot.text.mentions import MENTIONS
from bot.text.sanitise import safe_filename
from bot.text.split import DISCORD

if TYPE_CHECKING:
    from bot.core.dispatcher import Dispatcher

log = logging.getLogger(__name__)

READY_NOTICE = 30.0  # seconds between "still connecting" log lines at start-up
# discord.py reports ready this long after the last GUILD_CREATE (its default is 2 s); guilds
# arrive back to back, and the bot needs no member chunking, so half a second is plenty
GUILD_READY_TIMEOUT = 0.5
CLOSE_READY_WAIT = 2.0  # seconds at most that `close` waits for discord.py's own `ready`
INTERACTION_TTL = 14 * 60  # a follow-up token lives 15 minutes; keep a margin
MAX_FILES_PER_MESSAGE = 10
SHARDS_ENV = "SWITCHBOARD_DISCORD_SHARDS"
SHARD_IDS_ENV = "SWITCHBOARD_DISCORD_SHARD_IDS"


def apply_endpoints(settings: Settings) -> None:
    """Point discord.py at `DISCORD_API_URL` (REST, webhooks, interaction follow-ups) and
    `DISCORD_GATEWAY_URL`. Both are class attributes of discord.py 2.7 (a private seam: the
    version is pinned and the seam covered by a test); set once, before login."""
    discord.http.Route.BASE = settings.discord_api_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


def wanted_intents(message_content: bool = True) -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = message_content
    return intents


def message_content_granted(flags: Any) -> bool:
    """Whether the application may receive message content (the portal toggle): the full or
    the `_limited` (unverified apps, < 100 servers) gateway flag."""
    return bool(
        getattr(flags, "gateway_message_content", False)
        or getattr(flags, "gateway_message_content_limited", False)
    )


def shard_setting(value: str | None) -> int | bool | None:
    """`SWITCHBOARD_DISCORD_SHARDS`: unset/empty → False (no sharding), `auto` → None (Discord
    recommends the count), `N` → N."""
    if value is None or not value.strip():
        return False
    value = value.strip().lower()
    if value == "auto":
        return None
    try:
        count = int(value)
    except ValueError:
        raise ConfigError(f"{SHARDS_ENV} must be auto or a number of shards") from None
    if count < 1:
        raise ConfigError(f"{SHARDS_ENV} must be at least 1")
    return count


def shard_ids_setting(value: str | None, count: int | bool | None) -> list[int] | None:
    """`SWITCHBOARD_DISCORD_SHARD_IDS`: this process's shards ("0,1", "2-3"); None = all of
    them. Needs a number of shards in `SWITCHBOARD_DISCORD_SHARDS` (the processes must agree
    on it), and each id must be below it."""
    if value is None or not value.strip():
        return None
    if not isinstance(count, int) or isinstance(count, bool):
        raise ConfigError(
            f"{SHARD_IDS_ENV} needs {SHARDS_ENV} set to the total number of shards (not auto)"
        )
    ids: set[int] = set()
    try:
        for part in value.replace(" ", "").split(","):
            if not part:
                continue
            low, _, high = part.partition("-")
            ids.update(range(int(low), int(high or low) + 1))
    except ValueError:
        raise ConfigError(f"{SHARD_IDS_ENV} must list shard ids like 0,1 or 2-3") from None
    if not ids or min(ids) < 0 or max(ids) >= count:
        raise ConfigError(f"{SHARD_IDS_ENV} must list ids from 0 to {count - 1} ({SHARDS_ENV})")
    return sorted(ids)


def max_attachment_bytes(settings: Settings) -> int:
    return max(1, int(settings.discord_max_attachment_mb * 1024 * 1024))


@dataclass
class _Pending:
    """A deferred slash command waiting for its reply."""

    interaction: discord.Interaction
    event_id: str
    key: ConversationKey
    actor_id: str
    ephemeral: bool
    created: float = field(default_factory=time.monotonic)


class _Hooks:
    """The discord.py events the adapter listens to (mixed into Client / AutoShardedClient)."""

    adapter: DiscordAdapter

    async def setup_hook(self) -> None:
        await self.adapter._setup(self)  # type: ignore[arg-type]

    async def on_ready(self) -> None:
        self.adapter._ready.set()
        self.adapter.report_connected(True)

    async def on_guild_available(self, guild: discord.Guild) -> None:
        """Every server READY listed has arrived (one gateway connection): the cache is complete,
        so the adapter is ready now rather than when discord.py's `ready` comes,
        `guild_ready_timeout` after the last server (it waits in case more are coming)."""
        adapter = self.adapter
        if adapter._ready.is_set() or adapter._shards is not False:
            return
        if all(not known.unavailable for known in self.guilds):  # type: ignore[attr-defined]
            adapter._ready.set()
            adapter.report_connected(True)

    async def on_resumed(self) -> None:
        self.adapter.report_connected(True)

    async def on_disconnect(self) -> None:
        self.adapter.report_connected(False, "reconnecting")

    async def on_message(self, message: discord.Message) -> None:
        await self.adapter._on_message(message)


class _Client(_Hooks, discord.Client):
    pass


class _ShardedClient(_Hooks, discord.AutoShardedClient):
    pass


class DiscordAdapter:
    name = "Discord"

    def __init__(
        self,
        settings: Settings,
        dispatcher: Dispatcher,
        *,
        guild_ready_timeout: float = GUILD_READY_TIMEOUT,
        edit_interval: float = EDIT_INTERVAL,
        first_delay: float = FIRST_DELAY,
        typing_after: float = TYPING_AFTER,
    ) -> None:
        self._settings = settings
        self._dispatcher = dispatcher
        self._guild_ready_timeout = guild_ready_timeout
        self._first_delay = first_delay
        self._typing_after = typing_after
        self.throttle = ChannelThrottle(edit_interval)
        self.max_attachment_bytes = max_attachment_bytes(settings)
        self.history = DiscordHistory(self.max_attachment_bytes)
        self._shards = shard_setting(settings.discord_shards)
        self._shard_ids = shard_ids_setting(settings.discord_shard_ids, self._shards)
        self.client: discord.Client | None = None
        self.tree: discord.app_commands.CommandTree | None = None
        self.message_content: bool | None = None
        self.commands_synced: bool | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[tuple[ConversationKey, str], deque[_Pending]] = {}
        self._pending_by_event: dict[str, _Pending] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def hash_path(self) -> Any:
        return self._settings.state_dir / HASH_FILE

    def _make_client(self) -> discord.Client:
        silence_voice_warnings()
        options: dict[str, Any] = {
            "intents": wanted_intents(),
            "guild_ready_timeout": self._guild_ready_timeout,
            "allowed_mentions": PEOPLE_ONLY,
            # no message cache: the bot never looks messages up, and the cache would parse
            # and keep every message of every channel (its own streamed edits too)
            "max_messages": None,
        }
        client: discord.Client
        if self._shards is False:
            client = _Client(**options)
        else:
            client = _ShardedClient(shard_count=self._shards, shard_ids=self._shard_ids, **options)
        client.adapter = self  # type: ignore[attr-defined]
        return client

    async def start(self) -> None:
        secret = self._settings.discord_token
        token = secret.get_secret_value().strip() if secret is not None else ""
        if not token:
            raise ConfigError("DISCORD_TOKEN is not set")
        apply_endpoints(self._settings)
        self.client = self._make_client()
        self.tree = build_tree(self.client, self._on_command)
        self._dispatcher.register_outbox(PLATFORM, self)
        self._task = asyncio.create_task(self.client.start(token), name="discord-client")
        ready = asyncio.create_task(self._ready.wait())
        waited = 0.0
        while True:
            done, _ = await asyncio.wait(
                {self._task, ready}, timeout=READY_NOTICE, return_when=asyncio.FIRST_COMPLETED
            )
            if done:
                break
            waited += READY_NOTICE
            log.warning("discord: still connecting after %.0f s (gateway reachable?)", waited)
        if not ready.done():
            ready.cancel()
            error = self._task.exception() if not self._task.cancelled() else None
            await self.client.close()
            raise ConfigError(_start_failure(error)) from None
        self._task.add_done_callback(_log_client_end)
        user = self.client.user
        name = f"{user.name}#{user.discriminator}" if user is not None else "?"
        log.info("discord: connected as %s in %d servers", name, len(self.client.guilds))

    def report_connected(self, connected: bool, detail: str = "") -> None:
        """The gateway's state, reported to the core (`/readyz`, `/status`)."""
        self._dispatcher.presence.report(self.name, connected, detail)

    async def close(self) -> None:
        self.report_connected(False, "stopped")
        client = self.client
        if client is not None and self._ready.is_set() and not client.is_ready():
            # Ready early (`on_guild_available`): let discord.py finish its own start-up first,
            # so that its `ready` tasks are not left pending when the loop ends.
            with contextlib.suppress(TimeoutError):
                wait = min(self._guild_ready_timeout, CLOSE_READY_WAIT) + 0.5
                await asyncio.wait_for(client.wait_until_ready(), wait)
        if client is not None:
            await client.close()
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 5)

    async def _setup(self, client: discord.Client) -> None:
        """After login, before the gateway: pick the intents the application has, sync commands."""
        app = client.application
        self.message_content = message_content_granted(getattr(app, "flags", None))
        # The IDENTIFY payload reads the connection state's intents when it is sent.
        client._connection._intents.message_content = self.message_content
        if not self.message_content:
            log.warning(
                "discord: the Message Content intent is off for this application: answering "
                "mentions, DMs and slash commands only (enable it in the Developer Portal, Bot "
                "page, to answer thread messages without a mention)"
            )
        if self.tree is not None and client.application_id is not None:
            self.commands_synced = await sync_if_changed(
                self.tree, client.application_id, self.hash_path
            )

    # -- inbound ------------------------------------------------------------------------------

    async def _on_message(self, message: discord.Message) -> None:
        try:
            client = self.client
            me = client.user.id if client is not None and client.user is not None else None
            is_self, other_bot = is_from_bot(message, me)
            if is_self or other_bot:
                return
            guild = message.guild
            role = guild.self_role if guild is not None else None
            role_id = role.id if role is not None else None
            event = inbound_from_message(
                message, me, bot_role_id=role_id, max_bytes=self.max_attachment_bytes
            )
            if event is None or arrived_empty(event, message, me):
                return
            MENTIONS.note(event.key, event.text, event.actor.id)  # what the model is shown
            if not event.addressing.direct:  # earlier messages, read if the core asks
                event = dataclasses.replace(event, context=self.history.fetcher(message, me))
            await self._dispatcher.submit(event)
        except Exception as exc:
            log.error("discord: handling a message failed: %s", type(exc).__name__)
            log.debug("traceback", exc_info=exc)

    async def _on_command(self, interaction: discord.Interaction, name: str) -> None:
        ephemeral = name in EPHEMERAL_COMMANDS
        try:
            await interaction.response.defer(thinking=True, ephemeral=ephemeral)
        except discord.HTTPException as exc:
            log.warning("discord: could not acknowledge /%s in time: HTTP %s", name, exc.status)
            return
        try:
            call = command_from_interaction(
                interaction,
                name,
                text_options=TEXT_OPTIONS.get(name, ()),
                max_bytes=self.max_attachment_bytes,
            )
            if call is None:
                await interaction.followup.send(
                    "Sorry, I could not read that command.", ephemeral=True
                )
                return
            MENTIONS.note(call.key, call.text, call.actor.id)
            pending = _Pending(interaction, call.event_id, call.key, call.actor.id, ephemeral)
            self._add_pending(pending)
            if not await self._dispatcher.submit(call):
                self._drop_pending(pending)
                await interaction.followup.send(
                    "I am not taking commands right now (restarting?). Please try again shortly.",
                    ephemeral=True,
                )
        except Exception as exc:
            log.error("discord: handling /%s failed: %s", name, type(exc).__name__)
            log.debug("traceback", exc_info=exc)

    # -- pending interactions -----------------------------------------------------------------

    def _add_pending(self, pending: _Pending) -> None:
        self._prune_pending()
        self._pending.setdefault((pending.key, pending.actor_id), deque()).append(pending)
        self._pending_by_event[pending.event_id] = pending

    def _drop_pending(self, pending: _Pending) -> None:
        self._pending_by_event.pop(pending.event_id, None)
        queue = self._pending.get((pending.key, pending.actor_id))
        if queue is not None:
            with contextlib.suppress(ValueError):
                queue.remove(pending)
            if not queue:
                del self._pending[(pending.key, pending.actor_id)]

    def _prune_pending(self) -> None:
        cutoff = time.monotonic() - INTERACTION_TTL
        for pending in [p for p in self._pending_by_event.values() if p.created < cutoff]:
            self._drop_pending(pending)

    def _take_pending(self, reply: Reply) -> _Pending | None:
        """The deferred command `reply` answers: named by `in_reply_to` (its event id), or the
        oldest one of this actor in this conversation when the reply names no message."""
        self._prune_pending()
        pending = self._pending_by_event.get(reply.in_reply_to) if reply.in_reply_to else None
        if pending is None and not reply.in_reply_to:
            queue = self._pending.get((reply.key, reply.actor_id))
            pending = queue[0] if queue else None
        if pending is not None:
            self._drop_pending(pending)
        return pending

    # -- outbox -------------------------------------------------------------------------------

    def _channel(self, key: ConversationKey) -> Any:
        assert self.client is not None, "the Discord adapter is not started"
        channel_id = int(key.thread or key.channel)  # a thread is a channel of its own
        channel = self.client.get_channel(channel_id)
        if channel is not None:
            return channel
        if key.workspace == DM_WORKSPACE:
            return self.client.get_partial_messageable(channel_id, type=discord.ChannelType.private)
        return self.client.get_partial_messageable(channel_id, guild_id=int(key.workspace))

    def open_stream(self, key: ConversationKey, in_reply_to: str, actor: Actor) -> DiscordStream:
        channel = self._channel(key)
        reference = None
        if in_reply_to.isdigit():
            reference = discord.MessageReference(
                message_id=int(in_reply_to),
                channel_id=channel.id,
                guild_id=None if key.workspace == DM_WORKSPACE else int(key.workspace),
                fail_if_not_exists=False,
            )
        return DiscordStream(
            channel,
            reference=reference,
            throttle=self.throttle,
            first_delay=self._first_delay,
            typing_after=self._typing_after,
            key=key,
        )

    async def send(self, reply: Reply) -> None:
        """Deliver `reply`. discord.py already retries 429s (honouring Retry-After), 5xx and
        dropped connections; what still fails raises `DeliveryFailed` with Discord's reason."""
        pending = self._take_pending(reply)
        try:
            if pending is not None and not pending.interaction.is_expired():
                await self._send_followup(pending, reply)
            elif reply.ephemeral and reply.key.workspace != DM_WORKSPACE:
                await self._send_privately(reply)
            else:
                await self._send_to_channel(reply)
        except discord.HTTPException as exc:
            raise DeliveryFailed(f"discord: {_http_reason(exc)}") from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DeliveryFailed(f"discord: {type(exc).__name__}") from exc

    async def _send_followup(self, pending: _Pending, reply: Reply) -> None:
        interaction = pending.interaction
        files, notes = _to_files(reply.files, interaction.filesize_limit)
        if reply.ephemeral and not pending.ephemeral:
            # The first follow-up would fill the public "thinking…" message: remove it so the
            # follow-up can be private.
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
        text = reply.text if reply.ephemeral else MENTIONS.neutralise(reply.key, reply.text)
        messages = _messages(text, notes, files)
        if not messages:  # nothing to say: do not leave "thinking…" behind
            with contextlib.suppress(discord.HTTPException):
                await interaction.delete_original_response()
            return
        for content, batch in messages:
            kwargs: dict[str, Any] = {
                "ephemeral": reply.ephemeral,
                "allowed_mentions": PEOPLE_ONLY,
                "suppress_embeds": True,
            }
            if content:
                kwargs["content"] = content
            if batch:
                kwargs["files"] = batch
            await interaction.followup.send(**kwargs)

    async def _send_privately(self, reply: Reply) -> None:
        """A private reply with no live interaction to carry it (the command was replayed after
        a restart, or its 15-minute token ran out): a DM to the member who asked, never the
        channel. Without a member to write to, it is not posted at all."""
        assert self.client is not None, "the Discord adapter is not started"
        if not reply.actor_id.isdigit():
            raise DeliveryFailed("discord: a private reply without a member to send it to")
        user_id = int(reply.actor_id)
        user = self.client.get_user(user_id) or await self.client.fetch_user(user_id)
        channel = await user.create_dm()
        files, notes = _to_files(reply.files, discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES)
        where = f"(Your private reply from <#{reply.key.thread or reply.key.channel}>)\n"
        for content, batch in _messages(where + reply.text, notes, files):
            kwargs: dict[str, Any] = {"allowed_mentions": PEOPLE_ONLY}
            if content:
                kwargs["content"] = content
            if batch:
                kwargs["files"] = batch
            await channel.send(**kwargs)

    async def _send_to_channel(self, reply: Reply) -> None:
        channel = self._channel(reply.key)
        guild = getattr(channel, "guild", None)
        limit = (
            guild.filesize_limit
            if guild is not None
            else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
        )
        files, notes = _to_files(reply.files, limit)
        reference = None
        if reply.in_reply_to.isdigit():
            reference = discord.MessageReference(
                message_id=int(reply.in_reply_to),
                channel_id=int(channel.id),
                fail_if_not_exists=False,
            )
        text = MENTIONS.neutralise(reply.key, reply.text)
        for content, batch in _messages(text, notes, files):
            kwargs: dict[str, Any] = {"allowed_mentions": PEOPLE_ONLY, "suppress_embeds": True}
            if content:
                kwargs["content"] = content
            if batch:
                kwargs["files"] = batch
            if reference is not None:
                kwargs["reference"] = reference
                reference = None
            await channel.send(**kwargs)


def _to_files(files: tuple[OutFile, ...], limit: int) -> tuple[list[discord.File], list[str]]:
    """`discord.File`s for the files within `limit`; a note for each one over it."""
    out: list[discord.File] = []
    notes: list[str] = []
    for f in files:
        if len(f.data) > limit:
            notes.append(
                f"({f.name} is {len(f.data) / 1_048_576:.1f} MB, over the "
                f"{limit / 1_048_576:.0f} MB upload limit here, so it is not attached.)"
            )
            continue
        out.append(discord.File(io.BytesIO(f.data), filename=safe_filename(f.name)))
    return out, notes


def _messages(
    text: str, notes: list[str], files: list[discord.File]
) -> list[tuple[str, list[discord.File]]]:
    """The messages for one reply, in order: the text split at 2,000 characters, files (at most
    ten per message) on the last text part and further messages as needed."""
    body = "\n\n".join(part for part in (text.strip(), *notes) if part)
    parts = DISCORD.split(body) if body else []
    batches = [
        files[i : i + MAX_FILES_PER_MESSAGE] for i in range(0, len(files), MAX_FILES_PER_MESSAGE)
    ]
    out: list[tuple[str, list[discord.File]]] = [(part, []) for part in parts]
    for index, batch in enumerate(batches):
        if index == 0 and out:
            out[-1] = (out[-1][0], batch)
        else:
            out.append(("", batch))
    return out


def _http_reason(exc: discord.HTTPException) -> str:
    """Discord's status, error code and message (e.g. "HTTP 403 code 50013: Missing Permissions")."""
    return f"HTTP {exc.status} code {exc.code}: {exc.text[:200]}".rstrip(": ")


def _start_failure(error: BaseException | None) -> str:
    if isinstance(error, discord.LoginFailure):
        return "Discord rejected DISCORD_TOKEN (check the bot token in the Developer Portal)"
    if isinstance(error, discord.PrivilegedIntentsRequired):
        return "Discord refused a privileged intent; enable it in the Developer Portal"
    if error is None:
        return "the Discord client stopped before it was ready"
    return f"could not connect to Discord: {type(error).__name__}"


def _log_client_end(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("discord: the client stopped: %s", type(error).__name__)
