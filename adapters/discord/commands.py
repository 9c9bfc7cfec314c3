"""The command table (`bot.core.commands.COMMANDS`) as Discord app commands.

Every command's callback hands the interaction to one `handler(interaction, name)`: the adapter
defers at once and passes a `CommandCall` to the dispatcher. Definitions are synced with
Discord at start-up only when they changed since the last sync (a hash stored in a small JSON
file next to the database), because syncing is rate-limited.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, Optional

import discord
from discord import app_commands

from bot.core.commands import COMMANDS, CommandSpec, Option

log = logging.getLogger(__name__)

Handler = Callable[[discord.Interaction, str], Awaitable[None]]

# Commands whose answer is for the caller only: deferred ephemerally.
EPHEMERAL_COMMANDS = frozenset(spec.name for spec in COMMANDS if spec.private)
# The free-text options of each command, joined into `CommandCall.text` (what a Slack user
# would type after the command name).
TEXT_OPTIONS: dict[str, tuple[str, ...]] = {
    spec.name: spec.text_options for spec in COMMANDS if spec.text_options
}

HASH_FILE = "discord_commands.hash"


def build_tree(client: discord.Client, handler: Handler) -> app_commands.CommandTree:
    """A `CommandTree` on `client` with every command of the table."""
    tree = app_commands.CommandTree(client)
    for spec in COMMANDS:
        tree.add_command(app_command(spec, handler))
    return tree


def app_command(spec: CommandSpec, handler: Handler) -> app_commands.Command[Any, Any, Any]:
    """The Discord definition of one row: its options become typed parameters (discord.py reads
    them from the callback's signature), so Discord validates choices, ranges and files."""

    async def callback(interaction: discord.Interaction, **_options: Any) -> None:
        await handler(interaction, spec.name)

    parameters = [
        inspect.Parameter(
            "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction
        )
    ]
    for option in spec.options:
        annotation = _annotation(option)
        parameters.append(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=annotation if option.required else Optional[annotation],  # noqa: UP045
                default=inspect.Parameter.empty if option.required else None,
            )
        )
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    if spec.options:
        app_commands.describe(**{o.name: o.description for o in spec.options})(callback)
    return app_commands.Command(name=spec.name, description=spec.description, callback=callback)


def _annotation(option: Option) -> Any:
    if option.kind == "file":
        return discord.Attachment
    if option.kind == "count":
        return app_commands.Range[int, 1, 4]
    if option.kind == "choice":
        return Literal.__getitem__(option.choices)  # type: ignore[attr-defined]
    return app_commands.Range[str, option.min_length, option.max_length]


def definitions_hash(tree: app_commands.CommandTree) -> str:
    """A stable hash of what `tree.sync()` would send."""
    payload = [command.to_dict(tree) for command in tree.get_commands()]
    payload.sort(key=lambda c: str(c.get("name")))
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _read_hashes(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


async def sync_if_changed(tree: app_commands.CommandTree, application_id: int, path: Path) -> bool:
    """Sync the global commands unless the stored hash for this application matches; True when
    a sync happened. A failure to sync is logged, not fatal (old definitions stay live)."""
    digest = definitions_hash(tree)
    hashes = _read_hashes(path)
    if hashes.get(str(application_id)) == digest:
        log.debug("discord: slash commands unchanged; not syncing")
        return False
    try:
        await tree.sync()
    except discord.HTTPException as exc:
        log.warning(
            "discord: syncing slash commands failed (HTTP %s, code %s); they may be out of date",
            exc.status,
            exc.code,
        )
        return False
    hashes[str(application_id)] = digest
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(hashes, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        log.warning("discord: could not store the slash-command hash: %s", type(exc).__name__)
    log.info("discord: synced %d slash commands", len(tree.get_commands()))
    return True
