"""Issue 19, item 12 (storage): a secret a user pastes reaches the model but is not kept on disk;
message history, answer steps and moderation flags are deleted after SWITCHBOARD_RETENTION_DAYS,
handled event ids after a week, while the bot runs. Through slack-bolt and the real SQLite."""

from __future__ import annotations

import time
from pathlib import Path

from bot.app import housekeep
from testing.fakes import slack_payloads as P
from tests.test_slack_adapter import start_env, stop_env

SECRET = "sk-proj-fake-key-Abcdefghijklmnop0123"


async def test_a_pasted_secret_reaches_the_model_but_not_the_disk(tmp_path: Path) -> None:
    env = await start_env(tmp_path, SWITCHBOARD_BACKEND="chat")
    try:
        await env.slack.send_event(P.im_message(f"is this key still valid? {SECRET}"))
        await env.settle(1)
        (turn,) = env.openai.turns
        assert SECRET in turn.messages[-1][1]  # the model still gets the text
        db = env.app.db
        stored = [r["content"] for r in await db.fetch_all("SELECT content FROM messages")]
        assert stored and not any(SECRET in text for text in stored)
        assert any("[redacted]" in text for text in stored)
        events = await db.fetch_all("SELECT payload FROM processed_events")
        assert not any(SECRET in (row["payload"] or "") for row in events)
    finally:
        await stop_env(env)


async def test_retention_prunes_old_texts_and_keeps_the_spending_record(tmp_path: Path) -> None:
    env = await start_env(tmp_path, SWITCHBOARD_BACKEND="chat", SWITCHBOARD_RETENTION_DAYS=30)
    try:
        assert env.app.housekeeping is not None and not env.app.housekeeping.done()
        for n in range(2):
            await env.slack.send_event(P.im_message(f"message {n}"))
            await env.settle(n + 1)
        db = env.app.db
        old = time.time() - 31 * 86_400
        first = await db.fetch_one("SELECT min(id) AS id FROM runs")
        assert first is not None
        await db.execute("UPDATE runs SET created_at = ? WHERE id = ?", (old, first["id"]))
        await db.execute("UPDATE messages SET created_at = ? WHERE run_id = ?", (old, first["id"]))
        await db.execute(
            "INSERT INTO run_steps (run_id, position, kind, title, detail) "
            "VALUES (?, 0, 'function_call', 'old', 'old output')",
            (first["id"],),
        )
        await db.execute(
            "INSERT INTO moderation_flags (platform, workspace, channel, user_id, event_id, "
            "categories, excerpt, created_at) VALUES ('slack', 'T1', 'C1', 'U1', 'e', '[]', "
            "'old', ?)",
            (old,),
        )
        await db.execute("UPDATE processed_events SET received_at = ?", (old,))

        await housekeep(db, env.app.settings)

        assert len(await db.fetch_all("SELECT 1 FROM messages")) == 2  # the recent turn's
        assert await db.fetch_all("SELECT 1 FROM run_steps") == []
        assert await db.fetch_all("SELECT 1 FROM moderation_flags") == []
        assert await db.fetch_all("SELECT 1 FROM processed_events") == []
        assert len(await db.fetch_all("SELECT 1 FROM runs")) == 2  # spending kept
        assert len(await db.fetch_all("SELECT 1 FROM usage")) == 2
    finally:
        await stop_env(env)
