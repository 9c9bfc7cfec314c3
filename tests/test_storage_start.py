"""Storage mistakes at start (issues #16, #18 point 2, #20 point 3): each ends `python -m bot`
at once with one line naming DATABASE_URL and what to do, exit status 2, no traceback, no
hang, never the password; `doctor` reports the same. Real subprocesses; the PostgreSQL cases
against the real server the suite starts."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest

from bot.core.config import ConfigError
from bot.doctor import run_doctor
from storage.connect import check, open_database
from testing.fakes.openai_fake import FakeOpenAI
from testing.postgres import PostgresServer, free_port
from tests.harness import make_settings
from tests.test_cli import bot_env, run_bot


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


async def start_fails(fake: FakeOpenAI, tmp_path: Path, url: str) -> str:
    """`python -m bot console` with `url`: the one line it printed (exit 2, quickly)."""
    code, out, err = await run_bot(
        "console", env=bot_env(fake, tmp_path, DATABASE_URL=url), stdin=b"hi\n", cwd=tmp_path
    )
    assert code == 2, (code, out, err)
    assert out == ""
    line = one_line(err)
    assert line.startswith("switchboard: DATABASE_URL")
    return line


async def test_a_file_that_is_not_a_database(fake: FakeOpenAI, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are my notes, not a database " * 100)
    line = await start_fails(fake, tmp_path, f"sqlite:///{path}")
    assert "is not a SQLite database" in line
    assert path.read_bytes().startswith(b"these are my notes")  # left as it was


async def test_a_directory_and_a_folder_that_cannot_be_created(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    (tmp_path / "adir").mkdir()
    assert "is a directory" in await start_fails(fake, tmp_path, f"sqlite:///{tmp_path / 'adir'}")
    (tmp_path / "data").write_text("a file where the data folder should be")
    line = await start_fails(fake, tmp_path, "sqlite:///data/switchboard.db")
    assert "data/switchboard.db" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
async def test_a_folder_this_user_cannot_write(fake: FakeOpenAI, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        line = await start_fails(fake, tmp_path, f"sqlite:///{locked / 'db.sqlite'}")
        assert "cannot" in line and str(locked) in line
    finally:
        locked.chmod(0o700)


async def test_a_second_process_on_one_sqlite_file_is_pointed_to_postgres(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    path = tmp_path / "bot.db"
    db = await open_database(path)  # this test process is the first one
    try:
        line = await start_fails(fake, tmp_path, f"sqlite:///{path}")
        assert "in use by another Switchboard process" in line and f"(pid {os.getpid()})" in line
        assert "postgresql://" in line
    finally:
        await db.close()
    again = await open_database(path)  # free once the first one closed it
    await again.close()


async def test_postgres_mistakes(
    fake: FakeOpenAI, tmp_path: Path, postgres: PostgresServer
) -> None:
    wrong = "not-the-password-4711"
    line = await start_fails(fake, tmp_path, postgres.url(password=wrong))
    assert "rejected the user name or password" in line and wrong not in line
    assert postgres.password not in line
    line = await start_fails(fake, tmp_path, postgres.url("no_such_db"))
    assert "has no database no_such_db" in line and postgres.password not in line
    closed = f"postgresql://bot:hunter2-secret@127.0.0.1:{free_port()}/db"
    line = await start_fails(fake, tmp_path, closed)
    assert "cannot reach PostgreSQL" in line and "hunter2" not in line
    line = await start_fails(fake, tmp_path, f"{postgres.url()}?sslmode=require")
    assert "does not accept SSL" in line
    assert postgres.password not in line
    line = await start_fails(fake, tmp_path, "postgresql://bot:hunter2@127.0.0.1:notaport/db")
    assert "not a valid PostgreSQL URL" in line and "hunter2" not in line


async def test_postgres_url_forms_that_work(postgres: PostgresServer) -> None:
    for url in (
        postgres.url(),
        postgres.url().replace("postgresql://", "postgres://"),
        f"{postgres.url()}?sslmode=disable",
        f"{postgres.url()}?sslmode=prefer",
    ):
        db = await open_database(url)
        await db.close()
    with pytest.raises(ConfigError, match="sslmode"):
        await open_database(f"{postgres.url()}?sslmode=sometimes")


async def test_the_doctor_reports_the_same_mistakes(
    fake: FakeOpenAI, tmp_path: Path, postgres: PostgresServer
) -> None:
    (tmp_path / "adir").mkdir()
    assert "is a directory" in (await check(f"sqlite:///{tmp_path / 'adir'}") or "")
    (tmp_path / "data").write_text("a file")
    assert "data is a file" in (await check("sqlite:///data/x/db.sqlite") or "")
    assert "rejected" in (await check(postgres.url(password="wrong")) or "")
    url = postgres.create_database()
    assert await check(url) is None  # not migrated yet: the bot will
    db = await open_database(url)
    await db.close()
    assert await check(url) is None
    out = io.StringIO()
    await run_doctor(make_settings(fake.base_url, tmp_path, DATABASE_URL=url), out)
    assert f"ok    database PostgreSQL postgres@127.0.0.1:{postgres.port}/" in out.getvalue()
    assert postgres.password not in out.getvalue()


async def test_two_processes_starting_at_once_on_a_fresh_sqlite_file(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    """One migrates and answers; the other either waits its turn (it started after the first
    ended) or exits 2 at once with the line pointing to PostgreSQL. Never a crash or a hang."""
    env = bot_env(fake, tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}")
    results = await asyncio.gather(
        *(run_bot("console", env=env, stdin=b"hello\n", cwd=tmp_path) for _ in range(2))
    )
    assert 0 in [code for code, _, _ in results]
    for code, out, err in results:
        assert "Traceback" not in err
        if code == 0:
            assert out == "echo: hello\n"
        else:
            assert code == 2 and "in use by another Switchboard process" in one_line(err)


async def test_a_database_locked_by_another_program(fake: FakeOpenAI, tmp_path: Path) -> None:
    """Another program (here the sqlite3 module) holds an exclusive lock: after SQLite's busy
    timeout the bot stops with the line, it does not hang."""
    import contextlib
    import sqlite3

    path = tmp_path / "bot.db"
    db = await open_database(path)
    await db.close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        line = await start_fails(fake, tmp_path, f"sqlite:///{path}")
        other.execute("ROLLBACK")
    assert "is locked by another program" in line
