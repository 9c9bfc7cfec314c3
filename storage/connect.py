"""Opening a database: the engine is picked from `DATABASE_URL` (`sqlite:///…` today)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.core.config import ConfigError
from storage import sqlite
from storage.db import Database, StorageError
from storage.migrations import MIGRATIONS, applied_migrations, apply_migrations

SQLITE = "sqlite:///"
POSTGRESQL = ("postgresql://", "postgres://")


def sqlite_path(url_or_path: str | Path) -> Path:
    """The SQLite file named by a `DATABASE_URL` (`sqlite:///relative` or `sqlite:////absolute`)
    or given as a path; a `ConfigError` for any other engine. The error never quotes the URL
    (it may hold a password)."""
    if isinstance(url_or_path, Path):
        return url_or_path
    url = url_or_path
    if url.startswith(POSTGRESQL):
        raise ConfigError(
            "DATABASE_URL: PostgreSQL is not supported yet; use sqlite:///path/to/file.db"
        )
    if url.startswith(SQLITE):
        url = url[len(SQLITE) :]
    elif "://" in url:
        raise ConfigError(f"DATABASE_URL must start with {SQLITE} (got a different scheme)")
    if not url:
        raise ConfigError("DATABASE_URL names no file")
    return Path(url)


async def open_database(url_or_path: str | Path) -> Database:
    """The database at `url_or_path`, created if missing, migrated to the latest schema."""
    db = await sqlite.open_sqlite(sqlite_path(url_or_path))
    try:
        await apply_migrations(db)
    except BaseException:
        await db.close()
        raise
    return db


@asynccontextmanager
async def open_existing(url_or_path: str | Path) -> AsyncIterator[Database | None]:
    """The database at `url_or_path` opened read-only, never created or migrated (the doctor);
    None when there is none yet. A database that cannot be read raises `StorageError`."""
    async with sqlite.open_read_only(sqlite_path(url_or_path)) as db:
        yield db


async def check(url_or_path: str | Path) -> str | None:
    """What is wrong with the database at `url_or_path`, or None when it is usable (or not
    created yet: the bot creates it at start). Read-only."""
    try:
        path = sqlite_path(url_or_path)
    except ConfigError as exc:
        return str(exc)
    try:
        async with open_existing(path) as db:
            if db is None:
                return None
            names = await applied_migrations(db)
    except StorageError as exc:
        return f"database {path} cannot be read: {exc}"
    unknown = sorted(names - {name for name, _ in MIGRATIONS})
    if unknown:
        return (
            f"database {path} was migrated by a newer version of Switchboard "
            f"(unknown migrations: {', '.join(unknown)})"
        )
    return None
