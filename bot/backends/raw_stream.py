"""Streamed requests whose events arrive as the JSON the server sent.

They go through the SDK's client all the same (its authentication, base URL, timeouts, status
errors, SSE decoding, error events and `[DONE]`), as `client.post`/`client.get` with
`cast_to=object`; only the SDK's model of each event is not built. Why: building those models
(`construct_type` over every field of hundreds of chunks per answer) was the largest part of the
bot's CPU per answer in issue 21's profile, while the backends read a handful of fields of each
event. What a backend keeps of a stream (a finished Response) it builds as the SDK's model once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import openai
from openai import AsyncOpenAI

# The events' type for the SDK must be `object` (it takes the type from the stream class): with
# any other, it walks every value of every event to build that type.
_RAW = openai.AsyncStream[object]
Events = openai.AsyncStream[Any]
_OPTIONS: dict[str, Any] = {"security": {"bearer_auth": True}}


async def post_stream(client: AsyncOpenAI, path: str, body: Mapping[str, Any]) -> Events:
    """POST `body` (which asks for `stream: true`) to `path`; its events as dicts."""
    return await client.post(  # type: ignore[return-value]
        path,
        body=dict(body),
        cast_to=object,  # type: ignore[arg-type]
        stream=True,
        stream_cls=_RAW,
        options=_OPTIONS,  # type: ignore[arg-type]
    )


async def get_stream(client: AsyncOpenAI, path: str, query: Mapping[str, Any]) -> Events:
    """GET `path` with `query` (which asks for `stream=true`); its events as dicts."""
    return await client.get(  # type: ignore[return-value]
        path,
        cast_to=object,  # type: ignore[arg-type]
        stream=True,
        stream_cls=_RAW,
        options={**_OPTIONS, "params": dict(query)},  # type: ignore[typeddict-item]
    )
