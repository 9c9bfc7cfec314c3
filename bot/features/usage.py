"""`/usage [me|channel|workspace] [today|7d|30d|all]` and `/usage budget [AMOUNT|off]`."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.core.admins import Admins
from bot.core.assistant_config import AssistantConfig, resolve_assistant
from bot.core.config import Settings
from bot.core.errors import UserError
from bot.core.types import CommandCall, Reply
from bot.features.assistant import args, policy
from bot.features.assistant.editor import ConfigEditor
from bot.spend.quota import Quota, day_start, describe_reset
from bot.text.sanitise import shorten
from storage import configs
from storage.db import Database
from storage.usage import UsageScope, UsageTotals, flagged_count, spent, top, totals

SCOPES = ("me", "channel", "workspace")
PERIODS = {"today": "today", "7d": "the last 7 days", "30d": "the last 30 days", "all": "all time"}
USAGE_HELP = (
    "Usage: /usage [me|channel|workspace] [today|7d|30d|all], or /usage budget [AMOUNT|off]"
)


def money(amount: float) -> str:
    return f"${amount:,.4f}" if abs(amount) < 1 else f"${amount:,.2f}"


def parse_usage_args(call: CommandCall) -> tuple[str, str]:
    """(scope, period) from the text (`/usage channel 7d`) or named options (Discord)."""
    words = call.text.lower().split()
    scope = call.options.get("scope", "").lower() or next((w for w in words if w in SCOPES), "me")
    period = call.options.get("period", "").lower() or next(
        (w for w in words if w in PERIODS), "30d"
    )
    unknown = [w for w in words if w not in SCOPES and w not in PERIODS]
    if unknown or scope not in SCOPES or period not in PERIODS:
        said = shorten(" ".join(unknown) or f"{scope} {period}", 40).replace("`", "'")
        raise UserError(f"I don't understand `{said}`. {USAGE_HELP}")
    return scope, period


def parse_budget(value: str) -> float | None:
    """A channel budget in dollars (`5`, `$12.50`), or None for `off`/`default`/`none`."""
    if value.lower() in ("off", "default", "none"):
        return None
    try:
        amount = float(value.strip().lstrip("$"))
    except ValueError:
        said = shorten(value, 20).replace("`", "'")
        raise UserError(f"`{said}` is not an amount in dollars. {USAGE_HELP}") from None
    if not 0 < amount < 1_000_000:  # also refuses nan and inf
        raise UserError("A budget must be a positive number of dollars (or `off`).")
    return amount


def since(period: str, now: float) -> float:
    return {"today": day_start(now), "7d": now - 7 * 86_400, "30d": now - 30 * 86_400}.get(
        period, 0.0
    )


def format_totals(t: UsageTotals) -> str:
    unknown = f" (+{t.unknown_cost_runs} runs of unknown cost)" if t.unknown_cost_runs else ""
    parts = [
        f"Runs: {t.runs:,}",
        f"Tokens: {t.input_tokens:,} in ({t.cached_tokens:,} cached), {t.output_tokens:,} out",
    ]
    if t.images:
        parts.append(f"Images: {t.images:,}")
    if t.audio_seconds:
        parts.append(f"Audio: {t.audio_seconds / 60:,.1f} min")
    if t.characters:
        parts.append(f"Speech: {t.characters:,} characters")
    parts.append(f"Cost: {money(t.cost_usd)}{unknown}")
    return "\n".join(parts)


class UsageCommands:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        quota: Quota,
        admins: Admins,
        clock: Callable[[], float] = time.time,
        editor: ConfigEditor | None = None,
    ) -> None:
        """`editor`: the one settings writer shared with `/assistant` (its lock and audit)."""
        self._db = db
        self._settings = settings
        self._quota = quota
        self._admins = admins
        self._clock = clock
        self._editor = editor or ConfigEditor(db)

    async def usage(self, call: CommandCall) -> Reply:
        first = (call.text.split() or [call.options.get("scope", "")])[0].lower()
        if first == "budget":
            return await self._budget(call)
        if first == "moderation":
            return await self._moderation(call)
        scope_name, period = parse_usage_args(call)
        admin = self._admins.scope(call.actor, call.key)
        if scope_name == "channel" and not admin:
            raise UserError("/usage channel is for admins; try /usage me.")
        if scope_name == "workspace" and admin != "workspace":
            raise UserError(
                f"/usage workspace is for {policy.WORKSPACE_ADMINS}; try /usage me"
                + (" or /usage channel." if admin else ".")
            )
        key = call.key
        scope = {
            "me": UsageScope(key.platform, key.workspace, user_id=call.actor.id),
            "channel": UsageScope(key.platform, key.workspace, channel=key.channel),
            "workspace": UsageScope(key.platform, key.workspace),
        }[scope_name]
        start = since(period, self._clock())
        lines = [
            f"Usage for {'you' if scope_name == 'me' else 'this ' + scope_name}, {PERIODS[period]}:",
            format_totals(await totals(self._db, scope, start)),
        ]
        models = await top(self._db, scope, start, "model")
        if models:
            lines.append(
                "Top models: "
                + ", ".join(f"{m.name} {money(m.cost_usd)} ({m.runs} runs)" for m in models)
            )
        if scope_name != "me":
            flagged = await flagged_count(self._db, scope, start)
            if flagged:
                lines.append(f"Flagged by moderation: {flagged}")
            users = await top(self._db, scope, start, "user_id")
            if users:
                lines.append(
                    "Top users: "
                    + ", ".join(f"{u.name} {money(u.cost_usd)} ({u.runs} runs)" for u in users)
                )
        # Private to whoever asked, whatever the scope: spend is not news for the whole channel.
        return Reply(key=key, text="\n".join(lines), ephemeral=True, actor_id=call.actor.id)

    async def _budget(self, call: CommandCall) -> Reply:
        words = call.text.split()[1:] or (
            [call.options["amount"]] if call.options.get("amount") else []
        )
        if words:
            if not self._admins.any_admin(call.actor, call.key):
                raise UserError("Only admins can change this channel's budget.")
            await self._set_channel_field(call, "budget_monthly_usd", parse_budget(words[0]))
        return Reply(
            key=call.key,
            text=await self._describe_budgets(call),
            actor_id=call.actor.id,
            ephemeral=True,
        )

    async def _moderation(self, call: CommandCall) -> Reply:
        words = call.text.lower().split()[1:]
        if words:
            if not self._admins.any_admin(call.actor, call.key):
                raise UserError("Only admins can turn moderation on or off for this channel.")
            if words[0] not in ("on", "off", "default"):
                said = shorten(words[0], 20).replace("`", "'")
                raise UserError(f"`{said}`: say on, off or default. {USAGE_HELP}")
            value = None if words[0] == "default" else words[0] == "on"
            await self._set_channel_field(call, "moderation", value)
        config = await resolve_assistant(self._db, self._settings, call.key)
        state = "on" if config.moderation else "off"
        return Reply(
            key=call.key,
            text=f"Moderation of incoming messages is {state} in this channel.",
            actor_id=call.actor.id,
            ephemeral=True,
        )

    async def _set_channel_field(self, call: CommandCall, attr: str, value: object) -> None:
        """One channel setting, checked against the caps the workspace set and written like
        `/assistant set` (the same lock, an audit row); None returns it to the default."""
        update = args.INHERIT if value is None else value
        workspace, _ = await configs.load_overrides(self._db, call.key)
        caps = policy.Caps(
            AssistantConfig.defaults(self._settings).merged(workspace),
            self._settings.budget_channel_monthly_usd,
            frozenset(),
        )
        policy.check_change(self._admins.scope(call.actor, call.key), attr, update, caps)
        await self._editor.edit(call.key, call.actor.id, {attr: update})

    async def _describe_budgets(self, call: CommandCall) -> str:
        config = await resolve_assistant(self._db, self._settings, call.key)
        now = self._clock()
        budgets = self._quota.budgets(call.key, call.actor.id, config.budget_monthly_usd)
        if not budgets:
            return "No spending limits apply here."
        lines = ["Spending limits here:"]
        for budget in budgets:
            used = await spent(self._db, budget.scope, budget.since)
            lines.append(
                f"- {budget.label}: {money(used)} of {money(budget.limit)} spent; resets "
                f"{describe_reset(budget.resets, now)}"
            )
        return "\n".join(lines)
