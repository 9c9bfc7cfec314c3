"""Uploaded files and vector stores (file search knowledge): ids and processing states come
back as values. A file or store already gone counts as removed."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import openai
from openai import AsyncOpenAI

from bot.backends.common import Upload
from bot.backends.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class FileState:
    """A file's processing in a vector store: `status` is in_progress, completed, failed or
    cancelled; `error` OpenAI's reason ("" while it is fine)."""

    status: str
    error: str = ""


class KnowledgeFiles:
    def __init__(self, client: AsyncOpenAI, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry

    async def store_alive(self, store_id: str) -> bool:
        """False when the vector store is unknown (deleted) or expired."""
        try:
            current = await self._retry.call(lambda: self._client.vector_stores.retrieve(store_id))
        except openai.NotFoundError:
            return False
        return current.status != "expired"

    async def create_store(self, name: str, label: str) -> str:
        """A new vector store named `name`, tagged with `label` (where it belongs)."""
        store = await self._retry.call(
            lambda: self._client.vector_stores.create(
                name=name[:200], metadata={"switchboard_channel": label[:512]}
            )
        )
        return store.id

    async def upload(self, file: Upload) -> str:
        """Upload a file for file search; returns its id."""
        uploaded = await self._retry.call(
            lambda: self._client.files.create(file=file, purpose="assistants")
        )
        return uploaded.id

    async def attach(self, store_id: str, file_id: str) -> FileState:
        attached = await self._retry.call(
            lambda: self._client.vector_stores.files.create(
                vector_store_id=store_id, file_id=file_id
            )
        )
        return _state(attached)

    async def state(self, store_id: str, file_id: str) -> FileState:
        current = await self._retry.call(
            lambda: self._client.vector_stores.files.retrieve(file_id, vector_store_id=store_id)
        )
        return _state(current)

    async def detach(self, store_id: str, file_id: str) -> None:
        await self._retry.call(
            lambda: _ignore_missing(
                self._client.vector_stores.files.delete(file_id, vector_store_id=store_id)
            )
        )

    async def delete(self, file_id: str) -> None:
        await self._retry.call(lambda: _ignore_missing(self._client.files.delete(file_id)))


async def _ignore_missing(call: Awaitable[Any]) -> None:
    """Await a delete; already gone (404) counts as done."""
    try:
        await call
    except openai.NotFoundError:
        return


def _state(file: Any) -> FileState:
    return FileState(file.status, _reason(file.last_error, file.status))


def _reason(error: Any, status: str) -> str:
    if error is None:
        return "" if status in ("completed", "in_progress") else status
    message = getattr(error, "message", "") or ""
    code = getattr(error, "code", "") or ""
    return f"{message} [{code}]" if message and code else message or code or status
