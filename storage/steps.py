"""What the model did for an answer (code it ran, tools it called, searches), for `/steps`."""

from __future__ import annotations

from collections.abc import Iterable

from bot.text.redact import redact
from storage.db import Database, Transaction

StepRow = tuple[str, str, str]  # kind, title, detail


async def save_steps(tx: Transaction, run_id: int, steps: Iterable[StepRow]) -> None:
    """Inside the caller's transaction (the run's final writes)."""
    rows = [
        (run_id, n, kind, redact(title), redact(detail))  # tool errors may quote a URL or a key
        for n, (kind, title, detail) in enumerate(steps)
    ]
    if rows:
        await tx.execute_many(
            "INSERT INTO run_steps (run_id, position, kind, title, detail) VALUES (?, ?, ?, ?, ?)",
            rows,
        )


async def load_steps(db: Database, run_id: int) -> list[StepRow]:
    rows = await db.fetch_all(
        "SELECT kind, title, detail FROM run_steps WHERE run_id = ? ORDER BY position", (run_id,)
    )
    return [(row["kind"], row["title"], row["detail"]) for row in rows]
