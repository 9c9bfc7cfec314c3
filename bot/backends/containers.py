"""Code interpreter containers and the files in them (responses backend): one explicit
container per conversation, which expires after `CONTAINER_IDLE_MINUTES` without use."""

from __future__ import annotations

import openai
from openai import AsyncOpenAI

from bot.backends.common import Upload
from bot.backends.retry import RetryPolicy

CONTAINER_IDLE_MINUTES = 20


class Containers:
    def __init__(self, client: AsyncOpenAI, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry

    async def alive(self, container_id: str) -> bool:
        """False when the container expired or is unknown."""
        try:
            found = await self._retry.call(lambda: self._client.containers.retrieve(container_id))
        except openai.NotFoundError:
            return False
        return found.status != "expired"

    async def create(self, name: str) -> str:
        made = await self._retry.call(
            lambda: self._client.containers.create(
                name=name[:256],
                expires_after={"anchor": "last_active_at", "minutes": CONTAINER_IDLE_MINUTES},
            )
        )
        return made.id

    async def put(self, container_id: str, file: Upload) -> str:
        """Put a file into the container; returns its path there."""
        made = await self._retry.call(
            lambda: self._client.containers.files.create(container_id, file=file)
        )
        return made.path

    async def read(self, container_id: str, file_id: str) -> bytes:
        content = await self._retry.call(
            lambda: self._client.containers.files.content.retrieve(
                file_id, container_id=container_id
            )
        )
        return content.content
