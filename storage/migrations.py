"""Append-only, named schema migrations, recorded in `schema_migrations`, applied through the
`storage.db` interface when a database is opened.

Never edit or reorder a migration that has shipped: add a new one at the end, under one name for
both engines: `MIGRATIONS` holds SQLite's DDL (`INTEGER PRIMARY KEY` ids, `REAL` timestamps),
`storage.postgres.schema.MIGRATIONS` PostgreSQL's for the same names (identity ids, `DOUBLE
PRECISION` timestamps, and an explicit `rowid` where the repositories read insertion order).
tests/test_migrations.py checks that both lists name the same migrations and build the same
tables and columns.

Two processes starting at once on a fresh database: each migration runs in a transaction that
first takes the migration lock (`Database.lock`) and then checks again whether another process
applied it meanwhile, so exactly one applies it and the other goes on.
"""

from __future__ import annotations

import time

from storage.db import Database

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_initial",
        """
        CREATE TABLE channel_configs (
            platform   TEXT NOT NULL,
            workspace  TEXT NOT NULL,
            channel    TEXT NOT NULL,          -- '' = the workspace defaults
            settings   TEXT NOT NULL,          -- JSON object of overridden fields only
            updated_at REAL NOT NULL,
            updated_by TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (platform, workspace, channel)
        );

        CREATE TABLE conversations (
            id          INTEGER PRIMARY KEY,
            platform    TEXT NOT NULL,
            workspace   TEXT NOT NULL,
            channel     TEXT NOT NULL,
            thread      TEXT NOT NULL,         -- '' = the whole channel
            backend     TEXT NOT NULL,
            backend_conversation_id TEXT,      -- Conversations API id (responses backend)
            created_at  REAL NOT NULL,
            archived_at REAL
        );
        CREATE UNIQUE INDEX conversations_active
            ON conversations (platform, workspace, channel, thread, backend)
            WHERE archived_at IS NULL;

        CREATE TABLE messages (
            id              INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id),
            role            TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content         TEXT NOT NULL,
            run_id          INTEGER REFERENCES runs(id),
            created_at      REAL NOT NULL
        );
        CREATE INDEX messages_by_conversation ON messages (conversation_id, id);

        CREATE TABLE runs (
            id              INTEGER PRIMARY KEY,
            conversation_id INTEGER REFERENCES conversations(id),
            platform        TEXT NOT NULL,
            workspace       TEXT NOT NULL,
            channel         TEXT NOT NULL,
            thread          TEXT NOT NULL,
            user_id         TEXT NOT NULL,
            event_id        TEXT NOT NULL,
            kind            TEXT NOT NULL,     -- chat, image, speech, transcription, ...
            backend         TEXT NOT NULL DEFAULT '',
            model           TEXT NOT NULL DEFAULT '',
            status          TEXT NOT NULL CHECK (status IN (
                'queued', 'in_progress', 'requires_action', 'completed',
                'failed', 'cancelled', 'expired', 'interrupted')),
            response_id     TEXT,
            error           TEXT,
            created_at      REAL NOT NULL,
            started_at      REAL,
            finished_at     REAL
        );
        CREATE INDEX runs_by_status ON runs (status) WHERE status IN ('queued', 'in_progress');
        CREATE INDEX runs_by_channel ON runs (platform, workspace, channel, created_at);

        CREATE TABLE usage (
            run_id              INTEGER PRIMARY KEY REFERENCES runs(id),
            model               TEXT NOT NULL,
            input_tokens        INTEGER NOT NULL DEFAULT 0,
            cached_tokens       INTEGER NOT NULL DEFAULT 0,
            output_tokens       INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens    INTEGER NOT NULL DEFAULT 0,
            image_input_tokens  INTEGER NOT NULL DEFAULT 0,
            image_output_tokens INTEGER NOT NULL DEFAULT 0,
            images              INTEGER NOT NULL DEFAULT 0,
            audio_seconds       REAL NOT NULL DEFAULT 0,
            characters          INTEGER NOT NULL DEFAULT 0,
            cost_usd            REAL,          -- NULL = unknown (model missing from the price table)
            created_at          REAL NOT NULL
        );

        CREATE TABLE processed_events (
            platform    TEXT NOT NULL,
            event_id    TEXT NOT NULL,
            received_at REAL NOT NULL,
            PRIMARY KEY (platform, event_id)
        );
        CREATE INDEX processed_events_by_age ON processed_events (received_at);
        """,
    ),
    (
        "002_tool_fees_budgets_moderation",
        """
        ALTER TABLE usage ADD COLUMN file_search_calls INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE usage ADD COLUMN web_search_calls INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE usage ADD COLUMN container_sessions INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX runs_by_user ON runs (platform, workspace, user_id, created_at);
        CREATE INDEX runs_by_time ON runs (created_at);

        CREATE TABLE moderation_flags (
            id          INTEGER PRIMARY KEY,
            platform    TEXT NOT NULL,
            workspace   TEXT NOT NULL,
            channel     TEXT NOT NULL,
            user_id     TEXT NOT NULL,
            event_id    TEXT NOT NULL,
            categories  TEXT NOT NULL,         -- JSON list of flagged category names
            excerpt     TEXT NOT NULL,         -- the first 200 characters, for admins
            created_at  REAL NOT NULL
        );
        """,
    ),
    (
        "003_tools",
        """
        CREATE TABLE conversation_containers (
            conversation_id INTEGER PRIMARY KEY REFERENCES conversations(id),
            container_id    TEXT NOT NULL,     -- code interpreter container, reused across turns
            created_at      REAL NOT NULL
        );
        """,
    ),
    (
        "004_assistant_admin",
        """
        CREATE TABLE assistant_changes (
            id          INTEGER PRIMARY KEY,
            platform    TEXT NOT NULL,
            workspace   TEXT NOT NULL,
            channel     TEXT NOT NULL,         -- '' = the workspace defaults
            field       TEXT NOT NULL,         -- the AssistantConfig field, or 'knowledge'
            old_value   TEXT,                  -- JSON; NULL = not set at this scope (inherited)
            new_value   TEXT,                  -- JSON; NULL = removed (inherited from now on)
            changed_by  TEXT NOT NULL,
            changed_at  REAL NOT NULL
        );
        CREATE INDEX assistant_changes_by_channel
            ON assistant_changes (platform, workspace, channel, id);

        CREATE TABLE knowledge_files (
            platform        TEXT NOT NULL,
            workspace       TEXT NOT NULL,
            channel         TEXT NOT NULL,
            name            TEXT NOT NULL,
            file_id         TEXT NOT NULL,     -- the OpenAI file (purpose assistants)
            vector_store_id TEXT NOT NULL,
            status          TEXT NOT NULL CHECK (status IN ('in_progress', 'completed')),
            bytes           INTEGER NOT NULL DEFAULT 0,
            added_by        TEXT NOT NULL,
            added_at        REAL NOT NULL,
            PRIMARY KEY (platform, workspace, channel, name)
        );
        """,
    ),
    (
        "005_inbox_lifecycle",
        """
        -- The durable inbox: an accepted event keeps what is needed to handle it again
        -- (`payload`, JSON) until it is handled (`done_at`); rows from before have no payload.
        ALTER TABLE processed_events ADD COLUMN payload TEXT;
        ALTER TABLE processed_events ADD COLUMN done_at REAL;
        CREATE INDEX processed_events_pending ON processed_events (received_at)
            WHERE payload IS NOT NULL AND done_at IS NULL;

        -- When the first text of an answer was shown (recovery tells the user instead of
        -- answering twice), and the lookups of /steps and recovery.
        ALTER TABLE runs ADD COLUMN shown_at REAL;
        CREATE INDEX runs_by_event ON runs (platform, event_id);
        CREATE INDEX runs_by_conversation_key ON runs (platform, workspace, channel, thread, id);

        CREATE TABLE run_steps (
            run_id   INTEGER NOT NULL REFERENCES runs(id),
            position INTEGER NOT NULL,
            kind     TEXT NOT NULL,
            title    TEXT NOT NULL,
            detail   TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (run_id, position)
        );
        """,
    ),
    (
        "006_work_queue",
        """
        -- Several processes (PostgreSQL) share the inbox as their work queue: the process
        -- working on an event (`owner`, a replica id), and the conversation whose order it
        -- keeps (`conversation`; NULL for events outside any conversation's lane).
        ALTER TABLE processed_events ADD COLUMN conversation TEXT;
        ALTER TABLE processed_events ADD COLUMN owner TEXT;
        CREATE INDEX processed_events_by_conversation ON processed_events (conversation)
            WHERE payload IS NOT NULL AND done_at IS NULL;

        -- The processes alive now: each renews `seen_at`; one that stops renewing is dead and
        -- its events are taken over (storage.work).
        CREATE TABLE replicas (
            id         TEXT PRIMARY KEY,
            started_at REAL NOT NULL,
            seen_at    REAL NOT NULL
        );

        -- Per-user request times of the last minute, shared by every process (JSON list).
        CREATE TABLE rate_limits (
            scope TEXT PRIMARY KEY,
            hits  TEXT NOT NULL DEFAULT '[]'
        );
        """,
    ),
]

MIGRATION_LOCK = "switchboard-migrations"


def migrations_for(db: Database) -> list[tuple[str, str]]:
    """The migrations in `db`'s dialect."""
    if db.dialect == "postgresql":
        from storage.postgres.schema import MIGRATIONS as POSTGRES

        return POSTGRES
    return MIGRATIONS


async def apply_migrations(db: Database) -> list[str]:
    """Apply every migration not yet recorded, each in its own transaction under the migration
    lock; return the names this call applied."""
    async with db.transaction() as tx:
        await db.lock(tx, MIGRATION_LOCK)
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
        )
    done = await applied_migrations(db)
    applied: list[str] = []
    for name, sql in migrations_for(db):
        if name in done:
            continue
        async with db.transaction() as tx:
            await db.lock(tx, MIGRATION_LOCK)
            if await tx.fetch_one("SELECT name FROM schema_migrations WHERE name = ?", (name,)):
                continue  # another process applied it while this one waited for the lock
            for statement in _statements(sql):
                await tx.execute(statement)
            await tx.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                (name, time.time()),
            )
        applied.append(name)
    return applied


async def applied_migrations(db: Database) -> set[str]:
    """The names of the migrations recorded in the database."""
    return {row["name"] for row in await db.fetch_all("SELECT name FROM schema_migrations")}


def _statements(script: str) -> list[str]:
    """Split a migration into statements, each sent on its own (a script runner may commit)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
