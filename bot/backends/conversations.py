"""Server-side conversations (Conversations API, responses backend): made for a conversation's
first turn (or seeded anew when one outgrew the context window), deleted by `/reset`. The
caller keeps their ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openai import AsyncOpenAI

from bot.backends.retry import RetryPolicy

ITEMS_PER_CALL = 20  # the API takes at most 20 items per create call
PAGE = 100


class ServerConversations:
    def __init__(self, client: AsyncOpenAI, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry

    async def create(self, label: str, items: Sequence[dict[str, Any]] = ()) -> str:
        """A new conversation, tagged with `label` (where it belongs) and holding `items`;
        returns its id."""
        first, rest = list(items[:ITEMS_PER_CALL]), list(items[ITEMS_PER_CALL:])
        metadata = {"switchboard": label[:512]}
        if first:
            created = await self._retry.call(
                lambda: self._client.conversations.create(metadata=metadata, items=first)  # type: ignore[arg-type]
            )
        else:
            created = await self._retry.call(
                lambda: self._client.conversations.create(metadata=metadata)
            )
        for start in range(0, len(rest), ITEMS_PER_CALL):
            chunk = rest[start : start + ITEMS_PER_CALL]
            await self._retry.call(
                lambda chunk=chunk: self._client.conversations.items.create(  # type: ignore[misc]
                    created.id, items=chunk
                )
            )
        return created.id

    async def label(self, conversation_id: str, label: str, *, retry: bool = True) -> None:
        """Tag the conversation with `label` (replacing its metadata)."""
        metadata = {"switchboard": label[:512]}

        async def update() -> None:
            await self._client.conversations.update(conversation_id, metadata=metadata)

        await (self._retry.call(update) if retry else update())

    async def items(self, conversation_id: str) -> list[dict[str, Any]]:
        """Every item of the conversation, oldest first, as plain dicts (reusable as input)."""
        found: list[dict[str, Any]] = []
        page = await self._retry.call(
            lambda: self._client.conversations.items.list(conversation_id, order="asc", limit=PAGE)
        )
        while True:
            found += [
                item.model_dump(exclude_none=True, mode="json", warnings=False)
                for item in page.data
            ]
            if not page.has_next_page():
                return found
            page = await self._retry.call(page.get_next_page)

    async def delete(self, conversation_id: str) -> None:
        """One attempt, no retries: `/reset` does not wait on OpenAI to forget."""
        await self._client.conversations.delete(conversation_id)
