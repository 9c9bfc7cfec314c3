"""The download loop both adapters share (`adapters.downloads`), against a loopback HTTP server:
each redirect hop checked, the chase bounded, the size capped, every failure in the words it is
given. (test_hostile_files runs it through both platforms with their own words.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from adapters.downloads import MAX_REDIRECTS, Say, Wording, download
from bot.core.errors import UserError

WORDS = Wording(
    not_allowed=Say("not allowed: {name}", "host"),
    http_error=Say("http {status}: {name}", "status {status}"),
    failed=Say("failed: {name}", "{error}"),
    too_many_redirects=Say("redirects: {name}"),
    too_large=Say("{name} is {size_mb:.1f} MB over {limit_mb:.0f} MB", "{size} > {limit}"),
    larger_than_declared=Say("{name} lied", "declared {cap}"),
)


class Server:
    def __init__(self) -> None:
        self.base = ""
        self.hits: list[str] = []


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()

    async def handle(request: web.Request) -> web.StreamResponse:
        state.hits.append(request.path)
        name = request.path.rsplit("/", 1)[-1]
        if name == "file":
            return web.Response(body=b"x" * 1000, content_type="image/png")
        if name == "page":
            return web.Response(text="<html></html>", content_type="text/html")
        if name == "nowhere":
            return web.Response(status=302)  # a redirect without a Location
        if name == "loop":
            raise web.HTTPFound("/loop")
        if name == "away":
            raise web.HTTPFound("http://elsewhere.invalid/file")
        if name == "auth" and request.headers.get("Authorization") == "Bearer t":
            raise web.HTTPFound("/file")
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        yield state
    finally:
        await runner.cleanup()


async def fetch(
    server: Server,
    path: str,
    *,
    cap: int = 10_000,
    limit: int = 10_000,
    refused: Callable[[str], None] = lambda url: None,
    headers: dict[str, str] | None = None,
    check: Callable[[aiohttp.ClientResponse], None] | None = None,
) -> bytes:
    async with aiohttp.ClientSession() as session:
        return await download(
            session,
            server.base + path,
            name="f.png",
            cap=cap,
            limit=limit,
            allows=lambda url: url.startswith(server.base),
            wording=WORDS,
            refused=refused,
            headers=headers,
            check=check,
        )


async def test_a_file_within_the_cap_and_headers_sent(server: Server) -> None:
    assert await fetch(server, "/file") == b"x" * 1000
    assert await fetch(server, "/auth", headers={"Authorization": "Bearer t"}) == b"x" * 1000
    assert server.hits[-2:] == ["/auth", "/file"]  # redirected once, by hand


async def test_every_hop_is_checked_and_the_chase_is_bounded(server: Server) -> None:
    refused: list[str] = []
    with pytest.raises(UserError, match=r"^not allowed: f\.png$") as error:
        await fetch(server, "/away", refused=refused.append)
    assert error.value.log_detail == "host"
    assert refused == ["http://elsewhere.invalid/file"]  # told, to log it
    server.hits.clear()
    with pytest.raises(UserError, match=r"^redirects: f\.png$"):
        await fetch(server, "/loop")
    assert len(server.hits) == MAX_REDIRECTS + 1
    server.hits.clear()
    with pytest.raises(UserError, match=r"^redirects: f\.png$"):
        await fetch(server, "/nowhere")
    assert server.hits == ["/nowhere"]  # nowhere to go: not asked again


async def test_sizes_statuses_and_the_response_check(server: Server) -> None:
    with pytest.raises(UserError, match=r"^f\.png lied$") as lied:
        await fetch(server, "/file", cap=500)  # the declared size was the cap
    assert lied.value.log_detail == "declared 500"
    with pytest.raises(UserError, match=r"0\.0 MB over 0 MB") as big:
        await fetch(server, "/file", cap=500, limit=500)
    assert big.value.log_detail == "1000 > 500"
    with pytest.raises(UserError, match=r"^http 404: f\.png$"):
        await fetch(server, "/missing")

    def no_pages(response: aiohttp.ClientResponse) -> None:
        if response.content_type == "text/html":
            raise UserError("a page")

    with pytest.raises(UserError, match=r"^a page$"):
        await fetch(server, "/page", check=no_pages)


async def test_a_connection_failure_in_the_given_words() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(UserError, match=r"^failed: f\.png$") as failed:
            await download(
                session,
                "http://127.0.0.1:9/file",  # discard port: nothing listens
                name="f.png",
                cap=10,
                limit=10,
                allows=lambda url: True,
                wording=WORDS,
            )
    assert failed.value.log_detail == "ClientConnectorError"
