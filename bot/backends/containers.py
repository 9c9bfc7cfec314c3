"""Code interpreter containers and the files in them (responses backend): one explicit
container per conversation, which expires after `CONTAINER_IDLE_MINUTES` without use."""

from __future__ import annotations

import openai
from openai import AsyncOpenAI

from bot.backends.common import Upload
from bot.backends.retry import RetryPolicy

CONTAINER_IDLE_MINUTES = 20
MB = 1024 * 1024
FILE_MAX_BYTES = 25 * MB  # a file code interpreter made, downloaded to post in chat


class FileTooLarge(Exception):
    """A container file is larger than `FILE_MAX_BYTES`: not downloaded past that."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


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

    async def read(self, container_id: str, file_id: str, limit: int = FILE_MAX_BYTES) -> bytes:
        """The file's bytes, streamed: `FileTooLarge` as soon as it passes `limit` (from its
        declared length, or while reading), so a huge file is never held in memory."""
        return await self._retry.call(lambda: self._download(container_id, file_id, limit))

    async def _download(self, container_id: str, file_id: str, limit: int) -> bytes:
        content = self._client.containers.files.content.with_streaming_response
        async with content.retrieve(file_id, container_id=container_id) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise FileTooLarge(int(declared))
            data = bytearray()
            async for chunk in response.iter_bytes():
                data += chunk
                if len(data) > limit:
                    raise FileTooLarge(len(data))
            return bytes(data)
