"""Issue 7 at the core: costs, /usage, budgets (boundaries, resets, races), rate limits, export."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from bot.core.config import MODEL_DEFAULTS
from bot.core.types import Actor, ConversationKey, Usage
from bot.spend.pricing import PriceTable
from bot.spend.quota import Quota, RateLimiter, day_start, month_start, next_day, next_month
from storage import runs
from storage.connect import open_database
from testing.fakes.openai_fake import FakeOpenAI
from tests.harness import KEY, USER, Harness, make_settings
from tests.test_cli import bot_env, run_bot

ADMIN = Actor("UADMIN", "root", is_admin=True)
BOB = Actor("UBOB", "bob")
TINY = "0.000001"  # any real answer costs more than this


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


async def start(fake: FakeOpenAI, tmp_path: Path, **settings: object) -> Harness:
    return await Harness.start(make_settings(fake.base_url, tmp_path, **settings))


# ----------------------------------------------------------------------------- cost arithmetic


def test_cost_per_kind_from_the_price_table() -> None:
    prices = PriceTable.load()
    chat = prices.models[MODEL_DEFAULTS["chat"]]
    reasoning = Usage(
        model=MODEL_DEFAULTS["chat"], input_tokens=1000, output_tokens=500, reasoning_tokens=400
    )
    assert prices.cost(reasoning) == (1000 * chat.input + 500 * chat.output) / Decimal(1_000_000)
    image = prices.models[MODEL_DEFAULTS["image"]]
    generated = Usage(
        model=MODEL_DEFAULTS["image"], input_tokens=50, image_output_tokens=4000, images=1
    )
    assert prices.cost(generated) == (50 * image.input + 4000 * image.image_output) / Decimal(
        1_000_000
    )
    tools = Usage(
        model=MODEL_DEFAULTS["chat"], file_search_calls=4, web_search_calls=2, container_sessions=1
    )
    assert prices.cost(tools) == (
        4 * prices.tools.file_search_call
        + 2 * prices.tools.web_search_call
        + prices.tools.container_session
    )


# ----------------------------------------------------------------------------- periods


def test_budget_periods_and_resets_are_utc_days_and_months() -> None:
    moment = dt.datetime(2026, 12, 31, 15, 30, tzinfo=dt.UTC).timestamp()
    assert day_start(moment) == dt.datetime(2026, 12, 31, tzinfo=dt.UTC).timestamp()
    assert next_day(moment) == dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()
    assert month_start(moment) == dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp()
    assert next_month(moment) == dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()


def test_rate_limiter_window() -> None:
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    key = ("p", "w", "u")
    assert limiter.hit(key) == 0 and limiter.hit(key) == 0
    assert limiter.hit(key) == pytest.approx(60)
    now[0] = 30
    assert limiter.hit(key) == pytest.approx(30)
    now[0] = 60
    assert limiter.hit(key) == 0
    assert limiter.hit(("p", "w", "other")) == 0


async def test_spend_outside_the_period_does_not_count(tmp_path: Path, fake: FakeOpenAI) -> None:
    settings = make_settings(fake.base_url, tmp_path, SWITCHBOARD_BUDGET_USER_DAILY_USD="1")
    db = await open_database(settings.database_path)
    try:
        run_id = await runs.create_run(db, KEY, user_id=USER.id, event_id="e1", kind="chat")
        async with db.transaction() as tx:
            await runs.record_usage(tx, run_id, Usage(model="m"), Decimal("1.5"))
        today = dt.datetime.now(dt.UTC).timestamp()
        with pytest.raises(Exception, match=r"your daily limit of \$1.00 is used up"):
            await Quota(db, settings, clock=lambda: today).check(KEY, USER.id, None)
        tomorrow = next_day(today) + 60
        await Quota(db, settings, clock=lambda: tomorrow).check(KEY, USER.id, None)
    finally:
        await db.close()


# ----------------------------------------------------------------------------- /usage


async def test_usage_me_reports_runs_tokens_cost_and_models(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    bot = await start(fake, tmp_path)
    try:
        await bot.say("one")
        await bot.say("two")
        await bot.say("elsewhere", actor=BOB)
        report = await bot.command("usage", "me 7d")
        reply = bot.outbox.replies[-1]
        assert reply.ephemeral and reply.actor_id == USER.id
        assert "Runs: 2" in report and "Cost: $" in report and MODEL_DEFAULTS["chat"] in report
        assert "the last 7 days" in report
    finally:
        await bot.close()


async def test_usage_channel_and_workspace_are_for_admins(fake: FakeOpenAI, tmp_path: Path) -> None:
    bot = await start(fake, tmp_path)
    try:
        await bot.say("one")
        await bot.say("two", actor=BOB)
        refusal = await bot.command("usage", "channel")
        assert "for admins" in refusal
        report = await bot.command("usage", "workspace all", actor=ADMIN)
        assert (
            "Runs: 2" in report
            and "Top users:" in report
            and USER.id in report
            and BOB.id in report
        )
        assert "nonsense" in await bot.command("usage", "nonsense")
    finally:
        await bot.close()


# ----------------------------------------------------------------------------- budgets


async def test_user_daily_budget_refuses_naming_the_limit_and_reset(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    bot = await start(fake, tmp_path, SWITCHBOARD_BUDGET_USER_DAILY_USD=TINY)
    try:
        assert await bot.say("first") == "echo: first"
        refusal = await bot.say("second")
        assert "your daily limit" in refusal and "resets" in refusal and "UTC" in refusal
        assert await bot.say("bob is fine", actor=BOB) == "echo: bob is fine"
        assert len(fake.turns) == 2
    finally:
        await bot.close()


async def test_channel_budget_set_by_an_admin(fake: FakeOpenAI, tmp_path: Path) -> None:
    bot = await start(fake, tmp_path)
    try:
        assert "admins" in await bot.command("usage", f"budget {TINY}")
        shown = await bot.command("usage", f"budget {TINY}", actor=ADMIN)
        assert "this channel's monthly limit" in shown
        await bot.say("first")
        assert "this channel's monthly limit" in await bot.say("second", actor=BOB)
        other = ConversationKey(KEY.platform, KEY.workspace, "C-other")
        assert await bot.say("other channel", key=other) == "echo: other channel"
        assert "No spending limits" in await bot.command("usage", "budget off", actor=ADMIN)
        assert await bot.say("third") == "echo: third"
    finally:
        await bot.close()


async def test_workspace_budget(fake: FakeOpenAI, tmp_path: Path) -> None:
    bot = await start(fake, tmp_path, SWITCHBOARD_BUDGET_WORKSPACE_MONTHLY_USD=TINY)
    try:
        await bot.say("first")
        other = ConversationKey(KEY.platform, KEY.workspace, "C-other")
        assert "workspace's monthly limit" in await bot.say("second", key=other, actor=BOB)
    finally:
        await bot.close()


async def test_concurrent_requests_overspend_at_most_by_the_runs_in_flight(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    bot = await start(fake, tmp_path, SWITCHBOARD_BUDGET_WORKSPACE_MONTHLY_USD=TINY)
    try:
        fake.latency = 0.2
        keys = [ConversationKey(KEY.platform, KEY.workspace, f"C{i}") for i in range(5)]
        for key in keys:  # all five checked before any has finished: all in flight
            await bot.app.dispatcher.submit(bot.message("race", key=key))
        await bot.app.dispatcher.wait_idle()
        assert len(fake.turns) == 5
        for key in keys:  # the budget is spent now: every further request is refused
            await bot.app.dispatcher.submit(bot.message("late", key=key))
        await bot.app.dispatcher.wait_idle()
        assert len(fake.turns) == 5
        assert sum("monthly limit" in text for text in bot.outbox.shown) == 5
    finally:
        await bot.close()


# ----------------------------------------------------------------------------- rate limits


async def test_rate_limit_per_user_is_explained(fake: FakeOpenAI, tmp_path: Path) -> None:
    bot = await start(fake, tmp_path, SWITCHBOARD_RATE_LIMIT_PER_MINUTE="2")
    try:
        await bot.say("1")
        await bot.say("2")
        refusal = await bot.say("3")
        assert "faster than 2 a minute" in refusal and "try again in" in refusal
        assert await bot.say("bob", actor=BOB) == "echo: bob"
    finally:
        await bot.close()


# ----------------------------------------------------------------------------- export


async def test_usage_export_writes_csv(fake: FakeOpenAI, tmp_path: Path) -> None:
    env = bot_env(fake, tmp_path)
    code, _, err = await run_bot("console", env=env, stdin=b"hello\nworld\n", cwd=tmp_path)
    assert code == 0, err
    code, out, err = await run_bot(
        "usage", "export", "--since", "2020-01-01", env=env, cwd=tmp_path
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert all(float(r["cost_usd"]) > 0 and r["model"] == MODEL_DEFAULTS["chat"] for r in rows)
    target = tmp_path / "usage.csv"
    code, _, err = await run_bot(
        "usage", "export", "--since", "2999-01-01", "-o", str(target), env=env, cwd=tmp_path
    )
    assert code == 0 and "wrote 0 runs" in err
    assert target.read_text().startswith("run_id,created_at,")
    code, _, err = await run_bot("usage", "export", "--since", "yesterday", env=env, cwd=tmp_path)
    assert code == 2 and "not a date" in err


async def test_concurrent_same_user_requests_all_counted(fake: FakeOpenAI, tmp_path: Path) -> None:
    """Spend is read from finished runs, so what a user spent is exact once answers are done."""
    bot = await start(fake, tmp_path)
    try:
        for i in range(3):
            key = ConversationKey("test", "W1", f"K{i}")
            await bot.app.dispatcher.submit(bot.message(f"m{i}", key=key))
        await bot.app.dispatcher.wait_idle()
        report = await bot.command("usage", "me all")
        assert "Runs: 3" in report
    finally:
        await bot.close()


# ----------------------------------------------------------------------------- moderation


async def test_moderation_refuses_flagged_messages_and_records_them(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    bot = await start(fake, tmp_path)
    try:
        assert "Only admins" in await bot.command("usage", "moderation on")
        assert "is on in this channel" in await bot.command("usage", "moderation on", actor=ADMIN)
        refusal = await bot.say("please FLAGME now")
        assert "flagged by moderation (violence)" in refusal
        assert fake.turns == []
        assert await bot.say("a fine question") == "echo: a fine question"
        rows = await bot.app.db.fetch_all(
            "SELECT user_id, categories, excerpt FROM moderation_flags"
        )
        assert [tuple(r) for r in rows] == [(USER.id, '["violence"]', "please FLAGME now")]
        statuses = [
            r["status"] for r in await bot.app.db.fetch_all("SELECT status FROM runs ORDER BY id")
        ]
        assert statuses == ["failed", "completed"]
        assert "Flagged by moderation: 1" in await bot.command("usage", "channel", actor=ADMIN)
        other = ConversationKey(KEY.platform, KEY.workspace, "C-unmoderated")
        assert await bot.say("FLAGME elsewhere", key=other) == "echo: FLAGME elsewhere"
        assert "is off" in await bot.command("usage", "moderation off", actor=ADMIN)
        assert await bot.say("FLAGME again") == "echo: FLAGME again"
    finally:
        await bot.close()


async def test_moderation_outage_lets_messages_through(fake: FakeOpenAI, tmp_path: Path) -> None:
    from storage import configs

    bot = await start(fake, tmp_path, SWITCHBOARD_OPENAI_MAX_RETRIES=0)
    try:
        await configs.save_overrides(bot.app.db, KEY, {"moderation": True}, updated_by="UADMIN")
        fake.fail_next("server_error")
        assert await bot.say("hello") == "echo: hello"
    finally:
        await bot.close()
