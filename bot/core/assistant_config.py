"""A channel's assistant: deployment defaults ← workspace overrides ← channel overrides."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from bot.core.config import Settings
from bot.core.types import ConversationKey
from storage.configs import load_overrides
from storage.db import Database

log = logging.getLogger(__name__)

# Function tools offered in every channel unless an admin turns them off (`builtins off`): they
# run in worker processes with a hard timeout and reveal nothing (`channel_usage`, which shows
# spending, stays opt-in).
SAFE_BUILTINS = ("current_time", "calculate")


@dataclass(frozen=True, slots=True)
class AssistantConfig:
    """What a channel's assistant is. Read on every turn, so an admin's change applies next turn."""

    model: str
    instructions: str
    name: str = "Switchboard"
    temperature: float | None = None
    max_output_tokens: int | None = None
    reply_mode: str = "mention"
    vision_detail: str = "auto"  # low | high | auto, sent with every input image
    voice: str = ""  # "" = the deployment's SWITCHBOARD_SPEECH_VOICE
    voice_replies: bool = False  # every answer also comes back as an audio file
    # Set by admins with `/usage budget`: this channel's monthly dollar limit (None = the default).
    budget_monthly_usd: float | None = None
    moderation: bool = False  # screen incoming messages with the moderation model first
    # Tools the model may use: "code_interpreter", "file_search", "web_search",
    # "image_generation", and "functions:<name>,<name>" (names from the tool registry).
    tools: tuple[str, ...] = ()
    # The safe built-in functions (SAFE_BUILTINS), offered besides `tools` unless turned off.
    builtins: bool = True
    # Answer format: "text", "json" (any JSON object), or a JSON schema given as text.
    format: str = "text"
    seed: int | None = None  # chat backend only (the Responses API has no seed)
    # This channel's knowledge (file search): set by `/assistant knowledge add`, not by `set`.
    vector_store_id: str = ""
    # Who may use the bot (`bot.core.access`): workspace-wide, set by `/assistant access`.
    access_allow: tuple[str, ...] = ()
    access_block: tuple[str, ...] = ()

    @property
    def offered_tools(self) -> tuple[str, ...]:
        """`tools`, plus the safe built-ins when they are on."""
        if not self.builtins:
            return self.tools
        return (*self.tools, "functions:" + ",".join(SAFE_BUILTINS))

    @classmethod
    def defaults(cls, settings: Settings) -> AssistantConfig:
        return cls(
            model=settings.chat_model,
            instructions=settings.instructions,
            moderation=settings.moderation,
        )

    def merged(self, overrides: dict[str, Any]) -> AssistantConfig:
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - known
        if unknown:
            log.warning("ignoring unknown assistant settings %s", sorted(unknown))
        values = {k: v for k, v in overrides.items() if k in known}
        for name in ("tools", "access_allow", "access_block"):
            if isinstance(values.get(name), list):  # stored as a JSON array
                values[name] = tuple(values[name])
        return dataclasses.replace(self, **values)


async def resolve_assistant(
    db: Database, settings: Settings, key: ConversationKey
) -> AssistantConfig:
    workspace, channel = await load_overrides(db, key)
    return AssistantConfig.defaults(settings).merged(workspace).merged(channel)
