"""A channel's answer format ("text", "json", or a JSON schema given as text): the request
parameter each API takes, and the final answer pretty-printed (or flagged when it is not JSON).

The JSON-schema rules live here once, for `/assistant set format` as for every answer: what a
wrapped schema is (`is_wrapper`), the validator (`check_schema`, `validator`).

Regular expressions in a schema (`pattern`, `patternProperties`) are an admin's text run
against the model's text on every answer. With Python's backtracking `re`, a pattern such as
`(a+)+$` takes seconds or forever on a crafted answer, on the event loop. So patterns are
matched with RE2 (linear time, no backtracking): `check_schema` refuses a schema with a pattern
RE2 cannot compile (lookarounds, backreferences), and the validator uses RE2 for `pattern`,
`patternProperties` and `additionalProperties`; `unevaluatedProperties` beside
`patternProperties` is refused (the library would match those with `re`)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import re2
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import SchemaError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import extend, validator_for

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
    """The one JSON-schema check: Draft 2020-12 unless the schema names its own `$schema`,
    and every pattern one RE2 runs. Raises `SchemaError`, or whatever a schema odd enough to
    break the checker raises."""
    validator_for(schema, Draft202012Validator).check_schema(schema)
    patterns, mixed = _patterns_in(schema)
    for pattern in patterns:
        try:
            _compiled(pattern)
        except re2.error as exc:
            reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else ""
            raise SchemaError(
                f"the pattern {pattern[:80]!r} is not supported ({reason or 'invalid'}): "
                "lookarounds and backreferences cannot be matched safely"
            ) from None
    if mixed:
        raise SchemaError("unevaluatedProperties cannot be combined with patternProperties here")


def validator(schema: Any) -> Validator:
    """The validator of answers against `schema` (checked with `check_schema`): patterns are
    matched with RE2."""
    base = validator_for(schema, Draft202012Validator)
    return _safe_class(base)(schema)


# -- RE2 patterns ---------------------------------------------------------------------------

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # errors are raised, not written to stderr
_RE2_OPTIONS.max_mem = 8 << 20


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern, options=_RE2_OPTIONS)


def _search(pattern: str, text: str) -> bool:
    try:
        return _compiled(pattern).search(text) is not None
    except re2.error:
        return False  # refused by check_schema; a stored one is simply never matched


def _patterns_in(schema: Any) -> tuple[list[str], bool]:
    """Every `pattern` and `patternProperties` key in `schema`, and whether it uses both
    `patternProperties` and `unevaluatedProperties`."""
    found: list[str] = []
    unevaluated = keyed = False
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.append(node["pattern"])
            if isinstance(node.get("patternProperties"), dict):
                found.extend(str(k) for k in node["patternProperties"])
                keyed = True
            unevaluated = unevaluated or "unevaluatedProperties" in node
            stack.extend(node.values())
    return found, unevaluated and keyed


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for name, value in instance.items():
            if _search(pattern, name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Iterator:
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        name
        for name in instance
        if name not in known and not any(_search(p, name) for p in patterns)
    ]
    if validator.is_type(extra, "object"):
        for name in extras:
            yield from validator.descend(instance[name], extra, path=name)
    elif not extra and extras:
        names = ", ".join(repr(name) for name in sorted(extras))
        yield ValidationError(f"Additional properties are not allowed ({names} unexpected)")


@functools.cache
def _safe_class(base: Any) -> Any:
    return extend(
        base,
        {
            "pattern": _pattern,
            "patternProperties": _pattern_properties,
            "additionalProperties": _additional_properties,
        },
    )


def _bad_format(reason: str) -> UserError:
    return UserError(
        f"This channel's answer format is set to a JSON schema I can't use: {reason}. An admin "
        "can fix it with `/assistant set format text|json|<JSON schema>`.",
        log_detail=f"bad format setting: {reason}",
    )
