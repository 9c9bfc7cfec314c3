"""The PostgreSQL engine of `storage.db`: the only package that imports asyncpg."""

from storage.postgres.engine import PostgresDatabase, open_postgres

__all__ = ["PostgresDatabase", "open_postgres"]
