"""Server-side conversations (Conversations API, responses backend): made for a conversation's
first turn, deleted by `/reset`. The caller keeps their ids."""

from __future__ import annotations

from openai import AsyncOpenAI

from bot.backends.retry import RetryPolicy


class ServerConversations:
    def __init__(self, client: AsyncOpenAI, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry

    async def create(self, label: str) -> str:
        """A new conversation, tagged with `label` (where it belongs); returns its id."""
        created = await self._retry.call(
            lambda: self._client.conversations.create(metadata={"switchboard": label[:512]})
        )
        return created.id

    async def delete(self, conversation_id: str) -> None:
        """One attempt, no retries: `/reset` does not wait on OpenAI to forget."""
        await self._client.conversations.delete(conversation_id)
