"""Pure tests of the Discord normalisers, invite URL and small adapter helpers (no network).
Message/interaction stand-ins carry the attributes discord.py objects have; the wire tests in
test_discord_adapter.py run the same functions on real discord.py objects."""

from __future__ import annotations

import asyncio
import base64
import time
from types import SimpleNamespace as NS
from typing import Any
from urllib.parse import parse_qs, urlsplit

import discord
import pytest

from adapters.discord.adapter import (
    message_content_granted,
    shard_ids_setting,
    shard_setting,
    wanted_intents,
)
from adapters.discord.files import DiscordCdn
from adapters.discord.invite import PERMISSIONS, build_invite_url, client_id_from_token
from adapters.discord.normalise import (
    arrived_empty,
    attachment_kind,
    bot_in_thread,
    command_from_interaction,
    conversation_key,
    inbound_from_message,
    is_platform_admin,
    strip_mentions,
)
from adapters.discord.stream import ChannelThrottle
from bot.core.addressing import NO, YES, Verdict, verdict
from bot.core.config import ConfigError
from bot.core.errors import UserError
from bot.core.types import Addressing, ConversationKey
from testing.fakes.discord_fake import FakeDiscord

BOT = 1_100_000_000_000_000_001
GUILD = NS(id=2_200_000_000_000_000_002)


class FakeAttachment:
    """The attributes of a discord.py `Attachment`; its bytes are fetched from `url`."""

    def __init__(self, data: bytes, *, size: int | None = None, voice: bool = False, **kw: Any):
        self.id = kw.pop("id", 42)
        self.url = kw.pop("url", "http://127.0.0.1/cdn/x")
        self.filename = kw.pop("filename", "file.bin")
        self.content_type = kw.pop("content_type", None)
        self.size = len(data) if size is None else size
        self._data = data
        self._voice = voice

    def is_voice_message(self) -> bool:
        return self._voice


def channel(cid: int = 3_300, *, guild: Any = GUILD, type: int = 0, perms: Any = None) -> NS:
    return NS(
        id=cid,
        guild=guild,
        type=discord.ChannelType(type),
        permissions_for=lambda member: perms or discord.Permissions.none(),
    )


def message(content: str = "", **kw: Any) -> NS:
    base: dict[str, Any] = {
        "id": 5_500,
        "type": discord.MessageType.default,
        "channel": channel(),
        "author": NS(id=7_700, display_name="Ann", bot=False),
        "content": content,
        "mentions": [],
        "raw_mentions": [],
        "raw_role_mentions": [],
        "attachments": [],
        "flags": discord.MessageFlags(),
        "webhook_id": None,
        "reference": None,
    }
    base.update(kw)
    return NS(**base)


def test_conversation_keys() -> None:
    assert conversation_key(channel(9)) == ConversationKey("discord", str(GUILD.id), "9", "")
    thread = channel(10, type=11)
    assert conversation_key(thread) == ConversationKey("discord", str(GUILD.id), "10", "")
    dm = NS(id=11, type=discord.ChannelType.private)
    assert conversation_key(dm) == ConversationKey("discord", "@dm", "11", "")
    assert conversation_key(None) is None and conversation_key(NS(id="nope")) is None


def test_mention_is_stripped_and_event_built() -> None:
    msg = message(f"<@{BOT}> what is <@!{BOT}> WAL?", mentions=[NS(id=BOT)], raw_mentions=[BOT])
    event = inbound_from_message(msg, BOT)
    assert event is not None and event.addressing.mentioned and verdict(event) == YES
    assert not event.is_self
    assert event.text == "what is WAL?"
    assert (event.event_id, event.message_id) == ("msg-5500", "5500")
    assert event.actor.id == "7700" and event.actor.name == "Ann" and not event.actor.is_admin
    assert strip_mentions(f"<@&77> hi <@{BOT}>", BOT, 77) == "hi"


def test_the_facts_of_a_message() -> None:
    plain = inbound_from_message(message("just chatting"), BOT)
    assert plain is not None and plain.addressing == Addressing()
    assert verdict(plain) == Verdict(if_reply_mode_all=True)  # the core decides
    owned = channel(type=11)
    owned.owner_id = BOT
    in_thread = inbound_from_message(message("no mention", channel=owned), BOT)
    assert in_thread is not None and verdict(in_thread) == YES
    assert in_thread.addressing == Addressing(in_thread=True, bot_in_thread=True)
    joined = channel(type=11)
    joined.me = NS(id=BOT)
    assert bot_in_thread(joined, BOT) is True
    # a thread the bot is not in: only taking part in its conversation counts
    other = inbound_from_message(message("hello?", channel=channel(type=11)), BOT)
    assert other is not None and other.addressing.bot_in_thread is False
    assert verdict(other) == Verdict(if_taking_part=True)
    # without the message-content intent a thread message arrives empty: nothing to act on
    empty_msg = message("", channel=owned)
    empty = inbound_from_message(empty_msg, BOT)
    assert empty is not None and arrived_empty(empty, empty_msg, BOT)
    pinged = message(f"<@{BOT}>", channel=owned, mentions=[NS(id=BOT)])
    assert not arrived_empty(inbound_from_message(pinged, BOT), pinged, BOT)  # type: ignore[arg-type]
    dm = inbound_from_message(
        message("hi", channel=NS(id=1, type=discord.ChannelType.private)), BOT
    )
    assert dm is not None and dm.addressing.direct and dm.key.workspace == "@dm"
    assert verdict(dm) == YES
    reply = message("follow-up", reference=NS(message_id=99, resolved=NS(author=NS(id=BOT))))
    facts = inbound_from_message(reply, BOT).addressing  # type: ignore[union-attr]
    assert facts == Addressing(reply_to="99", reply_to_bot=True)
    own = inbound_from_message(message("mine", author=NS(id=BOT, bot=True, name="me")), BOT)
    assert own is not None and own.is_self and verdict(own) == NO


def test_system_and_malformed_messages_are_ignored_without_raising() -> None:
    assert inbound_from_message(message("x", type=discord.MessageType.pins_add), BOT) is None
    assert inbound_from_message(None, BOT) is None
    assert inbound_from_message(object(), BOT) is None
    assert inbound_from_message(message("x", id=None), BOT) is None
    assert inbound_from_message(message("x", author=None), BOT) is None
    assert inbound_from_message(message("x", attachments=[None, NS(id=1)]), BOT) is not None
    assert inbound_from_message(message(None, mentions=None), BOT) is not None  # type: ignore[arg-type]
    assert command_from_interaction(None, "reset") is None
    assert command_from_interaction(NS(id="x"), "reset") is None


def test_admin_from_permissions() -> None:
    assert is_platform_admin(discord.Permissions(manage_guild=True))
    assert is_platform_admin(discord.Permissions(manage_channels=True))
    assert is_platform_admin(discord.Permissions(administrator=True))
    assert not is_platform_admin(discord.Permissions(send_messages=True, manage_messages=True))
    assert not is_platform_admin(None)
    admin = message("x", channel=channel(perms=discord.Permissions(manage_guild=True)))
    assert inbound_from_message(admin, BOT).actor.is_admin  # type: ignore[union-attr]


async def test_voice_message_attachment_and_fetch_limits() -> None:
    async with FakeDiscord() as dc:
        cdn = DiscordCdn(dc.api_url)

        def hosted(data: bytes, filename: str, **kw: Any) -> tuple[FakeAttachment, str]:
            wire = dc.add_attachment(filename, data, kw.get("content_type") or "text/plain")
            return FakeAttachment(data, filename=filename, url=wire["url"], **kw), wire["id"]

        voice, _ = hosted(b"OggS...", "voice-message.ogg", voice=True)
        msg = message("", attachments=[voice], flags=discord.MessageFlags(voice=True))
        event = inbound_from_message(msg, BOT, max_bytes=100, cdn=cdn)
        assert event is not None
        (att,) = event.attachments
        assert (att.kind, att.mime, att.name, att.size) == (
            "audio",
            "audio/ogg",
            "voice-message.ogg",
            7,
        )
        assert await att.fetch() == b"OggS..."

        big, big_id = hosted(b"x" * 10, "big.png", size=1000, content_type="image/png")
        liar, liar_id = hosted(b"x" * 1000, "liar.txt", size=10)
        event = inbound_from_message(
            message("see", attachments=[big, liar]), BOT, max_bytes=100, cdn=cdn
        )
        assert event is not None
        big_att, liar_att = event.attachments
        assert (big_att.kind, liar_att.kind) == ("image", "document")
        with pytest.raises(UserError, match=r"big\.png"):
            await big_att.fetch()
        assert dc.cdn[big_id].hits == 0  # refused from the declared size
        with pytest.raises(UserError, match="larger than Discord said"):
            await liar_att.fetch()
        assert dc.cdn[liar_id].hits == 1


def test_attachment_kinds() -> None:
    assert attachment_kind("image/webp", "a.webp") == "image"
    assert attachment_kind("audio/mpeg", "a.mp3") == "audio"
    assert attachment_kind("", "v.ogg", voice=True) == "audio"
    assert attachment_kind("text/csv; charset=utf-8", "t.csv") == "document"
    assert attachment_kind("application/pdf", "d.pdf") == "document"
    assert attachment_kind("application/zip", "z.zip") == "other"


def test_command_from_interaction() -> None:
    image = FakeAttachment(b"png", filename="cat.png", content_type="image/png")
    interaction = NS(
        id=99,
        channel=channel(),
        guild_id=GUILD.id,
        user=NS(id=7_700, display_name="Ann", bot=False),
        permissions=discord.Permissions(manage_channels=True),
        namespace={"prompt": "add a hat", "image": image, "mask": None},
    )
    call = command_from_interaction(interaction, "edit", text_options=("prompt",))
    assert call is not None
    assert (call.name, call.event_id, call.text) == ("edit", "cmd-99", "add a hat")
    assert dict(call.options) == {"prompt": "add a hat", "image": "cat.png"}
    assert call.actor.is_admin and call.attachments[0].kind == "image"
    dm = NS(**{**vars(interaction), "channel": NS(id=5, type=discord.ChannelType.private)})
    dm.guild_id = None
    dm_call = command_from_interaction(dm, "edit")
    assert dm_call is not None and dm_call.key.workspace == "@dm" and not dm_call.actor.is_admin


def test_invite_url_from_the_token_without_network() -> None:
    app_id = "1234567890123456789"
    token = base64.b64encode(app_id.encode()).decode().rstrip("=") + ".Gabc.secret-part"
    assert client_id_from_token(token) == int(app_id)
    assert client_id_from_token("not-a-token") is None
    assert client_id_from_token("") is None
    url = build_invite_url(int(app_id))
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == [app_id]
    assert query["scope"] == ["bot applications.commands"]
    perms = discord.Permissions(int(query["permissions"][0]))
    assert perms == PERMISSIONS
    for name in (
        "view_channel",
        "send_messages",
        "send_messages_in_threads",
        "create_public_threads",
        "attach_files",
        "read_message_history",
        "embed_links",
    ):
        assert getattr(perms, name), name
    assert not perms.administrator and not perms.manage_messages


def test_cli_prints_the_invite(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    token = base64.b64encode(b"1234567890123456789").decode().rstrip("=") + ".Gabc.secret"
    monkeypatch.setenv("DISCORD_TOKEN", token)
    assert main(["invite", "discord"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("https://discord.com/oauth2/authorize?client_id=1234567890123456789")
    assert "secret" not in out.out + out.err
    monkeypatch.delenv("DISCORD_TOKEN")
    assert main(["invite", "discord"]) == 2
    assert "DISCORD_TOKEN" in capsys.readouterr().err


def test_intents_flags_and_shards() -> None:
    intents = wanted_intents()
    assert intents.guilds and intents.guild_messages and intents.dm_messages
    assert intents.message_content and not intents.members and not intents.presences
    assert message_content_granted(discord.flags.ApplicationFlags._from_value(1 << 19))
    assert message_content_granted(discord.flags.ApplicationFlags._from_value(1 << 18))
    assert not message_content_granted(discord.flags.ApplicationFlags._from_value(0))
    assert shard_setting(None) is False and shard_setting("") is False
    assert shard_setting("auto") is None and shard_setting("4") == 4
    with pytest.raises(ConfigError):
        shard_setting("many")
    with pytest.raises(ConfigError):
        shard_setting("0")


async def test_throttle_is_per_channel() -> None:
    throttle = ChannelThrottle(0.1)
    start = time.monotonic()
    await asyncio.gather(throttle.wait(1), throttle.wait(2))  # different channels: no wait
    assert time.monotonic() - start < 0.05
    await throttle.wait(1)  # the same channel: waits its turn
    assert time.monotonic() - start >= 0.09


def test_shard_ids_spread_the_gateway_over_processes() -> None:
    assert shard_ids_setting("", 4) is None and shard_ids_setting(None, None) is None
    assert shard_ids_setting("0,1", 4) == [0, 1]
    assert shard_ids_setting("2-3", 4) == [2, 3] and shard_ids_setting(" 3, 0-1 ", 4) == [0, 1, 3]
    for bad, count, words in (
        ("0", None, "total number of shards"),
        ("0", False, "total number of shards"),
        ("4", 4, "from 0 to 3"),
        ("one", 4, "like 0,1"),
    ):
        with pytest.raises(ConfigError, match=words):
            shard_ids_setting(bad, count)
