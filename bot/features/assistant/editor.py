"""Writing a channel's or workspace's assistant overrides, with their audit rows."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from bot.core.types import ConversationKey
from bot.features.assistant import args
from storage import configs
from storage.configs import Change
from storage.db import Database, Transaction

log = logging.getLogger(__name__)


class ConfigEditor:
    """Read-modify-write of a scope's overrides, serialised in this process, with an audit row
    per changed field in the same transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = asyncio.Lock()

    async def edit(
        self,
        key: ConversationKey,
        actor_id: str,
        updates: Mapping[str, Any],
        *,
        workspace_wide: bool = False,
        notes: Sequence[Change] = (),
        also: Callable[[Transaction], Awaitable[None]] | None = None,
    ) -> list[Change]:
        """Apply `updates` (attr → value, or `INHERIT` to remove the override) at the channel
        or workspace scope; `notes` are extra audit rows (knowledge files), `also` extra
        statements for the same transaction. Returns the fields that changed."""
        async with self._lock:
            # Read-modify-write on the rows themselves, never on a cached copy.
            workspace, channel = await configs.load_overrides(self._db, key, fresh=True)
            target = workspace if workspace_wide else channel
            changes: list[Change] = []
            for attr, value in updates.items():
                old = target.get(attr)
                if isinstance(value, args.Inherit):
                    if attr in target:
                        del target[attr]
                        changes.append(Change(attr, old, None))
                    continue
                stored = list(value) if isinstance(value, tuple) else value
                if old != stored or attr not in target:
                    target[attr] = stored
                    changes.append(Change(attr, old, stored))
            if not changes and not notes and also is None:
                return []
            await configs.save_overrides_audited(
                self._db,
                key,
                target,
                [*changes, *notes],
                updated_by=actor_id,
                workspace_wide=workspace_wide,
                also=also,
            )
            log.info(
                "assistant settings changed at %s%s by %s: %s",
                key.channel_key,
                " (workspace default)" if workspace_wide else "",
                actor_id,
                ", ".join(c.field for c in [*changes, *notes]),
            )
            return changes
