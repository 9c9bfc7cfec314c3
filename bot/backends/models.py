"""The models an endpoint serves (`GET /v1/models`), with their shutdown dates, for the model
checks of `/assistant set model` and `python -m bot doctor`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import openai
from openai import AsyncOpenAI

from bot.backends.client import make_openai_client
from bot.backends.errors import is_key_rejection, server_message
from bot.backends.retry import RetryPolicy
from bot.core.config import Settings

# Model id → its `shutdown_date` (ISO text) or None.
Served = dict[str, str | None]


async def _list(client: AsyncOpenAI) -> Served:
    return {m.id: getattr(m, "shutdown_date", None) async for m in client.models.list()}


class ModelCatalog:
    def __init__(self, client: AsyncOpenAI, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry

    async def served(self) -> Served:
        return await self._retry.call(lambda: _list(self._client))


@dataclass(frozen=True, slots=True)
class EndpointCheck:
    """What listing the models once told about the endpoint: `served` when it answered, else
    why not (`problem`: the key was rejected, it could not be reached, or an HTTP status) and
    what the server said (`message`)."""

    served: Served | None = None
    problem: Literal["", "key", "unreachable", "status"] = ""
    status_code: int = 0
    message: str = ""


async def check_endpoint(settings: Settings) -> EndpointCheck:
    """List the models with a client of its own, once, without retries (closed afterwards).
    Raises `ConfigError` when no API key is configured."""
    client = make_openai_client(settings)
    try:
        return EndpointCheck(await _list(client))
    except openai.APIConnectionError:
        return EndpointCheck(problem="unreachable")
    except openai.APIStatusError as exc:
        said = server_message(exc)
        if is_key_rejection(exc):
            return EndpointCheck(problem="key", status_code=exc.status_code, message=said)
        return EndpointCheck(problem="status", status_code=exc.status_code, message=said)
    finally:
        await client.close()
