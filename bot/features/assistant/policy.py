"""Who may change which setting: the one rule book for `/assistant set|reset|access` and
`/usage budget|moderation` (both write through `ConfigEditor`).

Workspace admins may change anything. Channel admins (`bot.core.admins`) change only their own
channel, within the caps the workspace set:

- never the workspace defaults (`set workspace`, `reset workspace`) nor the access lists;
- a channel budget at most the cap the channel inherits (the workspace default for channels,
  else `SWITCHBOARD_BUDGET_CHANNEL_MONTHLY_USD`); no cap means any amount (they only tighten);
- moderation on, never off where the workspace (or the deployment) has it on;
- built-in function tools, never plugins (plugins are third-party code: workspace admins enable
  them, by name).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.core.assistant_config import AssistantConfig
from bot.core.errors import UserError
from bot.core.types import AdminScope
from bot.features.assistant import args

WORKSPACE_ADMINS = (
    "workspace admins (Slack: admins and owners of this workspace; Discord: Manage Server or "
    "Administrator)"
)
ADMINS_ONLY = (
    "Only admins can change the assistant: "
    + WORKSPACE_ADMINS
    + ", and channel admins (Discord: Manage Channels) for their channel. `/assistant` shows it."
)
WORKSPACE_ONLY = f"Only {WORKSPACE_ADMINS} can change %s."


@dataclass(frozen=True, slots=True)
class Caps:
    """What the channel inherits without its own settings: the limits a channel admin works
    within. `budget_cap` None = no cap."""

    inherited: AssistantConfig
    deployment_budget: float | None
    builtin_functions: frozenset[str]

    @property
    def budget_cap(self) -> float | None:
        value = self.inherited.budget_monthly_usd
        return value if value is not None else self.deployment_budget


def require_admin(scope: AdminScope) -> None:
    if not scope:
        raise UserError(ADMINS_ONLY)


def require_workspace(scope: AdminScope, what: str) -> None:
    require_admin(scope)
    if scope != "workspace":
        raise UserError(WORKSPACE_ONLY % what)


def check_change(
    scope: AdminScope,
    attr: str,
    value: Any,
    caps: Caps,
    *,
    workspace_wide: bool = False,
) -> None:
    """Raise `UserError` unless an admin of `scope` may set `attr` to `value` here."""
    require_admin(scope)
    if workspace_wide:
        require_workspace(scope, "the workspace defaults")
    if attr == "tools" and not isinstance(value, args.Inherit):
        plugins = sorted(set(functions_of(value)) - caps.builtin_functions)
        if plugins:
            require_workspace(scope, f"which plugins run ({', '.join(plugins)})")
    if scope == "workspace" or isinstance(value, args.Inherit):
        return
    if attr == "budget_monthly_usd":
        cap = caps.budget_cap
        if cap is not None and float(value) > cap:
            raise UserError(
                f"Channel admins can set this channel's budget up to the workspace's cap of "
                f"${cap:,.2f} a month; {WORKSPACE_ADMINS} can set more."
            )
    elif attr == "moderation" and not value and caps.inherited.moderation:
        raise UserError(
            "Moderation is on for this whole workspace; "
            + WORKSPACE_ONLY % "that (`/assistant set workspace moderation off`)"
        )


def functions_of(tools: Iterable[str]) -> list[str]:
    names: list[str] = []
    for entry in tools:
        if entry.startswith(args.FUNCTIONS_PREFIX):
            names += [n for n in entry[len(args.FUNCTIONS_PREFIX) :].split(",") if n]
    return names
