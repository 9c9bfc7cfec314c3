"""`/assistant knowledge add|list|remove`: a channel's files for file search.

Each channel gets one vector store, created on the first `add` and kept in the channel's
overrides as `vector_store_id`. Files are uploaded (`purpose="assistants"`), attached to the
store and polled until processed, within SWITCHBOARD_KNOWLEDGE_WAIT seconds; a file that fails
is reported by name with OpenAI's reason and removed again. Adding knowledge also turns the
`file_search` tool on for the channel (otherwise the files would never be searched).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import mimetypes
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, TypeVar

from bot.backends.errors import explain_as
from bot.backends.files import FileState, KnowledgeFiles
from bot.core.assistant_config import resolve_assistant
from bot.core.config import Settings
from bot.core.errors import UserError
from bot.core.types import Attachment, CommandCall, ConversationKey
from bot.features.assistant.editor import ConfigEditor
from storage import configs, knowledge
from storage.configs import Change
from storage.db import Database, Transaction

T = TypeVar("T")
log = logging.getLogger(__name__)

# File search's supported types (shared/facts/openai.md §4.2); text must be UTF-8/16 or ASCII.
SUPPORTED = (
    *(".c", ".cs", ".cpp", ".doc", ".docx", ".html", ".java", ".json", ".md", ".pdf", ".php"),
    *(".pptx", ".py", ".rb", ".tex", ".txt", ".css", ".js", ".sh", ".ts"),
)
# Data files: not searchable as text; code interpreter reads them instead.
DATA_FILES = (".csv", ".tsv", ".xlsx", ".xls", ".xlsm", ".ods", ".parquet")
MAX_FILES = 10
MAX_FILE_BYTES = 512 * 1024 * 1024  # OpenAI's upload limit
NO_FILES = (
    "Attach the files to add. On Discord use the file options of /assistant; on Slack mention "
    "me with `/assistant knowledge add` in a message that has the files attached. "
    f"File search reads {' '.join(SUPPORTED)}."
)


@dataclass
class _Upload:
    name: str
    file_id: str
    size: int
    status: str
    error: str = ""


class Knowledge:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        files: KnowledgeFiles,
        editor: ConfigEditor,
    ) -> None:
        self._db = db
        self._settings = settings
        self._files = files
        self._editor = editor
        self._store_lock = asyncio.Lock()

    async def count(self, key: ConversationKey) -> int:
        return len(await knowledge.list_files(self._db, key.channel_key))

    # -- add ----------------------------------------------------------------------------------

    async def add(self, call: CommandCall) -> str:
        if not call.attachments:
            raise UserError(NO_FILES)
        key = call.key.channel_key
        lines: list[str] = []
        accepted: list[Attachment] = []
        for attachment in call.attachments[:MAX_FILES]:
            problem = file_problem(attachment.name, attachment.size)
            if problem:
                lines.append(f"✗ {attachment.name}: {problem}")
            else:
                accepted.append(attachment)
        if len(call.attachments) > MAX_FILES:
            lines.append(f"Only the first {MAX_FILES} files were taken; add the rest next.")
        if not accepted:
            raise UserError("\n".join(lines))
        store, note = await self._ensure_store(key, call.actor.id)
        if note:
            lines.append(note)
        uploads: list[_Upload] = []
        for attachment in accepted:
            upload, problem = await self._upload(store, attachment)
            if upload is not None:
                uploads.append(upload)
            else:
                lines.append(f"✗ {attachment.name}: {problem}")
        try:
            await self._wait(store, uploads)
        except asyncio.CancelledError:  # shutdown: keep what was uploaded, as in progress
            alive = [u for u in uploads if u.status in ("completed", "in_progress")]
            if alive:
                await asyncio.shield(self._record(call, store, alive))
            raise
        kept = [u for u in uploads if u.status in ("completed", "in_progress")]
        for upload in uploads:
            if upload in kept:
                continue
            log.warning(
                "knowledge file %s failed at %s: %s",
                upload.name,
                key,
                upload.error or upload.status,
            )
            lines.append(f"✗ {upload.name}: OpenAI could not process it ({upload.error}).")
            await self._forget_remote(store, upload.file_id)
        if kept:
            lines[:0] = await self._record(call, store, kept)
        return "\n".join(lines)

    async def _ensure_store(self, key: ConversationKey, actor_id: str) -> tuple[str, str]:
        """(this channel's vector store id, a note): the store is created the first time, and
        again when OpenAI no longer has it (expired or deleted), dropping the files it held."""
        async with self._store_lock:
            _, channel = await configs.load_overrides(self._db, key)
            existing = channel.get("vector_store_id")
            if isinstance(existing, str) and existing and await self._store_alive(existing):
                return existing, ""
            store = await self._call(
                self._files.create_store(f"Switchboard {key.platform} {key.channel}", str(key)),
                "create this channel's knowledge store",
            )
            lost = [
                f.name
                for f in await knowledge.list_files(self._db, key)
                if f.vector_store_id == existing
            ]

            async def drop_lost(batch: Transaction) -> None:
                for name in lost:
                    await knowledge.delete_file(batch, key, name)

            notes = [Change("knowledge", name, None) for name in lost]
            await self._editor.edit(
                key, actor_id, {"vector_store_id": store}, notes=notes, also=drop_lost
            )
            log.info("created vector store %s for %s (replacing %r)", store, key, existing)
            if not existing:
                return store, ""
            again = f" Add these again: {', '.join(lost)}." if lost else ""
            return store, (
                "This channel's previous knowledge store is gone at OpenAI (expired or "
                f"deleted), so a new one was made.{again}"
            )

    async def _store_alive(self, store: str) -> bool:
        return await self._call(
            self._files.store_alive(store), "reach this channel's knowledge store"
        )

    async def _upload(self, store: str, attachment: Attachment) -> tuple[_Upload | None, str]:
        try:
            data = await attachment.fetch()
        except UserError as exc:
            return None, exc.message
        if not data:
            return None, "the file is empty."
        mime = mimetypes.guess_type(attachment.name)[0] or attachment.mime
        try:
            file_id = await self._call(
                self._files.upload((attachment.name, data, mime)), f"upload {attachment.name}"
            )
        except UserError as exc:
            return None, exc.message
        try:
            attached = await self._call(
                self._files.attach(store, file_id),
                f"add {attachment.name} to this channel's knowledge",
            )
        except UserError as exc:
            await self._delete_file(file_id)
            return None, exc.message
        return _Upload(attachment.name, file_id, len(data), attached.status, attached.error), ""

    async def _wait(self, store: str, uploads: list[_Upload]) -> None:
        """Poll the files still in progress until each is done or the wait runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.knowledge_wait
        while True:
            pending = [u for u in uploads if u.status == "in_progress"]
            if not pending or loop.time() >= deadline:
                return
            await asyncio.sleep(self._settings.knowledge_poll_interval)
            for upload in pending:
                try:
                    current = await self._retrieve(store, upload.file_id)
                except UserError as exc:
                    log.warning("polling knowledge file %s: %s", upload.name, exc.log_detail)
                    continue
                upload.status, upload.error = current.status, current.error

    async def _record(self, call: CommandCall, store: str, kept: list[_Upload]) -> list[str]:
        """Save the files, and `file_search` among the tools, in one audited transaction."""
        key = call.key.channel_key
        previous = {f.name: f for f in await knowledge.list_files(self._db, key)}
        now = time.time()
        rows = [
            knowledge.KnowledgeFile(
                u.name,
                u.file_id,
                store,
                u.status,
                u.size,
                call.actor.id,
                now,  # type: ignore[arg-type]
            )
            for u in kept
        ]

        async def put(batch: Transaction) -> None:
            for row in rows:
                await knowledge.put_file(batch, key, row)

        config = await resolve_assistant(self._db, self._settings, key)
        updates: dict[str, Any] = {}
        if "file_search" not in config.tools:
            updates["tools"] = (*config.tools, "file_search")
        notes = [
            Change("knowledge", previous[u.name].name if u.name in previous else None, u.name)
            for u in kept
        ]
        await self._editor.edit(key, call.actor.id, updates, notes=notes, also=put)
        for u in kept:  # a file added again under the same name replaces the old one
            old = previous.get(u.name)
            if old is not None and old.file_id != u.file_id:
                await self._forget_remote(old.vector_store_id, old.file_id)
        lines = [
            f"✓ {u.name}: ready for file search."
            if u.status == "completed"
            else f"… {u.name}: still being processed by OpenAI; `/assistant knowledge list` "
            "shows when it is ready."
            for u in kept
        ]
        if updates:
            lines.append(
                "The file_search tool is now on for this channel, so answers use these files."
            )
        return lines

    # -- list / remove --------------------------------------------------------------------------

    async def list(self, call: CommandCall) -> str:
        key = call.key.channel_key
        files = await knowledge.list_files(self._db, key)
        if not files:
            return (
                "This channel has no knowledge files. Admins add some with "
                "`/assistant knowledge add` and the files attached."
            )
        lines = [f"Knowledge for file search here ({len(files)} file(s)):"]
        for file in files:
            status = file.status
            if status == "in_progress":
                status = await self._refresh(key, file)
            when = dt.datetime.fromtimestamp(file.added_at, dt.UTC).strftime("%Y-%m-%d")
            lines.append(
                f"• {file.name} ({_size(file.bytes)}): {status}; added by <@{file.added_by}> "
                f"on {when}"
            )
        return "\n".join(lines)

    async def _refresh(self, key: ConversationKey, file: knowledge.KnowledgeFile) -> str:
        try:
            current = await self._retrieve(file.vector_store_id, file.file_id)
        except UserError as exc:
            return f"in progress (could not check: {exc.message})"
        if current.status == "completed":
            await knowledge.set_status(self._db, key, file.name, "completed")
            return "completed"
        if current.status == "in_progress":
            return "still being processed"
        return f"failed ({current.error}); remove it with `/assistant knowledge remove {file.name}`"

    async def remove(self, call: CommandCall, name: str) -> str:
        key = call.key.channel_key
        files = await knowledge.list_files(self._db, key)
        match = next((f for f in files if f.name == name), None) or next(
            (f for f in files if f.name.lower() == name.lower()), None
        )
        if match is None:
            names = ", ".join(f.name for f in files) or "none"
            raise UserError(f"There is no knowledge file `{name[:80]}` here. Files: {names}.")
        await self._call(
            self._files.detach(match.vector_store_id, match.file_id),
            f"remove {match.name} from this channel's knowledge",
        )
        await self._call(self._files.delete(match.file_id), f"delete {match.name} at OpenAI")

        async def drop(batch: Transaction) -> None:
            await knowledge.delete_file(batch, key, match.name)

        notes = [Change("knowledge", match.name, None)]
        await self._editor.edit(key, call.actor.id, {}, notes=notes, also=drop)
        return f"Removed {match.name} from this channel's knowledge (and deleted it at OpenAI)."

    # -- OpenAI calls ----------------------------------------------------------------------------

    async def _call(self, call: Awaitable[T], doing: str) -> T:
        """Await an OpenAI call; its failure becomes "I could not `doing`: <why>"."""
        try:
            return await call
        except Exception as exc:
            friendly = explain_as(exc, doing)
            if friendly is None:
                raise
            raise friendly from exc

    async def _retrieve(self, store: str, file_id: str) -> FileState:
        return await self._call(self._files.state(store, file_id), "check a knowledge file")

    async def _forget_remote(self, store: str, file_id: str) -> None:
        """Best effort: detach and delete a file nobody will use (a failure is only logged)."""
        try:
            await self._files.detach(store, file_id)
        except Exception as exc:
            log.warning("could not detach file %s from %s: %s", file_id, store, type(exc).__name__)
        await self._delete_file(file_id)

    async def _delete_file(self, file_id: str) -> None:
        try:
            await self._files.delete(file_id)
        except Exception as exc:
            log.warning("could not delete file %s: %s", file_id, type(exc).__name__)


def file_problem(name: str, size: int) -> str:
    """Why file search cannot take this file ("" when it can)."""
    suffix = PurePosixPath(name.lower()).suffix
    if suffix in DATA_FILES:
        return (
            "file search cannot read spreadsheets or CSV. Attach it to a message instead: with "
            "the code_interpreter tool on (`/assistant set tools code_interpreter,file_search`), "
            "the assistant analyses data files with code."
        )
    if suffix not in SUPPORTED:
        kind = f"{suffix} files" if suffix else "files without an extension"
        return f"file search cannot read {kind}. It reads: {' '.join(SUPPORTED)}."
    if size > MAX_FILE_BYTES:
        return "the file is larger than OpenAI's 512 MB upload limit."
    return ""


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / 1024 / 1024:.1f} MB"
    return f"{max(1, round(count / 1024))} KB"
