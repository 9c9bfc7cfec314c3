"""Opening a database: the engine is picked from `DATABASE_URL`.

- `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (or a `Path`): the embedded
  default, one process per file (a lock file beside it keeps a second process out);
- `postgresql://USER:PASSWORD@HOST:PORT/DB` (also `postgres://`; libpq parameters such as
  `?sslmode=require` are honoured): several processes may share it.

Every mistake found while opening (a wrong URL, a file that is not a database, a folder that
cannot be written, a server that cannot be reached, rejected credentials) is a `ConfigError`
of one line naming `DATABASE_URL` and what to do; no message ever holds the password.
"""

from __future__ import annotations

import errno
import os
import socket
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bot.core.config import ConfigError
from storage import sqlite
from storage.db import Database, StorageError
from storage.migrations import applied_migrations, apply_migrations, migrations_for
from storage.sqlite.lock import FileInUse

SQLITE = "sqlite:///"
POSTGRESQL = ("postgresql://", "postgres://")
SCALE_OUT = (
    "to run several processes, use PostgreSQL: DATABASE_URL=postgresql://USER:PASSWORD@HOST:PORT/DB"
)


@dataclass(frozen=True, slots=True)
class PostgresTarget:
    url: str  # as given (holds the password): only ever handed to the driver
    where: str  # user@host:port/database, for messages
    password: str


def is_postgres(url: str | Path) -> bool:
    return isinstance(url, str) and url.startswith(POSTGRESQL)


def sqlite_path(url_or_path: str | Path) -> Path:
    """The SQLite file named by a `DATABASE_URL` (`sqlite:///relative` or `sqlite:////absolute`)
    or given as a path; a `ConfigError` for any other engine. The error never quotes the URL
    (it may hold a password)."""
    if isinstance(url_or_path, Path):
        return url_or_path
    url = url_or_path
    if url.startswith(POSTGRESQL):
        raise ConfigError("DATABASE_URL names a PostgreSQL database, not a SQLite file")
    if url.startswith(SQLITE):
        url = url[len(SQLITE) :]
    elif "://" in url:
        raise ConfigError(
            f"DATABASE_URL must start with {SQLITE} or postgresql:// (got a different scheme)"
        )
    if not url:
        raise ConfigError("DATABASE_URL names no file")
    return Path(url)


def postgres_target(url: str) -> PostgresTarget:
    """The parts of a PostgreSQL URL the messages may name; a `ConfigError` for a malformed one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError(
            "DATABASE_URL is not a valid PostgreSQL URL (expected "
            "postgresql://USER:PASSWORD@HOST:PORT/DB): check the port and special characters "
            "(write them %-encoded)"
        ) from None
    host = parts.hostname or "localhost"
    database = unquote(parts.path.lstrip("/")) or unquote(parts.username or "") or "postgres"
    user = unquote(parts.username or "") or "(default user)"
    where = f"{user}@{host}:{port or 5432}/{database}"
    return PostgresTarget(url, where, unquote(parts.password or ""))


def describe(url_or_path: str | Path) -> str:
    """The database for humans (doctor, logs): a path, or user@host:port/db; never a password."""
    if is_postgres(url_or_path):
        return f"PostgreSQL {postgres_target(str(url_or_path)).where}"
    return str(sqlite_path(url_or_path))


def password_of(url: str) -> str | None:
    """The password in a PostgreSQL `DATABASE_URL` (to redact it from logs), or None."""
    if not is_postgres(url):
        return None
    try:
        return postgres_target(url).password or None
    except ConfigError:
        return None


async def open_database(url_or_path: str | Path) -> Database:
    """The database at `url_or_path`, created if missing, migrated to the latest schema."""
    if is_postgres(url_or_path):
        db = await _open_postgres(postgres_target(str(url_or_path)))
    else:
        db = await _open_sqlite(sqlite_path(url_or_path))
    try:
        await apply_migrations(db)
    except BaseException as exc:
        await db.close()
        if isinstance(exc, sqlite3.Error):
            raise _sqlite_problem(sqlite_path(url_or_path), exc) from None
        raise
    return db


async def _open_sqlite(path: Path) -> Database:
    if str(path) != ":memory:":
        # Checked before SQLite is asked: a failed open can leave aiosqlite's thread behind.
        problem = _sqlite_place_problem(path)
        if problem is not None:
            raise ConfigError(problem)
    try:
        return await sqlite.open_sqlite(path)
    except FileInUse as exc:
        raise ConfigError(
            f"DATABASE_URL: {path} is in use by another Switchboard process{exc.holder}; "
            f"one SQLite file serves one process ({SCALE_OUT})"
        ) from None
    except (OSError, sqlite3.Error) as exc:
        raise _sqlite_problem(path, exc) from None


def _sqlite_problem(path: Path, exc: BaseException) -> ConfigError:
    """One line for what stopped SQLite from opening or migrating `path`."""
    text = str(exc).lower()
    if path.is_dir():
        return ConfigError(f"DATABASE_URL: {path} is a directory; name a file inside it")
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ConfigError(
            f"DATABASE_URL: cannot create {path.parent} or write in it ({exc.strerror}); "
            "choose a folder this user may write, or fix its permissions"
        )
    if isinstance(exc, OSError):
        return ConfigError(f"DATABASE_URL: cannot use {path}: {exc.strerror or exc}")
    if "not a database" in text or "malformed" in text:
        return ConfigError(
            f"DATABASE_URL: {path} is not a SQLite database; point DATABASE_URL at another "
            "file (or move this one away)"
        )
    if "locked" in text or "busy" in text:
        return ConfigError(
            f"DATABASE_URL: {path} is locked by another program; stop it, or point "
            "DATABASE_URL at another file"
        )
    if "readonly" in text or "unable to open" in text or "read-only" in text:
        return ConfigError(
            f"DATABASE_URL: cannot write {path} (or its folder {path.parent}); choose a "
            "folder this user may write, or fix its permissions"
        )
    if "disk" in text and "full" in text:
        return ConfigError(f"DATABASE_URL: the disk holding {path} is full")
    return ConfigError(f"DATABASE_URL: cannot open {path}: {exc}")


async def _open_postgres(target: PostgresTarget) -> Database:
    from storage.postgres import open_postgres

    try:
        return await open_postgres(target.url, target.where)
    except Exception as exc:
        raise _postgres_problem(target, exc) from None


def _postgres_problem(target: PostgresTarget, exc: Exception) -> ConfigError:
    """One line for what stopped the first connection to PostgreSQL; never the password."""
    import asyncpg.exceptions as pgerr

    where = target.where
    if isinstance(exc, pgerr.InvalidPasswordError | pgerr.InvalidAuthorizationSpecificationError):
        return ConfigError(
            f"DATABASE_URL: PostgreSQL at {where} rejected the user name or password"
        )
    if isinstance(exc, pgerr.InvalidCatalogNameError):
        return ConfigError(
            f"DATABASE_URL: PostgreSQL has no database {where.rsplit('/', 1)[-1]} "
            f"({where}); create it first (createdb)"
        )
    if isinstance(exc, pgerr.CannotConnectNowError | pgerr.TooManyConnectionsError):
        return ConfigError(f"DATABASE_URL: PostgreSQL at {where} is not taking connections now")
    if isinstance(exc, socket.gaierror):
        return ConfigError(f"DATABASE_URL: the host of {where} is not known (DNS)")
    if isinstance(exc, ConnectionRefusedError):
        return ConfigError(
            f"DATABASE_URL: cannot reach PostgreSQL at {where} (connection refused): is it "
            "running, and is the host and port right?"
        )
    if isinstance(exc, TimeoutError):
        return ConfigError(f"DATABASE_URL: cannot reach PostgreSQL at {where} (timed out)")
    detail = str(exc).replace(target.password, "***") if target.password else str(exc)
    detail = detail.splitlines()[0] if detail else type(exc).__name__
    if "SSL" in detail and "rejected" in detail:
        return ConfigError(
            f"DATABASE_URL: PostgreSQL at {where} does not accept SSL, which the URL's sslmode "
            "requires: enable SSL on the server, or set sslmode=prefer or disable"
        )
    if isinstance(exc, OSError | ConnectionError):
        return ConfigError(f"DATABASE_URL: cannot reach PostgreSQL at {where}: {detail}")
    if isinstance(exc, ValueError) or type(exc).__name__ == "ClientConfigurationError":
        return ConfigError(f"DATABASE_URL is not a valid PostgreSQL URL: {detail}")
    return ConfigError(f"DATABASE_URL: PostgreSQL at {where} refused the connection: {detail}")


@asynccontextmanager
async def open_existing(url_or_path: str | Path) -> AsyncIterator[Database | None]:
    """The database at `url_or_path` opened read-only, never created or migrated (the doctor);
    None when there is none yet. A database that cannot be read raises `StorageError`."""
    if is_postgres(url_or_path):
        target = postgres_target(str(url_or_path))
        try:
            db = await _open_postgres(target)
        except ConfigError as exc:
            raise StorageError(str(exc)) from None
        try:
            found = await db.fetch_one("SELECT to_regclass('schema_migrations') IS NOT NULL")
            yield db if found and found[0] else None
        finally:
            await db.close()
        return
    async with sqlite.open_read_only(sqlite_path(url_or_path)) as existing:
        yield existing


async def check(url_or_path: str | Path) -> str | None:
    """What is wrong with the database at `url_or_path`, or None when it is usable (or not
    created yet: the bot creates it at start). Read-only."""
    try:
        name = describe(url_or_path)
        if not is_postgres(url_or_path):
            problem = _sqlite_place_problem(sqlite_path(url_or_path))
            if problem is not None:
                return problem
    except ConfigError as exc:
        return str(exc)
    try:
        async with open_existing(url_or_path) as db:
            if db is None:
                return None
            names = await applied_migrations(db)
            known = {n for n, _ in migrations_for(db)}
    except StorageError as exc:
        if is_postgres(url_or_path):
            return str(exc)
        if "not a database" in str(exc):
            return str(_sqlite_problem(sqlite_path(url_or_path), sqlite3.DatabaseError(str(exc))))
        return f"database {name} cannot be read: {exc}"
    unknown = sorted(names - known)
    if unknown:
        return (
            f"database {name} was migrated by a newer version of Switchboard "
            f"(unknown migrations: {', '.join(unknown)})"
        )
    return None


def _sqlite_place_problem(path: Path) -> str | None:
    """What would stop the bot creating or writing the SQLite file at `path`, without creating
    anything: a directory in its place, or a folder this user cannot create or write."""
    if path.is_dir():
        return f"DATABASE_URL: {path} is a directory; name a file inside it"
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return (
            f"DATABASE_URL: cannot create the folder {folder} for {path}: {existing} is a file; "
            "move it away or choose another path"
        )
    writable_target = folder if folder.exists() else existing
    if not os.access(writable_target, os.W_OK | os.X_OK):
        return (
            f"DATABASE_URL: this user cannot write in {writable_target}; choose a folder this "
            "user may write, or fix its permissions"
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"DATABASE_URL: this user cannot read and write {path}; fix its permissions"
    return None
