"""Wire tests of the Discord fake, driven by the real discord.py 2.7.1 client."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
import yarl
from discord import app_commands

from testing.fakes.discord_fake import FakeDiscord
from testing.fakes.discord_payloads import AppFlag, Intent, MsgFlag, MsgType, Perm
from testing.waiting import until

TOKEN = "test-token"


# ---------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------
@pytest.fixture
def discord_seams() -> Any:
    """Restore the two class attributes the fake is wired through."""
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


@contextlib.asynccontextmanager
async def fake_discord(**kwargs: Any) -> AsyncIterator[FakeDiscord]:
    kwargs.setdefault("heartbeat_interval", 250)
    async with FakeDiscord(token=TOKEN, **kwargs) as dc:
        discord.http.Route.BASE = dc.api_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(dc.gateway_url)
        yield dc


@pytest.fixture
async def dc(discord_seams: None) -> AsyncIterator[FakeDiscord]:
    async with fake_discord(message_content=True) as fake:
        yield fake
        fake.assert_spec_clean()


def make_client(*, message_content: bool = True, cls: type[discord.Client] = discord.Client) -> Any:
    intents = discord.Intents.default()
    intents.message_content = message_content
    return cls(intents=intents, guild_ready_timeout=0.05)


@contextlib.asynccontextmanager
async def running(client: discord.Client) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(client.start(TOKEN))
    ready = asyncio.create_task(client.wait_until_ready())
    done, _ = await asyncio.wait({task, ready}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        await client.close()
        if task in done:
            task.result()  # raises the start() error
        raise TimeoutError("discord.py client did not become ready")
    try:
        yield task
    finally:
        await client.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


def auth() -> dict[str, str]:
    return {"Authorization": f"Bot {TOKEN}"}


# ---------------------------------------------------------------------------
# discord.py against the fake
# ---------------------------------------------------------------------------
async def test_client_ready_sees_guild_channels_and_flags(dc: FakeDiscord) -> None:
    client = make_client()
    async with running(client):
        guild = client.get_guild(int(dc.guild["id"]))
        assert guild is not None and guild.name == "Test Guild"
        general = guild.get_channel(int(dc.text_channel["id"]))
        assert isinstance(general, discord.TextChannel) and general.name == "general"
        thread = guild.get_thread(int(dc.thread["id"]))
        assert isinstance(thread, discord.Thread) and thread.parent_id == general.id
        assert client.user is not None and client.user.id == int(dc.application_id)
        assert client.application_id == int(dc.application_id)
        # unverified app with the intent enabled in the portal -> the *_LIMITED bit
        assert client.application_flags.gateway_message_content_limited
        assert not client.application_flags.gateway_message_content
        # the bot's own member and permissions (the managed role)
        assert guild.me.guild_permissions.attach_files
        assert not guild.me.guild_permissions.manage_guild

    assert dc.identify_count == 1 and dc.resume_count == 0
    assert dc.intents is not None and dc.intents & Intent.MESSAGE_CONTENT
    conn = dc.gateway_connections[0]
    assert conn == conn | {"path": "/gateway", "v": "10", "encoding": "json"}
    assert conn["compress"] == "zlib-stream"  # discord.py without zstandard installed
    routes = [(c.method, c.route) for c in dc.calls]
    assert routes[:2] == [("GET", "/users/@me"), ("GET", "/oauth2/applications/@me")]
    assert dc.heartbeat_count >= 1


async def test_mention_reply_then_edit(dc: FakeDiscord) -> None:
    client = make_client()
    replied: asyncio.Queue[discord.Message] = asyncio.Queue()

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author == client.user or client.user not in message.mentions:
            return
        reply = await message.reply(f"echo: {message.content}")
        await reply.edit(content="edited")
        await replied.put(reply)

    async with running(client):
        cid = dc.text_channel["id"]
        incoming = await dc.send_message_create(cid, dc.member, f"<@{dc.application_id}> hello")
        reply = await asyncio.wait_for(replied.get(), 5)

    stored = dc.messages[cid][-1]
    assert stored["id"] == str(reply.id)
    assert stored["type"] == MsgType.REPLY
    assert stored["message_reference"]["message_id"] == incoming["id"]
    assert stored["message_reference"]["channel_id"] == cid
    assert stored["mentions"][0]["id"] == dc.member["id"]  # replied_user pinged by default
    assert stored["content"] == "edited"
    (edit,) = stored["edits"]
    assert edit["previous_content"] == f"echo: <@{dc.application_id}> hello"
    assert edit["content"] == "edited" and edit["timestamp"] == stored["edited_timestamp"]


async def test_typing_and_multipart_file(dc: FakeDiscord) -> None:
    client = make_client()
    async with running(client):
        channel = client.get_channel(int(dc.text_channel["id"]))
        assert isinstance(channel, discord.TextChannel)
        payload = (
            b"\x89PNG\r\n\x1a\n" + b"\x00" * 8 + (4).to_bytes(4, "big") + (3).to_bytes(4, "big")
        )
        async with channel.typing():
            sent = await channel.send(
                "here", file=discord.File(io.BytesIO(payload), "chart.png", description="a chart")
            )
        assert await sent.attachments[0].read() == payload  # served by the fake's CDN
        with pytest.raises(discord.HTTPException) as info:
            await channel.send("x" * 2001)
        assert info.value.status == 400 and info.value.code == 50035

    assert len(dc.typing[dc.text_channel["id"]]) >= 1
    stored = dc.messages[dc.text_channel["id"]][-1]
    (att,) = stored["attachments"]
    assert att["data"] == payload and att["filename"] == "chart.png"
    assert att["description"] == "a chart" and att["content_type"] == "image/png"
    assert (att["width"], att["height"]) == (4, 3)
    post = next(c for c in dc.calls if c.method == "POST" and c.route.endswith("/messages"))
    assert post.files == [("files[0]", "chart.png", len(payload))]
    assert post.json["attachments"][0]["filename"] == "chart.png"


async def test_app_command_with_attachment_defer_and_followup(dc: FakeDiscord) -> None:
    client = make_client()
    tree = app_commands.CommandTree(client)
    done: asyncio.Queue[discord.WebhookMessage] = asyncio.Queue()

    @tree.command(name="flip", description="Reverse an uploaded file")
    @app_commands.describe(upload="the file")
    async def flip(interaction: discord.Interaction, upload: discord.Attachment) -> None:
        await interaction.response.defer(thinking=True)
        data = await upload.read()
        assert interaction.filesize_limit == dc.upload_limit
        msg = await interaction.followup.send(
            f"{upload.filename}: {len(data)} bytes",
            file=discord.File(io.BytesIO(data[::-1]), "flipped.bin"),
            wait=True,
        )
        await done.put(msg)

    guild = discord.Object(int(dc.guild["id"]))
    tree.copy_global_to(guild=guild)
    async with running(client):
        synced = await tree.sync(guild=guild)
        assert [c.name for c in synced] == ["flip"]
        sync = dc.command_syncs[-1]
        assert sync["guild_id"] == dc.guild["id"]
        assert sync["commands"][0]["options"][0]["type"] == 11  # ATTACHMENT

        att = dc.add_attachment("in.bin", b"abc123", "application/octet-stream")
        inter = await dc.send_interaction("flip", {"upload": att}, user=dc.admin)
        followup = await asyncio.wait_for(done.get(), 5)

    iid, token = inter["id"], inter["token"]
    assert inter["data"]["guild_id"] == dc.guild["id"]
    assert inter["data"]["resolved"]["attachments"][att["id"]]["filename"] == "in.bin"
    assert int(inter["member"]["permissions"]) & Perm.MANAGE_GUILD
    assert dc.interaction_responses[iid]["type"] == 5
    (fu,) = dc.followups[token]
    assert fu["attachments"][0]["data"] == b"321cba"
    assert fu["content"] == "in.bin: 6 bytes"
    # first followup after a deferral edits the "thinking" message
    original = dc.original_response(iid)
    assert original is fu and followup.id == int(fu["id"])
    assert not original["flags"] & MsgFlag.LOADING
    assert original["interaction_metadata"]["user"]["id"] == dc.admin["id"]


async def test_429_on_edit_is_absorbed(dc: FakeDiscord) -> None:
    client = make_client()
    async with running(client):
        channel = client.get_channel(int(dc.text_channel["id"]))
        assert isinstance(channel, discord.TextChannel)
        msg = await channel.send("draft")
        dc.rate_limit_next("PATCH", "/channels/{channel_id}/messages/{message_id}", times=2)
        await msg.edit(content="final")

    assert dc.rate_limited_count == 2
    statuses = [c.status for c in dc.calls if c.method == "PATCH"]
    assert statuses == [429, 429, 200]
    assert dc.messages[dc.text_channel["id"]][-1]["content"] == "final"


async def test_drop_gateway_resumes_and_replays(dc: FakeDiscord) -> None:
    client = make_client()
    seen: asyncio.Queue[str] = asyncio.Queue()

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author != client.user:
            await seen.put(message.content)

    cid = dc.text_channel["id"]
    async with running(client):
        await dc.drop_gateway(4000)
        await dc.wait_for_resume(1)
        await dc.send_message_create(cid, dc.member, "after close 4000")
        assert await asyncio.wait_for(seen.get(), 5) == "after close 4000"

        await dc.drop_gateway(None)  # TCP abort, no close frame
        await dc.send_message_create(cid, dc.member, "sent while disconnected")
        await dc.wait_for_resume(2)
        assert await asyncio.wait_for(seen.get(), 5) == "sent while disconnected"

    assert dc.identify_count == 1 and dc.resume_count == 2
    resumes = [f for f in dc.gateway_received if f["op"] == 6]
    assert len(resumes) == 2
    assert [c["path"] for c in dc.gateway_connections] == ["/gateway"] + ["/resume-gateway"] * 2


async def test_without_message_content_intent(discord_seams: None) -> None:
    async with fake_discord(message_content=False) as dc:
        client = make_client(message_content=False)
        seen: asyncio.Queue[discord.Message] = asyncio.Queue()

        @client.event
        async def on_message(message: discord.Message) -> None:
            await seen.put(message)

        async with running(client):
            assert not client.application_flags.gateway_message_content_limited
            cid = dc.text_channel["id"]
            att = dc.add_attachment(
                "voice.ogg", b"OggS", "audio/ogg", duration_secs=1.5, waveform=b"\x01\x02"
            )
            await dc.send_message_create(cid, dc.member, "plain words", attachments=[att])
            plain = await asyncio.wait_for(seen.get(), 5)
            assert plain.content == "" and plain.attachments == []
            await dc.send_message_create(cid, dc.member, f"<@{dc.application_id}> mentioned")
            assert (await asyncio.wait_for(seen.get(), 5)).content.endswith("mentioned")
            await dc.send_message_create(dc.dm["id"], dc.member, "in a DM", attachments=[att])
            dm = await asyncio.wait_for(seen.get(), 5)
            assert dm.content == "in a DM" and dm.attachments[0].is_voice_message()
            assert dm.flags.voice
        dc.assert_spec_clean()


async def test_privileged_intent_not_granted_closes_4014(discord_seams: None) -> None:
    async with fake_discord(message_content=False) as dc:
        client = make_client(message_content=True)
        with pytest.raises(discord.PrivilegedIntentsRequired):
            await asyncio.wait_for(client.start(TOKEN), 5)
        await client.close()
        assert dc.identify_count == 0 and dc.identify_payloads


async def test_auto_sharded_client_uses_gateway_bot(dc: FakeDiscord) -> None:
    client = make_client(cls=discord.AutoShardedClient)
    async with running(client):
        assert client.shard_count == 1
        assert client.get_guild(int(dc.guild["id"])) is not None
    assert ("GET", "/gateway/bot") in [(c.method, c.route) for c in dc.calls]
    assert dc.identify_payloads[0]["shard"] == [0, 1]


async def test_threads_and_dm(dc: FakeDiscord) -> None:
    client = make_client()
    async with running(client):
        channel = client.get_channel(int(dc.text_channel["id"]))
        assert isinstance(channel, discord.TextChannel)
        starter = await channel.send("question")
        thread = await starter.create_thread(name="answers", auto_archive_duration=60)
        await thread.send("in the thread")
        await dc.flush()
        await until(lambda: client.get_channel(thread.id), what="THREAD_CREATE in the cache")
        private = await channel.create_thread(
            name="private", type=discord.ChannelType.private_thread
        )
        await private.add_user(discord.Object(int(dc.member["id"])))
        user = await client.fetch_user(int(dc.member["id"]))
        await user.send("hello in DM")

    th = dc.threads[str(thread.id)]
    assert th["id"] == str(starter.id) and th["parent_id"] == dc.text_channel["id"]
    assert th["thread_metadata"]["auto_archive_duration"] == 60
    assert dc.messages[str(thread.id)][0]["content"] == "in the thread"
    assert dc.message_index[str(starter.id)]["flags"] & MsgFlag.HAS_THREAD
    assert dc.threads[str(private.id)]["type"] == 12
    assert dc.member["id"] in dc.thread_members[str(private.id)]
    assert dc.messages[dc.dm["id"]][-1]["content"] == "hello in DM"


async def test_component_update_and_modal(dc: FakeDiscord) -> None:
    client = make_client()
    tree = app_commands.CommandTree(client)
    events: asyncio.Queue[str] = asyncio.Queue()

    class Prompt(discord.ui.Modal, title="Prompt"):
        text = discord.ui.TextInput(label="prompt", custom_id="prompt")

        async def on_submit(self, interaction: discord.Interaction) -> None:
            await interaction.response.send_message(f"got {self.text.value}", ephemeral=True)
            await events.put("submitted")

    class Buttons(discord.ui.View):
        @discord.ui.button(label="edit", custom_id="edit")
        async def edit(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
            await interaction.response.edit_message(content="clicked", view=None)
            await events.put("clicked")

        @discord.ui.button(label="ask", custom_id="ask")
        async def ask(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
            await interaction.response.send_modal(Prompt())
            await events.put("modal")

    @tree.command(description="menu")
    async def menu(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pick", view=Buttons())
        await events.put("menu")

    async with running(client):
        await tree.sync()
        inter = await dc.send_interaction("menu")
        assert await asyncio.wait_for(events.get(), 5) == "menu"
        menu_msg = dc.original_response(inter)
        assert menu_msg is not None and menu_msg["components"][0]["components"][0]["id"] == 2
        ask = await dc.send_component_interaction(menu_msg, "ask")
        assert await asyncio.wait_for(events.get(), 5) == "modal"
        modal = dc.interaction_responses[ask["id"]]
        assert modal["type"] == 9 and modal["data"]["title"] == "Prompt"
        submit = await dc.send_modal_submit(modal["data"]["custom_id"], {"prompt": "a cat"})
        assert await asyncio.wait_for(events.get(), 5) == "submitted"
        click = await dc.send_component_interaction(menu_msg, "edit")
        assert await asyncio.wait_for(events.get(), 5) == "clicked"

    assert dc.interaction_responses[click["id"]]["type"] == 7
    assert menu_msg["content"] == "clicked" and menu_msg["components"] == []
    answer = dc.original_response(submit)
    assert answer is not None and answer["content"] == "got a cat"
    assert answer["flags"] & MsgFlag.EPHEMERAL and answer in dc.ephemeral_messages
    trigger = answer["interaction_metadata"]["triggering_interaction_metadata"]
    assert trigger["id"] == ask["id"]


async def test_invalid_session_reidentifies(dc: FakeDiscord) -> None:
    class QuickClient(discord.Client):
        async def before_identify_hook(
            self, shard_id: int | None, *, initial: bool = False
        ) -> None:
            return None  # discord.py sleeps 5 s before every non-initial IDENTIFY

    client = make_client(cls=QuickClient)
    async with running(client):
        await dc.invalidate_session(resumable=False)
        await dc.wait_for_identify(2)
        await dc.send_reconnect()  # op 7: the new session is resumed
        await dc.wait_for_resume(1)
    assert dc.identify_count == 2 and dc.resume_count == 1
    assert [c["path"] for c in dc.gateway_connections] == [
        "/gateway",
        "/gateway",
        "/resume-gateway",
    ]


# ---------------------------------------------------------------------------
# REST details without a client
# ---------------------------------------------------------------------------
async def test_rest_errors_limits_and_headers(dc: FakeDiscord) -> None:
    cid = dc.text_channel["id"]
    url = f"{dc.api_url}/channels/{cid}/messages"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{dc.api_url}/users/@me") as r:
            assert r.status == 401
        async with http.post(url, json={"content": "hi"}, headers=auth()) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "application/json"
            assert r.headers["X-RateLimit-Bucket"] and int(r.headers["X-RateLimit-Remaining"]) >= 0
        async with http.post(url, json={"content": "x" * 2001}, headers=auth()) as r:
            body = await r.json()
            assert r.status == 400 and body["code"] == 50035
            assert body["errors"]["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
        async with http.post(url, json={"content": "  "}, headers=auth()) as r:
            assert r.status == 400 and (await r.json())["code"] == 50006

        form = aiohttp.FormData(quote_fields=False)
        form.add_field("payload_json", '{"content": "too many"}')
        for i in range(11):
            form.add_field(f"files[{i}]", b"x", filename=f"{i}.txt")
        async with http.post(url, data=form, headers=auth()) as r:
            assert r.status == 400 and "attachments" in (await r.json())["errors"]

        dc.upload_limit = 4
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("payload_json", "{}")
        form.add_field("files[0]", b"12345", filename="big.bin")
        async with http.post(url, data=form, headers=auth()) as r:
            assert r.status == 413 and (await r.json())["code"] == 40005

        dc.enable_message_rate_limit(limit=2, per=30)
        statuses = []
        for _ in range(3):
            async with http.post(url, json={"content": "spam"}, headers=auth()) as r:
                statuses.append(r.status)
                if r.status == 429:
                    body = await r.json()
                    assert body["global"] is False and body["retry_after"] > 0
                    assert r.headers["Via"] and r.headers["Retry-After"]
        assert statuses == [200, 200, 429] and dc.rate_limited_count == 1


async def test_cdn_serves_bytes_and_can_lie_about_size(dc: FakeDiscord) -> None:
    att = dc.add_attachment("clip.ogg", b"OggS-data", "audio/ogg", declared_size=10)
    assert att["size"] == 10
    async with aiohttp.ClientSession() as http:
        async with http.get(att["url"]) as r:
            assert r.status == 200 and await r.read() == b"OggS-data"
            assert r.headers["Content-Type"] == "audio/ogg"
        async with http.get(att["proxy_url"]) as r:
            assert r.status == 200
        dc.cdn_fail(att, 403)
        async with http.get(att["url"]) as r:
            assert r.status == 403


async def test_interaction_callback_rules(dc: FakeDiscord) -> None:
    inter = await dc.send_interaction("anything", {"text": "hi"})
    cb = f"{dc.api_url}/interactions/{inter['id']}/{inter['token']}/callback"
    hook = f"{dc.api_url}/webhooks/{dc.application_id}/{inter['token']}"
    async with aiohttp.ClientSession() as http:
        async with http.post(hook + "?wait=1", json={"content": "too early"}) as r:
            assert r.status == 404 and (await r.json())["code"] == 10015
        body = {"type": 4, "data": {"content": "secret", "flags": 64}}
        async with http.post(cb + "?with_response=1", json=body) as r:
            out = await r.json()
            assert r.status == 200 and out["interaction"]["response_message_ephemeral"] is True
        async with http.post(cb, json={"type": 4, "data": {"content": "again"}}) as r:
            assert r.status == 400 and (await r.json())["code"] == 40060
        async with http.patch(hook + "/messages/@original", json={"content": "changed"}) as r:
            assert r.status == 200 and (await r.json())["content"] == "changed"
    assert dc.messages[dc.text_channel["id"]] == []  # ephemeral: never in the channel
    assert dc.original_response(inter)["content"] == "changed"

    late = await dc.send_interaction("anything")
    dc.expire_interaction(late, token=True)
    async with aiohttp.ClientSession() as http:
        url = f"{dc.api_url}/interactions/{late['id']}/{late['token']}/callback"
        async with http.post(url, json={"type": 5}) as r:
            assert r.status == 404 and (await r.json())["code"] == 10062
    assert dc.interactions[late["id"]]["attachment_size_limit"] == dc.upload_limit


def test_application_flags_follow_the_portal_switches() -> None:
    dc = FakeDiscord(message_content=True, members_intent=True, verified=True)
    assert dc.application["flags"] & AppFlag.GATEWAY_MESSAGE_CONTENT
    assert dc.application["flags"] & AppFlag.GATEWAY_GUILD_MEMBERS
    assert not dc.application["flags"] & AppFlag.GATEWAY_MESSAGE_CONTENT_LIMITED
    assert FakeDiscord().application["flags"] == 0
    # permission model: admin has Manage Server, manager only Manage Channels
    assert dc.permissions_for(dc.admin) & Perm.MANAGE_GUILD
    assert not dc.permissions_for(dc.member) & (Perm.MANAGE_GUILD | Perm.MANAGE_CHANNELS)
    manager = dc.permissions_for(dc.manager)
    assert manager & Perm.MANAGE_CHANNELS and not manager & Perm.MANAGE_GUILD
