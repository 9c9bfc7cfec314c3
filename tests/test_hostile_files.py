"""Attachment attacks through the real adapters against the Slack and Discord fakes: a download
redirected to another host, a file larger than its declared size, a PNG decompression bomb and
path-trick file names. Each is refused with a friendly message in chat; nothing reaches OpenAI
and nothing is written where the name points."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import discord
import discord.gateway
import discord.http
import pytest
from PIL import Image

from bot.core.errors import UserError
from bot.files.pictures import open_image, prepare_for_vision
from bot.text.sanitise import safe_filename, safe_path
from testing.fakes import slack_payloads as P
from testing.fakes.openai_fake import FakeOpenAI
from tests.media_fixtures import png
from tests.test_discord_adapter import Bot, fake_discord, mention, running_bot
from tests.test_slack_adapter import Env, slack_running


def png_bomb(side: int = 10_000) -> bytes:
    """A tiny PNG (a few KB) that decodes to `side`² pixels."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, "PNG")
    return out.getvalue()


BOMB = png_bomb()
TRICK_NAME = "..\\..\\evil\u202egnp.exe"  # shows as "evilexe.png" in a right-to-left display
LIAR = png() + b"\x00" * 50_000  # a valid PNG followed by more bytes than declared


def nothing_written(root: Path) -> bool:
    names = {p.name for p in root.rglob("*")}
    return not any("evil" in n or "passwd" in n for n in names)


# --------------------------------------------------------------------------- Slack


@pytest.fixture
async def slack(tmp_path: Path) -> AsyncIterator[Env]:
    async with slack_running(tmp_path, slack_clean=True) as environment:
        yield environment


async def test_slack_file_attacks_are_refused(slack: Env, tmp_path: Path) -> None:
    env = slack
    moved = env.slack.add_file("moved.png", png(), "image/png", redirect_to=True)
    liar = env.slack.add_file("liar.png", LIAR, "image/png", declared_size=len(png()))
    bomb = env.slack.add_file("bomb.png", BOMB, "image/png")
    trick = env.slack.add_file("trick.exe", b"MZ\x90\x00", "application/x-msdownload")
    trick["name"] = trick["title"] = TRICK_NAME  # what the user named it
    for file in (moved, liar, bomb, trick):
        await env.slack.send_event(P.im_message("look", files=[file]))
    await env.settle(4)
    texts = env.bot_texts(P.DM_CHANNEL_ID)
    assert len(texts) == 4, texts
    assert sum("“moved.png”: it is not stored on this Slack workspace" in t for t in texts) == 1
    assert sum("“liar.png” is larger than Slack said it was" in t for t in texts) == 1
    assert sum("“bomb.png” has too many pixels" in t for t in texts) == 1
    assert sum("I can't read “evilgnp.exe”" in t for t in texts) == 1
    assert not any("\u202e" in t or ".." in t for t in texts)
    assert env.openai.turns == []  # nothing reached the model
    # The redirect was not followed: every request went to the fake's own address.
    assert all(r["host"].startswith("127.0.0.1") for r in env.slack.file_requests)
    assert nothing_written(tmp_path)


# --------------------------------------------------------------------------- Discord


@pytest.fixture
def discord_seams() -> Iterator[None]:
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def bot(discord_seams: None, openai_fake: FakeOpenAI, tmp_path: Path) -> AsyncIterator[Bot]:
    async with fake_discord() as dc, running_bot(dc, openai_fake, tmp_path) as running:
        yield running
        assert dc.internal_errors == []


async def test_discord_attachment_attacks_are_refused(
    bot: Bot, openai_fake: FakeOpenAI, tmp_path: Path
) -> None:
    dc = bot.dc
    moved = dc.add_attachment("moved.png", png(), "image/png")
    elsewhere = moved["url"].replace("127.0.0.1", "localhost")  # same server, another host
    dc.cdn_redirect(moved, elsewhere)
    liar = dc.add_attachment("liar.png", LIAR, "image/png", declared_size=len(png()))
    bomb = dc.add_attachment("bomb.png", BOMB, "image/png")
    trick = dc.add_attachment(TRICK_NAME, b"MZ\x90\x00", "application/x-msdownload")
    expected = {
        moved["id"]: "“moved.png”: it is not stored on Discord",
        liar["id"]: "“liar.png” is larger than Discord said it was",
        bomb["id"]: "“bomb.png” has too many pixels",
        trick["id"]: "I can't read “evilgnp.exe”",
    }
    for attachment in (moved, liar, bomb, trick):
        incoming = await dc.send_message_create(
            dc.text_channel["id"], dc.member, mention(dc, "look"), attachments=[attachment]
        )
        reply = (await bot.answer_to(incoming))["content"]
        assert expected[attachment["id"]] in reply, reply
        assert "\u202e" not in reply and ".." not in reply
    assert dc.cdn[moved["id"]].hits == 1  # the redirect was refused, not followed
    assert openai_fake.turns == []
    assert nothing_written(tmp_path)


# --------------------------------------------------------------------------- pure checks


def test_a_bomb_is_refused_before_decoding() -> None:
    for side in (9_000, 10_000, 30_000):  # over our limit, over Pillow's warning, its error
        with pytest.raises(UserError, match="too many pixels"):
            open_image(png_bomb(side), "bomb.png")
    animated = io.BytesIO()
    frames = [Image.new("P", (4_000, 4_000), color=i) for i in range(20)]
    frames[0].save(animated, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(UserError, match="too many pixels"):
        prepare_for_vision(animated.getvalue(), "many.gif")
    assert prepare_for_vision(png(), "ok.png").width == 64


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("/etc/shadow", "shadow"),
        ("C:\\Windows\\win.ini", "win.ini"),
        ("a\x00b.png", "ab.png"),
        ("CON", "_CON"),
        ("lpt1.txt", "_lpt1.txt"),
        ("..", "file"),
        ("  .hidden.  ", "hidden"),
        ("photo\u202egnp.exe", "photognp.exe"),
        ("zero\u200bwidth.png", "zerowidth.png"),
        ("bad\udcffutf8.png", "bad_utf8.png"),
        ('what?<>|:"*.png', "what_______.png"),
        ("fox.png", "fox.png"),
        ("été 🙂.png", "été 🙂.png"),
    ],
)
def test_safe_filename(name: str, safe: str) -> None:
    assert safe_filename(name) == safe


def test_safe_path_stays_inside(tmp_path: Path) -> None:
    for name in ("../../etc/passwd", "/etc/passwd", "..", "a/../../b", "\x00", "CON"):
        path = safe_path(tmp_path, name)
        assert path.parent == tmp_path.resolve()
    assert safe_path(tmp_path, "../x.png").name == "x.png"
    assert safe_filename("x" * 300 + ".png").endswith(".png")
    assert len(safe_filename("é" * 300).encode()) <= 200


# --------------------------------------------------------------------------- hosts and caps


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://cdn.discordapp.com/attachments/1/2/a.png?ex=1", True),
        ("https://media.discordapp.net/attachments/1/2/a.png", True),
        ("http://cdn.discordapp.com/attachments/1/2/a.png", False),  # not https
        ("https://cdn.discordapp.com:8443/a.png", False),
        ("https://cdn.discordapp.com.evil.example/a.png", False),
        ("https://cdn.discordapp.com@evil.example/a.png", False),
        ("https://evil.example/cdn.discordapp.com/a.png", False),
        ("https://discord.com/api/v10/attachments/a.png", True),  # the configured API host
        ("file:///etc/passwd", False),
        ("http://[::1", False),
        ("", False),
    ],
)
def test_discord_cdn_hosts(url: str, allowed: bool) -> None:
    from adapters.discord.files import DiscordCdn

    assert DiscordCdn("https://discord.com/api/v10").allows(url) is allowed


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://files.slack.com/files-pri/T1-F1/a.png", True),
        ("https://slack.com/files-pri/T1-F1/a.png", True),
        ("http://files.slack.com/files-pri/T1-F1/a.png", False),
        ("https://files.slack.com.evil.example/a.png", False),
        ("https://files.slack.com@evil.example/a.png", False),
        ("https://notslack.com/a.png", False),
    ],
)
def test_slack_file_hosts(url: str, allowed: bool) -> None:
    from adapters.slack.files import SlackHost

    assert SlackHost("https://slack.com/api/").allows(url) is allowed


@pytest.fixture
async def endless() -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback server streaming an endless chunked body (no Content-Length)."""
    from aiohttp import web

    sent: list[int] = []

    async def forever(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        await response.prepare(request)
        chunk = b"\x00" * 65_536
        try:
            while True:
                await response.write(chunk)
                sent.append(len(chunk))
        except (ConnectionError, RuntimeError):
            return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", forever)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", sent
    finally:
        await runner.cleanup()


async def test_an_endless_body_is_cut_at_the_cap(endless: tuple[str, list[int]]) -> None:
    from adapters.discord.files import DiscordCdn
    from adapters.slack.files import SlackFiles

    base, sent = endless
    cdn = DiscordCdn(base + "/api/v10")
    with pytest.raises(UserError, match="larger than Discord said"):
        await cdn.download(base + "/cdn/a.png", "a.png", limit=1_000_000, declared=100_000)
    with pytest.raises(UserError, match="I take files up to 1 MB"):
        await cdn.download(base + "/cdn/a.png", "a.png", limit=1_048_576)
    files = SlackFiles("xoxb-test", base + "/api/", max_bytes=1_048_576)
    meta = {"name": "a.png", "mimetype": "image/png", "url_private_download": base + "/f/a.png"}
    with pytest.raises(UserError, match="I can take files up to 1 MB"):
        await files.download(meta, "image")
    with pytest.raises(UserError, match="larger than Slack said"):
        await files.download({**meta, "size": 1000}, "image")
    assert sum(sent) < 50 * 1_048_576  # the server was cut off, not read to the end
