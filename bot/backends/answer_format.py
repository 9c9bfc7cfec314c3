"""A channel's answer format ("text", "json", or a JSON schema given as text): the request
parameter each API takes, and the final answer pretty-printed (or flagged when it is not JSON).

The JSON-schema rules live here once, for `/assistant set format` as for every answer: what a
wrapped schema is (`is_wrapper`), the validator (`check_schema`, `validator`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from bot.core.errors import UserError

SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
JSON_HINT = "Answer with one JSON object only."


@dataclass(frozen=True, slots=True)
class AnswerFormat:
    """`schema` is None for "any JSON object" (json mode)."""

    schema: dict[str, Any] | None = None
    name: str = "answer"
    strict: bool = False

    def responses_text(self) -> dict[str, Any]:
        if self.schema is None:
            return {"format": {"type": "json_object"}}
        spec = {"type": "json_schema", "name": self.name, "schema": self.schema}
        return {"format": {**spec, "strict": self.strict}}

    def chat_response_format(self) -> dict[str, Any]:
        if self.schema is None:
            return {"type": "json_object"}
        spec = {"name": self.name, "schema": self.schema, "strict": self.strict}
        return {"type": "json_schema", "json_schema": spec}

    def instructions(self, instructions: str) -> str:
        """json_object mode needs the word JSON in the prompt: say it when the admin did not."""
        if "json" in instructions.lower():
            return instructions
        return f"{instructions}\n\n{JSON_HINT}".strip()

    def finish(self, text: str) -> tuple[str, str]:
        """(answer to show, notice): a ```json block, or the raw text and why it is not JSON."""
        try:
            value = json.loads(text)
        except ValueError as exc:
            return text, f"(the model's answer is not valid JSON: {exc.msg} at character {exc.pos})"
        pretty = json.dumps(value, indent=2, ensure_ascii=False)
        notice = ""
        if self.schema is not None:
            problem = best_match(validator(self.schema).iter_errors(value))
            if problem is not None:
                notice = (
                    f"(the answer does not match this channel's JSON schema: {problem.message})"
                )
        return f"```json\n{pretty}\n```", notice


def answer_format(value: str) -> AnswerFormat | None:
    """The format of a channel's `format` setting; None for plain text. A schema the bot cannot
    use is the admin's to fix, so it is explained rather than ignored."""
    text = (value or "text").strip()
    if text.lower() == "text":
        return None
    if text.lower() == "json":
        return AnswerFormat()
    try:
        parsed = json.loads(text)
    except ValueError:
        raise _bad_format("it is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise _bad_format("it must be a JSON object")
    wrapped = is_wrapper(parsed)
    schema = parsed["schema"] if wrapped else parsed
    name = str(parsed.get("name") or "answer") if wrapped else "answer"
    strict = bool(parsed.get("strict", False)) if wrapped else False
    if not SCHEMA_NAME.match(name):
        raise _bad_format("its name must be 1-64 letters, digits, '_' or '-'")
    try:
        check_schema(schema)
    except SchemaError as exc:
        raise _bad_format(f"it is not a valid JSON schema ({exc.message})") from None
    return AnswerFormat(schema=schema, name=name, strict=strict)


def is_wrapper(document: dict[str, Any]) -> bool:
    """The API's {"name": …, "schema": {…}, "strict": …} wrapper, not a bare schema (which
    is named "answer")."""
    return isinstance(document.get("schema"), dict) and "type" not in document


def check_schema(schema: Any) -> None:
    """The one JSON-schema check: Draft 2020-12 unless the schema names its own `$schema`.
    Raises `SchemaError`, or whatever a schema odd enough to break the checker raises."""
    validator_for(schema, Draft202012Validator).check_schema(schema)


def validator(schema: Any) -> Validator:
    """The validator of answers against `schema` (checked with `check_schema`)."""
    return validator_for(schema, Draft202012Validator)(schema)


def _bad_format(reason: str) -> UserError:
    return UserError(
        f"This channel's answer format is set to a JSON schema I can't use: {reason}. An admin "
        "can fix it with `/assistant set format text|json|<JSON schema>`.",
        log_detail=f"bad format setting: {reason}",
    )
