import socket

import pytest

from tests.conftest import NetworkBlocked


def test_non_loopback_connection_is_refused() -> None:
    with socket.socket() as sock, pytest.raises(NetworkBlocked):
        sock.connect(("192.0.2.1", 443))


def test_non_loopback_name_is_not_resolved() -> None:
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("api.openai.com", 443)


async def test_asyncio_connections_are_guarded_too() -> None:
    import asyncio

    with pytest.raises(NetworkBlocked):
        await asyncio.open_connection("slack.com", 443)


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            client.connect(server.getsockname())
