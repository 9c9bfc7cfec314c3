"""Per-channel assistant settings, stored as JSON overrides; channel '' holds workspace defaults."""

from __future__ import annotations

import json
import time
from typing import Any

from bot.types import ConversationKey
from storage.db import Database

WORKSPACE = ""


async def load_overrides(
    db: Database, key: ConversationKey
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(workspace defaults, channel overrides) for the channel of `key`, as fresh copies. Cached
    in the process (read on every turn, written rarely); `save_overrides` drops stale copies."""
    memo_key = ("channel_configs", key.platform, key.workspace, key.channel)
    cached = db.memo.get(memo_key)
    if cached is None:
        cached = await _read_overrides(db, key)
        db.remember(memo_key, cached)
    workspace, channel = cached  # type: ignore[misc]
    return dict(workspace), dict(channel)


async def _read_overrides(
    db: Database, key: ConversationKey
) -> tuple[dict[str, Any], dict[str, Any]]:
    rows = await db.fetchall(
        "SELECT channel, settings FROM channel_configs WHERE platform = ? AND workspace = ? "
        "AND channel IN (?, ?)",
        (key.platform, key.workspace, WORKSPACE, key.channel),
    )
    found = {row["channel"]: json.loads(row["settings"]) for row in rows}
    return found.get(WORKSPACE, {}), found.get(key.channel, {}) if key.channel else {}


async def save_overrides(
    db: Database,
    key: ConversationKey,
    settings: dict[str, Any],
    *,
    updated_by: str,
    workspace_wide: bool = False,
) -> None:
    channel = WORKSPACE if workspace_wide else key.channel
    await db.write(
        "INSERT INTO channel_configs (platform, workspace, channel, settings, updated_at, "
        "updated_by) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (platform, workspace, channel) DO "
        "UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at, "
        "updated_by = excluded.updated_by",
        (
            key.platform,
            key.workspace,
            channel,
            json.dumps(settings, sort_keys=True),
            time.time(),
            updated_by,
        ),
    )
    # Forget the cached copies this write makes stale: one channel, or (for a workspace
    # default) every channel of the workspace.
    for memo_key in list(db.memo):
        if (
            isinstance(memo_key, tuple)
            and memo_key[:3] == ("channel_configs", key.platform, key.workspace)
            and (workspace_wide or memo_key[3] == key.channel)
        ):
            del db.memo[memo_key]
