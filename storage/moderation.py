"""Messages refused by moderation, kept for admins (`/usage` counts them)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from bot.core.types import ConversationKey
from storage.db import Database


async def record_flag(
    db: Database,
    key: ConversationKey,
    user_id: str,
    event_id: str,
    categories: Sequence[str],
    excerpt: str,
) -> None:
    await db.execute(
        "INSERT INTO moderation_flags (platform, workspace, channel, user_id, event_id, "
        "categories, excerpt, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key.platform,
            key.workspace,
            key.channel,
            user_id,
            event_id,
            json.dumps(list(categories)),
            excerpt,
            time.time(),
        ),
    )
