"""`/assistant`: show this channel's assistant (everyone); set fields, reset, read the change
history and manage knowledge (admins). Every change is written with its audit rows in one
transaction, and applies from the next turn (the config is resolved on every turn)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

from bot.backends.errors import explain_as
from bot.backends.files import KnowledgeFiles
from bot.backends.models import ModelCatalog
from bot.core.admins import Admins
from bot.core.assistant_config import AssistantConfig, resolve_assistant
from bot.core.config import Settings
from bot.core.errors import UserError
from bot.core.types import Attachment, CommandCall, ConversationKey, Reply
from bot.features.assistant import access, args, policy
from bot.features.assistant.editor import ConfigEditor
from bot.features.assistant.knowledge import Knowledge
from bot.features.moderation import Moderation
from storage import configs
from storage.db import Database

log = logging.getLogger(__name__)

ADMINS_ONLY = policy.ADMINS_ONLY
UNPRICED_WORD = "unpriced"
SCREENED = frozenset({"instructions", "name"})  # settings whose text the model reads
# Kept by `/assistant reset`: knowledge is removed file by file with `knowledge remove`.
# Access lists too: they are changed with `/assistant access`, never as a side effect.
KEPT_ON_RESET = frozenset({"vector_store_id", "access_allow", "access_block"})
MAX_SCHEMA_FILE_BYTES = args.MAX_SCHEMA_CHARS * 4
HISTORY_VALUE_CHARS = 80  # per old/new value in `/assistant history`


class AssistantAdmin:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        models: ModelCatalog,
        files: KnowledgeFiles,
        admins: Admins,
        function_names: frozenset[str] = frozenset(),
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
        *,
        builtin_functions: frozenset[str] | None = None,
        priced: Callable[[str], bool] = lambda model: True,
        editor: ConfigEditor | None = None,
        moderation: Moderation | None = None,
    ) -> None:
        """`moderation`: screens the text admins give the model (instructions, name) where
        moderation is on. `builtin_functions`: the function tools channel admins may enable (the rest are
        plugins, for workspace admins); `priced`: whether the price table knows a model."""
        self._db = db
        self._settings = settings
        self._models = models
        self._admins = admins
        self._function_names = function_names
        self._builtins = function_names if builtin_functions is None else builtin_functions
        self._priced = priced
        self._moderation = moderation
        self._today = today
        self.editor = editor or ConfigEditor(db)
        self.knowledge = Knowledge(db, settings, files, self.editor)

    async def caps(self, key: ConversationKey) -> policy.Caps:
        """The limits a channel admin works within at `key`."""
        return policy.Caps(
            await self._effective(key, workspace_only=True),
            self._settings.budget_channel_monthly_usd,
            self._builtins,
        )

    async def assistant(self, call: CommandCall) -> Reply:
        command = args.parse_command(call.text)
        scope = self._admins.scope(call.actor, call.key)
        if isinstance(command, access.AccessChange | access.AccessClear):
            policy.require_workspace(scope, "who may use the assistant")
        elif not isinstance(command, args.Show | access.AccessShow):
            policy.require_admin(scope)
        match command:
            case args.Show():
                text = await self._show(call.key)
            case args.SetField():
                text = await self._set(call, command)
            case args.Reset():
                if command.workspace:
                    policy.require_workspace(scope, "the workspace defaults")
                text = await self._reset(call, command.workspace)
            case args.History():
                text = await self._history(call.key, command.limit)
            case args.KnowledgeAdd():
                text = await self.knowledge.add(call)
            case args.KnowledgeList():
                text = await self.knowledge.list(call)
            case args.KnowledgeRemove():
                text = await self.knowledge.remove(call, command.name)
            case access.AccessShow():
                text = await self._access_text(call.key)
            case access.AccessChange() | access.AccessClear():
                text = await self._change_access(call, command)
        return Reply(key=call.key, text=text, ephemeral=True, actor_id=call.actor.id)

    # -- show -----------------------------------------------------------------------------------

    async def _show(self, key: ConversationKey) -> str:
        workspace, channel = await configs.load_overrides(self._db, key)
        config = await resolve_assistant(self._db, self._settings, key)
        lines = ["This channel's assistant (each field: its value, and where it comes from):"]
        for spec in args.FIELDS.values():
            value = getattr(config, spec.attr)
            if spec.attr in channel:
                source = "set for this channel"
            elif spec.attr in workspace:
                source = "workspace default"
            else:
                source = "deployment default"
            shown = args.display(spec, value, voice_default=self._settings.speech_voice)
            lines.append(f"• {spec.name}: {shown} ({source})")
        lines.append(
            "• access: "
            + access.describe(config.access_allow, config.access_block, key.platform)
            + " (`/assistant access`)"
        )
        files = await self.knowledge.count(key)
        if files:
            lines.append(
                f"• knowledge: {files} file(s) for file search (`/assistant knowledge list`)"
            )
        lines.append(
            "Admins: `/assistant set FIELD VALUE` (this channel), "
            "`/assistant set FIELD default`, `/assistant reset`, `/assistant history`; "
            "workspace admins also `/assistant set workspace FIELD VALUE` (every channel's "
            "default) and `/assistant access`."
        )
        return "\n".join(lines)

    # -- set --------------------------------------------------------------------------------------

    async def _set(self, call: CommandCall, command: args.SetField) -> str:
        spec = command.field
        raw = command.value
        if spec.name == "format" and not raw.strip():
            raw = await _schema_file_text(call.attachments)
        unpriced_ok = False
        if spec.name == "model":
            head, _, last = raw.strip().rpartition(" ")
            if head and last.lower().lstrip("-") == UNPRICED_WORD:
                raw, unpriced_ok = head, True
        context = args.ValueContext(self._function_names, self._settings.backend)
        value = args.parse_value(spec, raw, context)
        policy.check_change(
            self._admins.scope(call.actor, call.key),
            spec.attr,
            value,
            await self.caps(call.key),
            workspace_wide=command.workspace,
        )
        screened = spec.name in SCREENED and isinstance(value, str)
        if screened and self._moderation is not None:
            await self._screen(call, command.workspace, value, f"That {spec.name} text")
        warning = ""
        if spec.name == "model" and not isinstance(value, args.Inherit):
            warning = await self._check_model(value)
            if not self._priced(value) and not unpriced_ok:
                raise UserError(
                    f"`{value}` is not in the price table, so what it costs would count $0 "
                    "against every budget. Add it to the price table (SWITCHBOARD_PRICES), or "
                    f"say so: `/assistant set model {value} {UNPRICED_WORD}`."
                )
        before = await self._effective(call.key, command.workspace)
        changes = await self.editor.edit(
            call.key, call.actor.id, {spec.attr: value}, workspace_wide=command.workspace
        )
        after = await self._effective(call.key, command.workspace)
        scope = "the workspace default" if command.workspace else "this channel"
        voice = self._settings.speech_voice
        old = args.display(spec, getattr(before, spec.attr), voice_default=voice)
        new = args.display(spec, getattr(after, spec.attr), voice_default=voice)
        if not changes:
            text = f"Nothing changed: {spec.name} is already {new} for {scope}."
        elif isinstance(value, args.Inherit):
            text = (
                f"{spec.name} is no longer set for {scope}; it is inherited again. "
                f"Here it was {old}, now {new}."
            )
        else:
            text = f"Set {spec.name} for {scope}: {old} → {new}. It applies from the next message."
        if command.workspace and changes:
            _, channel = await configs.load_overrides(self._db, call.key)
            if spec.attr in channel:
                text += " This channel has its own value, which still wins here."
        return f"{text}\n{warning}".strip()

    async def _screen(self, call: CommandCall, workspace: bool, text: str, what: str) -> None:
        """Moderation of text the model will read, where moderation is on."""
        if self._moderation is not None and (await self._effective(call.key, workspace)).moderation:
            await self._moderation.screen_text(
                call.key, call.actor.id, call.event_id, text, what=what
            )

    async def _effective(
        self, key: ConversationKey, workspace_only: bool = False
    ) -> AssistantConfig:
        """The config of this channel, or what every channel inherits (`workspace_only`)."""
        workspace, channel = await configs.load_overrides(self._db, key)
        config = AssistantConfig.defaults(self._settings).merged(workspace)
        return config if workspace_only else config.merged(channel)

    async def _check_model(self, model: str) -> str:
        try:
            served = await self._models.served()
        except Exception as exc:
            doing = f"check `{model}` against OpenAI's model list, so nothing changed"
            friendly = explain_as(exc, doing)
            if friendly is None:
                raise
            raise friendly from exc
        return args.check_model(model, served, self._today())

    # -- access -----------------------------------------------------------------------------------

    async def _access_text(self, key: ConversationKey) -> str:
        config = await self._effective(key, workspace_only=True)
        lists = access.describe(config.access_allow, config.access_block, key.platform)
        return f"Who may use the assistant in this workspace: {lists}.\n{access.ACCESS_HELP}"

    async def _change_access(
        self, call: CommandCall, command: access.AccessChange | access.AccessClear
    ) -> str:
        current = await self._effective(call.key, workspace_only=True)
        updates: dict[str, object] = {}
        if isinstance(command, access.AccessClear):
            updates = {access.ATTRS[name]: args.INHERIT for name in command.lists}
        else:
            attr = access.ATTRS[command.list_name]
            entries = access.updated(getattr(current, attr), command)
            updates = {attr: entries if entries else args.INHERIT}
        changes = await self.editor.edit(call.key, call.actor.id, updates, workspace_wide=True)
        text = await self._access_text(call.key)
        return text if changes else "Nothing changed. " + text

    # -- reset / history ---------------------------------------------------------------------------

    async def _reset(self, call: CommandCall, workspace_wide: bool) -> str:
        workspace, channel = await configs.load_overrides(self._db, call.key)
        target = workspace if workspace_wide else channel
        updates = {attr: args.INHERIT for attr in target if attr not in KEPT_ON_RESET}
        changes = await self.editor.edit(
            call.key, call.actor.id, updates, workspace_wide=workspace_wide
        )
        scope = "workspace defaults" if workspace_wide else "settings for this channel"
        if not changes:
            return f"There were no {scope} to remove."
        names = ", ".join(_field_name(c.field) for c in changes)
        inherit = "the deployment's defaults" if workspace_wide else "the workspace defaults"
        return (
            f"Removed the {scope} ({names}); {inherit} apply from the next message. "
            "`/assistant history` shows the old values."
        )

    async def _history(self, key: ConversationKey, limit: int) -> str:
        rows = await configs.recent_changes(self._db, key, limit)
        if not rows:
            return "No changes to this channel's assistant or the workspace defaults yet."
        lines = [f"The last {len(rows)} change(s), newest first:"]
        for row in rows:
            when = dt.datetime.fromtimestamp(row.changed_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            scope = "workspace default" if row.channel == "" else "this channel"
            name = _field_name(row.field)
            lines.append(
                f"• {when} <@{row.changed_by}> {name} ({scope}): "
                f"{_audit_value(name, row.old)} → {_audit_value(name, row.new)}"
            )
        return "\n".join(lines)


def _field_name(attr: str) -> str:
    return next((s.name for s in args.FIELDS.values() if s.attr == attr), attr)


def _audit_value(name: str, value: Any) -> str:
    if value is None:
        return "(inherited)"
    spec = args.FIELDS.get(name)
    text = str(value) if spec is None else args.display(spec, value)
    return text if len(text) <= HISTORY_VALUE_CHARS else text[: HISTORY_VALUE_CHARS - 1] + "…"


async def _schema_file_text(attachments: Sequence[Attachment]) -> str:
    """The text of the .json file attached to `/assistant set format` (no value typed)."""
    schema = next((a for a in attachments if a.name.lower().endswith(".json")), None)
    if schema is None:
        raise UserError(
            "Give the format after `/assistant set format`: `text`, `json`, or a JSON schema "
            "(typed, or attached as a .json file)."
        )
    if schema.size > MAX_SCHEMA_FILE_BYTES:
        raise UserError(f"{schema.name} is too large for a schema.")
    data = await schema.fetch()
    if len(data) > MAX_SCHEMA_FILE_BYTES:
        raise UserError(f"{schema.name} is too large for a schema.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{schema.name} is not UTF-8 text.") from None
