"""How OpenAI-compatible servers answer what OpenAI answers differently: a recorded error set.

`FakeOpenAI.server = LITELLM` makes the fake answer like a LiteLLM proxy where the two differ:

* routes it does not have (``/v1/conversations…``) -> 404 ``{"detail": "Not Found"}`` (its web
  framework's answer, before any key check);
* a model it does not know -> 400 with ``code: "400"``, ``param: null`` and the text
  "/chat/completions: Invalid model name passed in model=…" (OpenAI: 404 ``model_not_found``);
* a key it does not know (the ``unauthorized`` fault) -> 400 "No connected db." (a proxy
  without a database that is given a key other than its master key; OpenAI: 401
  ``invalid_api_key``).

Everything else is the fake's usual OpenAI behaviour. The bodies are copied from a real LiteLLM
proxy (litellm 1.110.2, ``litellm --config`` with a ``mock_response`` model and a master key, no
database), recorded with curl on 2026-12-06; `RECORDED` keeps them verbatim, with the request
that produced each, so a test can check the classification against the real texts, and
`tests/test_compatible_servers.py` can run the real proxy when it is installed. The error
bodies are LiteLLM's, not OpenAI's: the fake does not check them against the OpenAPI spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_MODELS_HINT = "Call `/v1/models` to view available models for your key."


@dataclass(frozen=True)
class Recorded:
    """One answer of the real server: the request, its status and body."""

    method: str
    path: str
    request: dict[str, Any] | None
    status: int
    body: dict[str, Any]


def _invalid_model(route: str, model: str) -> dict[str, Any]:
    text = f"{route}: Invalid model name passed in model={model}. {_MODELS_HINT}"
    return {
        "error": {
            "message": text,
            "type": "invalid_request_error",
            "param": None,
            "code": "400",
            "provider_specific_fields": {"error": text},
        }
    }


NO_DB = {
    "error": {
        "message": "No connected db.",
        "type": "no_db_connection",
        "param": None,
        "code": "400",
    }
}
NOT_FOUND = {"detail": "Not Found"}

RECORDED: tuple[Recorded, ...] = (
    Recorded(
        "POST",
        "/v1/chat/completions",
        {"model": "nope", "messages": [{"role": "user", "content": "hi"}]},
        400,
        _invalid_model("/chat/completions", "nope"),
    ),
    Recorded(
        "POST",
        "/v1/responses",
        {"model": "nope", "input": "hi"},
        400,
        _invalid_model("/responses", "nope"),
    ),
    Recorded(
        "POST",
        "/v1/chat/completions",
        {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]},
        400,
        NO_DB,
    ),
    Recorded("GET", "/v1/models", None, 400, NO_DB),
    Recorded("POST", "/v1/conversations", {"metadata": {"switchboard": "x"}}, 404, NOT_FOUND),
    Recorded("GET", "/v1/conversations/conv_x", None, 404, NOT_FOUND),
    Recorded(
        "POST",
        "/v1/images/generations",
        {"model": "nope", "prompt": "x"},
        400,
        {
            "error": {
                "message": "400: {'error': '/image/generations: Invalid model name passed in "
                f"model=nope. {_MODELS_HINT}'}}",
                "type": "invalid_request_error",
                "param": None,
                "code": "400",
            }
        },
    ),
    Recorded(
        "POST",
        "/v1/audio/speech",
        {"model": "nope", "input": "x", "voice": "alloy"},
        400,
        {
            "detail": {
                "error": f"/audio/speech: Invalid model name passed in model=nope. {_MODELS_HINT}"
            }
        },
    ),
    Recorded(
        "POST",
        "/v1/responses",
        {},
        400,
        {
            "error": {
                "message": "/responses: Missing required parameter: 'input'.",
                "type": "invalid_request_error",
                "param": "input",
                "code": "400",
            }
        },
    ),
)


@dataclass(frozen=True)
class CompatibleServer:
    """The ways one compatible server's answers differ from OpenAI's (see the module docstring)."""

    name: str
    unserved: tuple[str, ...]  # path prefixes it has no route for

    def serves(self, path: str) -> bool:
        return not any(path == p or path.startswith(p + "/") for p in self.unserved)

    def not_found(self) -> tuple[int, dict[str, Any]]:
        return 404, NOT_FOUND

    def unknown_model(self, path: str, model: str) -> tuple[int, dict[str, Any]]:
        route = path.removeprefix("/v1")
        return 400, _invalid_model(route, model)

    def rejected_key(self) -> tuple[int, dict[str, Any]]:
        return 400, NO_DB


LITELLM = CompatibleServer("LiteLLM proxy", unserved=("/v1/conversations",))
