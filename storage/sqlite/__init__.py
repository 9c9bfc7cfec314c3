"""The SQLite engine of `storage.db`: the only package that imports aiosqlite or sqlite3."""

from storage.sqlite.engine import SqliteDatabase, open_read_only, open_sqlite

__all__ = ["SqliteDatabase", "open_read_only", "open_sqlite"]
