"""Per-channel assistant settings, stored as JSON overrides; channel '' holds workspace defaults."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.types import ConversationKey
from storage.db import Database, Transaction

WORKSPACE = ""


async def load_overrides(
    db: Database, key: ConversationKey, *, fresh: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(workspace defaults, channel overrides) for the channel of `key`, as fresh copies. Cached
    in the process (read on every turn, written rarely); `save_overrides` drops stale copies.
    `fresh`: read the rows whatever is cached (a read-modify-write)."""
    memo_key = ("channel_configs", key.platform, key.workspace, key.channel)
    cached = None if fresh else db.memo.get(memo_key)
    if cached is None:
        mark = db.memo_mark()
        cached = await _read_overrides(db, key)
        db.remember(memo_key, cached, read_at=mark)
    workspace, channel = cached  # type: ignore[misc]
    return dict(workspace), dict(channel)


async def _read_overrides(
    db: Database, key: ConversationKey
) -> tuple[dict[str, Any], dict[str, Any]]:
    rows = await db.fetch_all(
        "SELECT channel, settings FROM channel_configs WHERE platform = ? AND workspace = ? "
        "AND channel IN (?, ?)",
        (key.platform, key.workspace, WORKSPACE, key.channel),
    )
    found = {row["channel"]: json.loads(row["settings"]) for row in rows}
    return found.get(WORKSPACE, {}), found.get(key.channel, {}) if key.channel else {}


@dataclass(frozen=True, slots=True)
class Change:
    """One field's change, for the audit: `old`/`new` are None when the field is not set at that
    scope (inherited)."""

    field: str
    old: Any
    new: Any


async def save_overrides(
    db: Database,
    key: ConversationKey,
    settings: dict[str, Any],
    *,
    updated_by: str,
    workspace_wide: bool = False,
) -> None:
    """Unaudited (set-up and tests); changes made in chat go through `save_overrides_audited`."""
    channel = WORKSPACE if workspace_wide else key.channel
    await db.execute(_UPSERT, _upsert_params(key, channel, settings, updated_by, time.time()))
    _forget(db, key, workspace_wide)


async def save_overrides_audited(
    db: Database,
    key: ConversationKey,
    settings: dict[str, Any],
    changes: Sequence[Change],
    *,
    updated_by: str,
    workspace_wide: bool = False,
    also: Callable[[Transaction], Awaitable[None]] | None = None,
) -> None:
    """`save_overrides` and one audit row per change, in ONE transaction (all or nothing);
    `also` adds the caller's own statements to that transaction (e.g. knowledge rows)."""
    channel = WORKSPACE if workspace_wide else key.channel
    now = time.time()
    async with db.transaction() as tx:
        await tx.execute(_UPSERT, _upsert_params(key, channel, settings, updated_by, now))
        await tx.execute_many(
            "INSERT INTO assistant_changes (platform, workspace, channel, field, old_value, "
            "new_value, changed_by, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    key.platform,
                    key.workspace,
                    channel,
                    change.field,
                    _json_or_null(change.old),
                    _json_or_null(change.new),
                    updated_by,
                    now,
                )
                for change in changes
            ],
        )
        if also is not None:
            await also(tx)
    _forget(db, key, workspace_wide)


async def set_channel_field(
    db: Database, key: ConversationKey, field: str, value: Any, *, updated_by: str
) -> Change | None:
    """Set one field of the channel's overrides (`None` removes it), audited; the change, or
    None when the value was already so."""
    _, channel = await load_overrides(db, key)
    old = channel.get(field)
    if value is None:
        if field not in channel:
            return None
        del channel[field]
    elif field in channel and old == value:
        return None
    else:
        channel[field] = value
    change = Change(field, old, value)
    await save_overrides_audited(db, key, channel, [change], updated_by=updated_by)
    return change


@dataclass(frozen=True, slots=True)
class StoredOverrides:
    platform: str
    workspace: str
    channel: str  # '' = the workspace defaults
    settings: dict[str, Any]


async def all_overrides(db: Database) -> list[StoredOverrides]:
    """Every stored override (the doctor's look at channels' settings); rows whose settings are
    not a JSON object are left out."""
    rows = await db.fetch_all(
        "SELECT platform, workspace, channel, settings FROM channel_configs "
        "ORDER BY platform, workspace, channel"
    )
    found = []
    for row in rows:
        try:
            settings = json.loads(row["settings"])
        except ValueError:
            continue
        if isinstance(settings, dict):
            found.append(
                StoredOverrides(row["platform"], row["workspace"], row["channel"], settings)
            )
    return found


@dataclass(frozen=True, slots=True)
class AuditRow:
    channel: str  # '' = the workspace defaults
    field: str
    old: Any
    new: Any
    changed_by: str
    changed_at: float


async def recent_changes(db: Database, key: ConversationKey, limit: int) -> list[AuditRow]:
    """The last `limit` changes to this channel's settings and to the workspace defaults,
    newest first."""
    rows = await db.fetch_all(
        "SELECT channel, field, old_value, new_value, changed_by, changed_at "
        "FROM assistant_changes WHERE platform = ? AND workspace = ? AND channel IN (?, ?) "
        "ORDER BY id DESC LIMIT ?",
        (key.platform, key.workspace, WORKSPACE, key.channel, limit),
    )
    return [
        AuditRow(
            row["channel"],
            row["field"],
            _loads(row["old_value"]),
            _loads(row["new_value"]),
            row["changed_by"],
            row["changed_at"],
        )
        for row in rows
    ]


_UPSERT = (
    "INSERT INTO channel_configs (platform, workspace, channel, settings, updated_at, "
    "updated_by) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (platform, workspace, channel) DO "
    "UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at, "
    "updated_by = excluded.updated_by"
)


def _upsert_params(
    key: ConversationKey, channel: str, settings: dict[str, Any], updated_by: str, now: float
) -> tuple[Any, ...]:
    return (
        key.platform,
        key.workspace,
        channel,
        json.dumps(settings, sort_keys=True),
        now,
        updated_by,
    )


def _json_or_null(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _forget(db: Database, key: ConversationKey, workspace_wide: bool) -> None:
    """Forget the cached copies a write made stale: one channel, or (for a workspace default)
    every channel of the workspace."""
    db.forget(
        lambda memo_key: (
            isinstance(memo_key, tuple)
            and memo_key[:3] == ("channel_configs", key.platform, key.workspace)
            and (workspace_wide or memo_key[3] == key.channel)
        )
    )
