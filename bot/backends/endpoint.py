"""What an OpenAI-compatible endpoint serves: `/responses`, `/conversations`, `/chat/completions`.

Each path is probed with the smallest real request: a conversation is created and deleted at
once; `/responses` and `/chat/completions` are asked for a few tokens of an answer with the
configured chat model (`store` off), which costs a fraction of a cent and shows the model works
there too. A server without the route answers 404 or 405; any other answer means the route
exists (an unknown model, for instance, is reported as such).

The `responses` backend needs both `/responses` and `/conversations` (it keeps every
conversation on the server); compatible servers often serve the first without the second
(LiteLLM, vLLM, Ollama), and then the `chat` backend is the one that works (history in our own
database). `conversations_missing` is the start-up check; `python -m bot doctor` prints every
probe and which backend works.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import openai

from bot.backends.client import make_openai_client
from bot.backends.errors import is_key_rejection, is_model_error, server_message
from bot.core.config import Settings

Feature = Literal["responses", "conversations", "chat"]

PATHS: dict[Feature, str] = {
    "responses": "/responses",
    "conversations": "/conversations",
    "chat": "/chat/completions",
}
# Backends and the features they need.
NEEDS: dict[str, tuple[Feature, ...]] = {
    "responses": ("responses", "conversations"),
    "chat": ("chat",),
}
PROBE_TIMEOUT = 20.0
PROBE_TOKENS = 16  # the smallest `max_output_tokens` the Responses API takes
OFFICIAL_HOSTS = frozenset({"api.openai.com"})


@dataclass(frozen=True, slots=True)
class Probe:
    """One path's answer: `served` is None when it could not be told (unreachable, the key
    was refused, a server error); `why` says what was seen ("HTTP 404", "unreachable", the
    server's words about the model)."""

    feature: Feature
    path: str
    served: bool | None
    why: str = ""
    model_missing: bool = False


async def probe_features(
    settings: Settings, features: tuple[Feature, ...] = ("responses", "conversations", "chat")
) -> list[Probe]:
    """Probe each feature once, without retries, with a client of its own (closed afterwards).
    Raises `ConfigError` when no API key is configured."""
    client = make_openai_client(settings).with_options(timeout=PROBE_TIMEOUT, max_retries=0)
    try:
        return [await _probe(client, settings, f) for f in features]
    finally:
        await client.close()


async def _probe(client: openai.AsyncOpenAI, settings: Settings, feature: Feature) -> Probe:
    shown = urlsplit(settings.openai_base_url).path.rstrip("/") + PATHS[feature]
    try:
        await _request(client, settings, feature)
    except openai.APIStatusError as exc:
        status = exc.status_code
        if is_model_error(exc):
            said = server_message(exc) or f"HTTP {status}"
            return Probe(feature, shown, True, said, model_missing=True)
        if status in (404, 405):
            return Probe(feature, shown, False, f"HTTP {status}")
        if is_key_rejection(exc):
            return Probe(feature, shown, None, f"the key was refused: {server_message(exc)}")
        if status >= 500:
            return Probe(feature, shown, None, f"HTTP {status}")
        return Probe(feature, shown, True, f"HTTP {status}: {server_message(exc)}")
    except openai.APIConnectionError:
        return Probe(feature, shown, None, "unreachable")
    return Probe(feature, shown, True)


async def _request(client: openai.AsyncOpenAI, settings: Settings, feature: Feature) -> None:
    if feature == "conversations":
        created = await client.conversations.create(metadata={"switchboard": "probe"})
        with contextlib.suppress(openai.APIError):
            await client.conversations.delete(created.id)
    elif feature == "responses":
        await client.responses.create(
            model=settings.chat_model,
            input="Say OK.",
            max_output_tokens=PROBE_TOKENS,
            store=False,
        )
    else:
        await client.chat.completions.create(
            model=settings.chat_model,
            messages=[{"role": "user", "content": "Say OK."}],
            max_completion_tokens=PROBE_TOKENS,
        )


def working_backends(probes: list[Probe]) -> dict[str, bool | None]:
    """For each backend: True when the endpoint serves all it needs, False when it lacks one,
    None when a probe could not tell."""
    served = {p.feature: p.served for p in probes}
    verdicts: dict[str, bool | None] = {}
    for backend, needs in NEEDS.items():
        answers = [served.get(f) for f in needs]
        if any(a is False for a in answers):
            verdicts[backend] = False
        elif all(a is True for a in answers):
            verdicts[backend] = True
        else:
            verdicts[backend] = None
    return verdicts


async def conversations_missing(settings: Settings) -> str | None:
    """For the start of the `responses` backend: the path of the Conversations API when the
    endpoint certainly does not serve it (else None: served, OpenAI itself, or not known now,
    e.g. unreachable, which the first answer will report)."""
    if settings.backend != "responses":
        return None
    if urlsplit(settings.openai_base_url).hostname in OFFICIAL_HOSTS:
        return None
    (probe,) = await probe_features(settings, ("conversations",))
    return probe.path if probe.served is False else None
