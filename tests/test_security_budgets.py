"""Issue 19, item 6: budgets that cannot be walked around. Checked again when a run starts, a
model missing from the price table refused where budgets apply, Discord DMs counted against the
user's budget. Through slack-bolt and discord.py against their fakes, the real core behind."""

from __future__ import annotations

from pathlib import Path

from storage import configs
from testing.fakes import slack_payloads as P
from testing.fakes.openai_fake import FakeOpenAI
from tests.test_discord_adapter import (  # noqa: F401 (fixtures)
    discord_seams,
    fake_discord,
    mention,
    openai_fake,
    running_bot,
)
from tests.test_slack_adapter import start_env, stop_env, until

TINY = "0.000001"


async def test_messages_queued_under_a_budget_are_checked_again_when_they_start(
    tmp_path: Path,
) -> None:
    env = await start_env(tmp_path, SWITCHBOARD_BUDGET_USER_DAILY_USD=TINY)
    try:
        env.openai.latency = 0.3  # the first answer is still running while the rest queue up
        thread = P.app_mention("start")
        await env.slack.send_event(thread)
        for n in range(19):
            await env.slack.send_event(P.app_mention(f"more {n}", thread_ts=thread["ts"]))
        await env.settle(20, seconds=20)
        assert (
            len(env.openai.turns) == 1
        )  # was 20: every message had passed the check when it queued
        texts = env.bot_texts(P.CHANNEL_ID, thread["ts"])
        assert sum("your daily limit" in t for t in texts) == 19
        rows = await env.app.db.fetch_all(
            "SELECT status, count(*) AS n FROM runs GROUP BY status ORDER BY status"
        )
        assert {r["status"]: r["n"] for r in rows} == {"completed": 1, "failed": 19}
    finally:
        await stop_env(env)


async def test_an_unpriced_model_is_refused_where_a_budget_applies(tmp_path: Path) -> None:
    env = await start_env(tmp_path, SWITCHBOARD_BUDGET_CHANNEL_MONTHLY_USD=5)
    try:
        key_channel = configs.ConversationKey("slack", "T1", P.CHANNEL_ID)
        await configs.save_overrides(
            env.app.db, key_channel, {"model": "gpt-5-mini"}, updated_by="test"
        )
        await env.slack.send_event(P.im_message("free lunch?", channel=P.CHANNEL_ID))
        mention_event = P.app_mention("free lunch?")
        await env.slack.send_event(mention_event)
        await env.settle(2)
        texts = env.bot_texts(P.CHANNEL_ID, mention_event["ts"])
        assert any("`gpt-5-mini` is not in the price table" in t for t in texts), texts
        assert env.openai.turns == []
    finally:
        await stop_env(env)


async def test_discord_dms_count_against_the_users_daily_budget(
    discord_seams: None,  # noqa: F811
    openai_fake: FakeOpenAI,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with (
        fake_discord() as dc,
        running_bot(dc, openai_fake, tmp_path, SWITCHBOARD_BUDGET_USER_DAILY_USD=TINY) as bot,
    ):
        incoming = await dc.send_message_create(
            dc.text_channel["id"], dc.member, mention(dc, "in the server")
        )
        await bot.answer_to(incoming)
        dm = dc.dm_channel(dc.member)
        direct = await dc.send_message_create(dm["id"], dc.member, "and now in private")
        refused = await bot.answer_to(direct)
        assert "your daily limit" in refused["content"]
        assert len(openai_fake.turns) == 1
        await until(lambda: True)
