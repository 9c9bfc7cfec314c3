"""The contract's slash commands (`bot.core.commands.CONTRACT_COMMANDS`) as Discord app commands.

Every command's callback hands the interaction to one `handler(interaction, name)`: the adapter
defers at once and passes a `CommandCall` to the dispatcher. Definitions are synced with
Discord at start-up only when they changed since the last sync (a hash stored in a small JSON
file next to the database), because syncing is rate-limited.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import discord
from discord import app_commands

from bot.core.commands import CONTRACT_COMMANDS

log = logging.getLogger(__name__)

Handler = Callable[[discord.Interaction, str], Awaitable[None]]

# The free-text options of each command, joined into `CommandCall.text` (what a Slack user
# would type after the command name).
TEXT_OPTIONS: dict[str, tuple[str, ...]] = {
    "imagine": ("prompt",),
    "edit": ("prompt",),
    "speak": ("text",),
    "assistant": ("args",),
    "usage": ("scope", "period", "value"),
}
# Commands whose answer is for the caller only: deferred ephemerally.
EPHEMERAL_COMMANDS = frozenset({"usage", "assistant"})

HASH_FILE = "discord_commands.hash"

_DESCRIPTIONS = {c.name: c.description for c in CONTRACT_COMMANDS}

Count = app_commands.Range[int, 1, 4]


def build_tree(client: discord.Client, handler: Handler) -> app_commands.CommandTree:
    """A `CommandTree` on `client` with every contract command."""
    tree = app_commands.CommandTree(client)
    for command in _commands(handler):
        tree.add_command(command)
    missing = {c.name for c in CONTRACT_COMMANDS} - {c.name for c in tree.get_commands()}
    if missing:  # a contract command without a Discord definition: still offer it, no options
        for name in sorted(missing):
            tree.add_command(_plain(name, handler))
    return tree


def _plain(name: str, handler: Handler) -> app_commands.Command[Any, Any, Any]:
    async def callback(interaction: discord.Interaction) -> None:
        await handler(interaction, name)

    return app_commands.Command(name=name, description=_DESCRIPTIONS[name], callback=callback)


def _commands(handler: Handler) -> list[app_commands.Command[Any, Any, Any]]:
    def make(name: str, callback: Callable[..., Awaitable[None]]) -> Any:
        return app_commands.Command(name=name, description=_DESCRIPTIONS[name], callback=callback)

    @app_commands.describe(
        prompt="What to draw",
        size="Image size",
        quality="Rendering quality",
        background="Background",
        count="How many images (1-4)",
    )
    async def imagine(
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 4000],
        size: Literal["auto", "1024x1024", "1536x1024", "1024x1536"] | None = None,
        quality: Literal["auto", "low", "medium", "high"] | None = None,
        background: Literal["auto", "transparent", "opaque"] | None = None,
        count: Count | None = None,
    ) -> None:
        await handler(interaction, "imagine")

    @app_commands.describe(
        prompt="What to change", image="The image to edit", mask="Transparent = area to change"
    )
    async def edit(
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 4000],
        image: discord.Attachment,
        mask: discord.Attachment | None = None,
    ) -> None:
        await handler(interaction, "edit")

    @app_commands.describe(image="The image to vary", count="How many variations (1-4)")
    async def variation(
        interaction: discord.Interaction, image: discord.Attachment, count: Count | None = None
    ) -> None:
        await handler(interaction, "variation")

    @app_commands.describe(text="What to say", voice="Voice name (optional)")
    async def speak(
        interaction: discord.Interaction,
        text: app_commands.Range[str, 1, 4000],
        voice: app_commands.Range[str, 1, 40] | None = None,
    ) -> None:
        await handler(interaction, "speak")

    @app_commands.describe(audio="A voice note or audio file", language="e.g. en, fr (optional)")
    async def transcribe(
        interaction: discord.Interaction,
        audio: discord.Attachment,
        language: app_commands.Range[str, 2, 12] | None = None,
    ) -> None:
        await handler(interaction, "transcribe")

    @app_commands.describe(audio="A voice note or audio file")
    async def translate(interaction: discord.Interaction, audio: discord.Attachment) -> None:
        await handler(interaction, "translate")

    async def reset(interaction: discord.Interaction) -> None:
        await handler(interaction, "reset")

    async def cancel(interaction: discord.Interaction) -> None:
        await handler(interaction, "cancel")

    @app_commands.describe(
        args="Empty to show; set FIELD VALUE | reset | history | knowledge add/list/remove",
        file="knowledge add: a file for file search; set format: a .json schema",
        file2="knowledge add: another file",
        file3="knowledge add: another file",
    )
    async def assistant(
        interaction: discord.Interaction,
        args: app_commands.Range[str, 1, 4000] | None = None,
        file: discord.Attachment | None = None,
        file2: discord.Attachment | None = None,
        file3: discord.Attachment | None = None,
    ) -> None:
        await handler(interaction, "assistant")

    @app_commands.describe(
        scope="Whose usage (default: me), or budget / moderation settings",
        period="Which period (default: 30d)",
        value="budget: dollars or off; moderation: on, off or default (admins)",
    )
    async def usage(
        interaction: discord.Interaction,
        scope: Literal["me", "channel", "workspace", "budget", "moderation"] | None = None,
        period: Literal["today", "7d", "30d", "all"] | None = None,
        value: str | None = None,
    ) -> None:
        await handler(interaction, "usage")

    callbacks = {
        "imagine": imagine,
        "edit": edit,
        "variation": variation,
        "speak": speak,
        "transcribe": transcribe,
        "translate": translate,
        "reset": reset,
        "cancel": cancel,
        "assistant": assistant,
        "usage": usage,
    }
    return [make(name, cb) for name, cb in callbacks.items() if name in _DESCRIPTIONS]


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
