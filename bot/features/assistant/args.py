"""The `/assistant` argument parser: pure functions from the typed text to a command and from a
field's text to its stored value. Every bad input raises `UserError` (and nothing else) with
the valid values, so the capability only has to do the parts that need I/O (the models list,
attached files, the database)."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from jsonschema import SchemaError

from bot.backends.answer_format import SCHEMA_NAME, check_schema, is_wrapper
from bot.backends.common import HOSTED_TOOLS
from bot.backends.speech import VOICES
from bot.core.errors import UserError
from bot.features.assistant.access import AccessCommand, parse_access

FUNCTIONS_PREFIX: Final = "functions:"
MAX_NAME_CHARS: Final = 80
MAX_INSTRUCTIONS_CHARS: Final = 20_000
MAX_SCHEMA_CHARS: Final = 50_000
MAX_OUTPUT_TOKENS: Final = 1_000_000
MIN_OUTPUT_TOKENS: Final = 16  # the Responses API's minimum for max_output_tokens
MAX_BUDGET_USD: Final = 1_000_000.0
HISTORY_DEFAULT: Final = 10
HISTORY_MAX: Final = 50
_SEED_RANGE: Final = (-(2**63), 2**63 - 1)

ASSISTANT_HELP: Final = (
    "Usage: `/assistant` shows this channel's assistant. Admins: `/assistant set FIELD VALUE`, "
    "`/assistant set workspace FIELD VALUE` (the default every channel inherits), "
    "`/assistant set FIELD default` (inherit again), `/assistant reset [workspace]`, "
    "`/assistant history`, `/assistant knowledge add` (with files) | `list` | `remove NAME`; "
    "workspace admins: `/assistant access …` (who may use the assistant)."
)


class Inherit:
    """The value that removes an override, so the field is inherited again."""

    def __repr__(self) -> str:
        return "INHERIT"


INHERIT: Final = Inherit()


Parser = Callable[["FieldSpec", str, "ValueContext"], Any]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str  # what admins type
    attr: str  # the AssistantConfig attribute (and the stored override key)
    values: str  # the valid values, for help and errors
    parse: Parser = field(compare=False, repr=False)  # the typed text → the stored value


_ON = frozenset({"on", "true", "yes", "1", "enabled"})
_OFF = frozenset({"off", "false", "no", "0", "disabled"})
_INHERIT_WORDS = frozenset({"default", "inherit", "unset"})
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "`": "`"}
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Show:
    pass


@dataclass(frozen=True, slots=True)
class SetField:
    field: FieldSpec
    value: str  # the raw text; `parse_value` turns it into the stored value
    workspace: bool = False


@dataclass(frozen=True, slots=True)
class Reset:
    workspace: bool = False


@dataclass(frozen=True, slots=True)
class History:
    limit: int = HISTORY_DEFAULT


@dataclass(frozen=True, slots=True)
class KnowledgeAdd:
    pass


@dataclass(frozen=True, slots=True)
class KnowledgeList:
    pass


@dataclass(frozen=True, slots=True)
class KnowledgeRemove:
    name: str


AssistantCommand = (
    Show
    | SetField
    | Reset
    | History
    | KnowledgeAdd
    | KnowledgeList
    | KnowledgeRemove
    | AccessCommand
)


def parse_command(text: str) -> AssistantCommand:
    """`/assistant` text → the command it spells."""
    if not isinstance(text, str):
        raise UserError(ASSISTANT_HELP)
    head, rest = _split(text.strip())
    verb = head.lower()
    if verb in ("", "show", "config", "settings"):
        if rest:
            raise UserError(f"`/assistant {verb}` takes nothing after it. {ASSISTANT_HELP}")
        return Show()
    if verb in ("help", "?"):
        raise UserError(ASSISTANT_HELP + "\nFields: " + FIELD_NAMES + ".")
    if verb == "set":
        workspace, rest = _scope(rest)
        name, value = _split(rest)
        if not name:
            raise UserError(f"Say which field to set. Fields: {FIELD_NAMES}. {ASSISTANT_HELP}")
        return SetField(field_spec(name), value, workspace)
    if verb == "reset":
        workspace, rest = _scope(rest)
        if rest:
            raise UserError(
                "`/assistant reset` removes every setting made for this channel; say "
                "`/assistant set FIELD default` to reset one field."
            )
        return Reset(workspace)
    if verb in ("history", "log", "audit"):
        return History(_history_limit(rest))
    if verb in ("knowledge", "files", "kb"):
        return _knowledge(rest)
    if verb == "access":
        return parse_access(rest)
    raise UserError(f"I don't know `/assistant {_shorten(head)}`. {ASSISTANT_HELP}")


def field_spec(name: str) -> FieldSpec:
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    spec = FIELDS.get(key) or FIELDS.get(key.replace("_", "")) or _compact_match(key)
    if spec is None:
        raise UserError(f"There is no field `{_shorten(name)}`. Fields: {FIELD_NAMES}.")
    return spec


def _compact_match(key: str) -> FieldSpec | None:
    compact = key.replace("_", "")
    return next((s for s in FIELDS.values() if s.name.replace("_", "") == compact), None)


def _knowledge(rest: str) -> AssistantCommand:
    verb, name = _split(rest)
    verb = verb.lower()
    if verb in ("", "list", "ls", "show"):
        return KnowledgeList()
    if verb in ("add", "upload"):
        return KnowledgeAdd()
    if verb in ("remove", "rm", "delete", "del"):
        name = unquote(name)
        if not name:
            raise UserError(
                "Say which file to remove: `/assistant knowledge remove NAME` "
                "(`/assistant knowledge list` shows the names)."
            )
        return KnowledgeRemove(name)
    raise UserError(
        f"I don't know `/assistant knowledge {_shorten(verb)}`: say add (with files), list, "
        "or remove NAME."
    )


def _history_limit(rest: str) -> int:
    words = rest.split()
    if not words:
        return HISTORY_DEFAULT
    try:
        count = int(words[0])
    except ValueError:
        raise UserError(
            f"`/assistant history [N]` shows the last N changes (1 to {HISTORY_MAX})."
        ) from None
    if len(words) > 1 or not 1 <= count <= HISTORY_MAX:
        raise UserError(f"`/assistant history [N]` shows the last N changes (1 to {HISTORY_MAX}).")
    return count


def _scope(rest: str) -> tuple[bool, str]:
    """(workspace-wide?, the rest) after an optional `workspace` / `--workspace` / `-w`."""
    word, after = _split(rest)
    if word.lower().lstrip("-—–") in ("workspace", "server", "guild", "w"):
        return True, after
    return False, rest


def _split(text: str) -> tuple[str, str]:
    """The first word and the rest, with the rest's own spacing and line breaks kept."""
    parts = text.strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1].strip() if len(parts) > 1 else ""


def unquote(text: str) -> str:
    value = text.strip()
    if len(value) >= 2 and _QUOTES.get(value[0]) == value[-1]:
        return value[1:-1].strip()
    return value


def _shorten(text: str, limit: int = 40) -> str:
    text = " ".join(text.split()).replace("`", "'")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class ValueContext:
    """What validating a value depends on besides its text."""

    function_names: frozenset[str] = frozenset()
    backend: str = "responses"


def parse_value(spec: FieldSpec, raw: str, context: ValueContext = ValueContext()) -> Any:
    """The stored value for `raw` (or `INHERIT`). The model is only checked for its shape here;
    the capability checks it against the endpoint's models list."""
    if not isinstance(raw, str):
        raise UserError(f"Give a value for {spec.name}: {spec.values}.")
    text = raw.strip() if spec.name in ("instructions", "format") else unquote(raw)
    if not text:
        raise UserError(
            f"Give a value for {spec.name}: {spec.values}. "
            f"(`/assistant set {spec.name} default` inherits it again.)"
        )
    word = text.lower()
    if word in _INHERIT_WORDS:
        return INHERIT
    return spec.parse(spec, text, context)


def _name(spec: FieldSpec, text: str, _: ValueContext) -> str:
    if "\n" in text or len(text) > MAX_NAME_CHARS:
        raise UserError(f"The name must be one line of at most {MAX_NAME_CHARS} characters.")
    return text


def _instructions(spec: FieldSpec, text: str, _: ValueContext) -> str:
    value = unquote(text)
    if len(value) > MAX_INSTRUCTIONS_CHARS:
        raise UserError(
            f"Instructions can be at most {MAX_INSTRUCTIONS_CHARS:,} characters "
            f"(these are {len(value):,})."
        )
    if not value:
        raise UserError("Give the instructions as text after `/assistant set instructions`.")
    return value


def _model(spec: FieldSpec, text: str, _: ValueContext) -> str:
    if not _MODEL_ID.fullmatch(text):
        raise UserError(
            f"`{_shorten(text)}` is not a model id (one word, as GET /v1/models lists them). "
            "`/assistant` shows the current one."
        )
    return text


def _temperature(spec: FieldSpec, text: str, _: ValueContext) -> float:
    value = _number(spec, text)
    if not 0.0 <= value <= 2.0:
        raise UserError(f"temperature must be from 0 to 2 (got {_shorten(text)}).")
    return value


def _tools(spec: FieldSpec, text: str, context: ValueContext) -> tuple[str, ...]:
    if text.lower() in ("none", "off", "no"):
        return ()
    hosted: list[str] = []
    functions: list[str] = []
    for token in text.replace(";", " ").split():
        if token.lower().startswith(FUNCTIONS_PREFIX):
            names = [n for n in token[len(FUNCTIONS_PREFIX) :].split(",") if n]
            if not names:
                raise UserError("Name the functions: `functions:NAME,NAME`.")
            functions.extend(names)
            continue
        for name in (n.strip().lower() for n in token.split(",")):
            if not name:
                continue
            if name not in HOSTED_TOOLS:
                raise UserError(f"Unknown tool `{_shorten(name)}`. Tools: {spec.values}.")
            if name not in hosted:
                hosted.append(name)
    unknown = [n for n in functions if n not in context.function_names]
    if unknown:
        available = ", ".join(sorted(context.function_names)) or "none in this build"
        raise UserError(
            f"Unknown function {', '.join(f'`{_shorten(n)}`' for n in unknown[:5])}. "
            f"Functions available: {available}."
        )
    tools = list(hosted)
    if functions:
        tools.append(FUNCTIONS_PREFIX + ",".join(dict.fromkeys(functions)))
    return tuple(tools)


def _format(spec: FieldSpec, text: str, _: ValueContext) -> str:
    word = text.lower()
    if word in ("text", "json"):
        return word
    return parse_schema(unquote(text))


def parse_schema(text: str) -> str:
    """A JSON object schema given as text → its compact JSON text."""
    if len(text) > MAX_SCHEMA_CHARS:
        raise UserError(f"A schema can be at most {MAX_SCHEMA_CHARS:,} characters.")
    if not text.lstrip().startswith("{"):
        raise UserError(
            "format must be `text`, `json`, or a JSON schema of an object "
            '(e.g. {"type": "object", "properties": {"answer": {"type": "string"}}}), given as '
            "text or as an attached .json file."
        )
    try:
        schema = json.loads(text)
    except (ValueError, RecursionError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
        raise UserError(f"That schema is not valid JSON{where}.") from None
    document = schema
    if isinstance(schema, dict) and is_wrapper(schema):
        # The API's {"name": ..., "schema": {...}, "strict": ...} wrapper, kept as given.
        name = schema.get("name", "answer")
        if not isinstance(name, str) or not SCHEMA_NAME.match(name):
            raise UserError("The schema's name must be 1-64 letters, digits, '_' or '-'.")
        schema = schema["schema"]
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise UserError(
            'The schema must describe a JSON object: its top level needs "type": "object".'
        )
    _check_schema(schema)
    try:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    except (ValueError, RecursionError):
        raise UserError("That schema cannot be stored (it nests too deeply).") from None


def _check_schema(schema: dict[str, Any]) -> None:
    try:
        check_schema(schema)
    except SchemaError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "the top level"
        raise UserError(
            f"That is not a valid JSON schema: at {_shorten(path)}: {_shorten(exc.message, 160)}"
        ) from None
    except Exception as exc:  # a schema odd enough to break the checker itself
        raise UserError(
            "That is not a JSON schema I can check.", log_detail=type(exc).__name__
        ) from None


def _seed(spec: FieldSpec, text: str, context: ValueContext) -> int | Inherit:
    if text.lower() in ("off", "none"):
        return INHERIT
    if context.backend != "chat":
        raise UserError(
            "This bot uses the Responses API (SWITCHBOARD_BACKEND=responses), which has no seed "
            "parameter, so a seed would do nothing here. Seeds work on the chat backend "
            "(SWITCHBOARD_BACKEND=chat, Chat Completions)."
        )
    value = _integer(spec, text)
    if not _SEED_RANGE[0] <= value <= _SEED_RANGE[1]:
        raise UserError("seed must fit in 64 bits.")
    return value


def _voice(spec: FieldSpec, text: str, _: ValueContext) -> str:
    value = text.lower()
    if value not in VOICES:
        raise UserError(f"Unknown voice `{_shorten(text)}`. Voices: {spec.values}.")
    return value


def _switch(spec: FieldSpec, text: str, _: ValueContext) -> bool:
    word = text.lower()
    if word in _ON:
        return True
    if word in _OFF:
        return False
    raise UserError(f"{spec.name} is {spec.values} (or `default`), not `{_shorten(text)}`.")


def _choice(*choices: str) -> Any:
    def parse(spec: FieldSpec, text: str, _: ValueContext) -> str:
        word = text.lower()
        if word not in choices:
            raise UserError(f"{spec.name} is {spec.values} (or `default`), not `{_shorten(text)}`.")
        return word

    return parse


def _max_tokens(spec: FieldSpec, text: str, _: ValueContext) -> int | Inherit:
    if text.lower() in ("off", "none"):
        return INHERIT
    value = _integer(spec, text.replace(",", "").replace("_", ""))
    if not MIN_OUTPUT_TOKENS <= value <= MAX_OUTPUT_TOKENS:
        raise UserError(f"max_output_tokens must be {spec.values}.")
    return value


def _budget(spec: FieldSpec, text: str, _: ValueContext) -> float | Inherit:
    if text.lower() in ("off", "none"):
        return INHERIT
    value = _number(spec, text.lstrip("$").replace(",", ""))
    if not 0 < value < MAX_BUDGET_USD:
        raise UserError("A budget must be a positive number of dollars (or `off`).")
    return value


def _number(spec: FieldSpec, text: str) -> float:
    try:
        value = float(text)
    except (ValueError, OverflowError):
        raise UserError(f"{spec.name} must be {spec.values}, not `{_shorten(text)}`.") from None
    if not math.isfinite(value):
        raise UserError(f"{spec.name} must be {spec.values}, not `{_shorten(text)}`.")
    return value


def _integer(spec: FieldSpec, text: str) -> int:
    if len(text) > 30:
        raise UserError(f"{spec.name} must be {spec.values}.")
    try:
        return int(text)
    except ValueError:
        raise UserError(f"{spec.name} must be {spec.values}, not `{_shorten(text)}`.") from None


# --------------------------------------------------------------------------- fields

FIELDS: Final[dict[str, FieldSpec]] = {
    spec.name: spec
    for spec in (
        FieldSpec("name", "name", f"a display name, up to {MAX_NAME_CHARS} characters", _name),
        FieldSpec(
            "instructions", "instructions", "the system instructions, as free text", _instructions
        ),
        FieldSpec(
            "model", "model", "a model id this OpenAI endpoint serves (GET /v1/models)", _model
        ),
        FieldSpec("temperature", "temperature", "a number from 0 to 2", _temperature),
        FieldSpec(
            "tools",
            "tools",
            "`none`, or any of " + ", ".join(HOSTED_TOOLS) + ", functions:NAME,NAME",
            _tools,
        ),
        FieldSpec(
            "builtins",
            "builtins",
            "`on` or `off` (the safe built-in functions current_time and calculate)",
            _switch,
        ),
        FieldSpec(
            "format",
            "format",
            "`text`, `json`, or a JSON object schema (text or a .json file)",
            _format,
        ),
        FieldSpec("seed", "seed", "a whole number, or `off` (chat backend only)", _seed),
        FieldSpec("voice", "voice", ", ".join(VOICES), _voice),
        FieldSpec("voice_replies", "voice_replies", "`on` or `off`", _switch),
        FieldSpec("reply_mode", "reply_mode", "`mention` or `all`", _choice("mention", "all")),
        FieldSpec(
            "vision_detail",
            "vision_detail",
            "`low`, `high` or `auto`",
            _choice("low", "high", "auto"),
        ),
        FieldSpec(
            "max_output_tokens",
            "max_output_tokens",
            f"a whole number from {MIN_OUTPUT_TOKENS} to {MAX_OUTPUT_TOKENS:,}, or `off`",
            _max_tokens,
        ),
        FieldSpec(
            "budget",
            "budget_monthly_usd",
            "monthly US dollars, e.g. 25 or 12.50, or `off`",
            _budget,
        ),
        FieldSpec("moderation", "moderation", "`on` or `off`", _switch),
    )
}
ALIASES: Final = {
    "max_tokens": "max_output_tokens",
    "detail": "vision_detail",
    "mode": "reply_mode",
    "replies": "voice_replies",
    "budget_monthly_usd": "budget",
    "system": "instructions",
    "prompt": "instructions",
}
FIELD_NAMES: Final = ", ".join(FIELDS)


# --------------------------------------------------------------------------- display


def display(spec: FieldSpec, value: Any, *, voice_default: str = "") -> str:
    """A stored value as admins would type it."""
    if value is None or isinstance(value, Inherit):
        return "model default" if spec.name in ("temperature", "max_output_tokens") else "none"
    if spec.name in ("voice_replies", "moderation", "builtins"):
        return "on" if _truthy(value) else "off"
    if spec.name == "tools":
        return ", ".join(_as_list(value)) or "none"
    if spec.name == "budget":
        try:
            return f"${float(value):,.2f} a month"
        except (TypeError, ValueError):
            return str(value)
    if spec.name == "voice" and not value:
        return f"{voice_default} (the deployment's voice)" if voice_default else "default"
    if spec.name == "format" and isinstance(value, str) and value not in ("text", "json"):
        return f"JSON schema ({len(value):,} characters)"
    if spec.name == "instructions" and isinstance(value, str):
        return _shorten(value, 300)
    return str(value)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in _ON
    return bool(value)


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    return [str(value)]


# --------------------------------------------------------------------------- models


def check_model(model: str, served: dict[str, str | None], today: dt.date) -> str:
    """Refuse a model the endpoint does not list (naming the close ones) or one past its
    `shutdown_date`; return a warning ("" if none) for one with a shutdown date ahead."""
    live = sorted(m for m, date in served.items() if not _is_past(date, today))
    if model not in served:
        close = difflib.get_close_matches(model, live, n=5, cutoff=0.6)
        hint = (
            f"Close names: {', '.join(close)}."
            if close
            else f"Models here include: {', '.join(live[:10]) or 'none'}."
        )
        raise UserError(f"This OpenAI endpoint has no model `{_shorten(model, 60)}`. {hint}")
    date = served[model]
    if not date:
        return ""
    if _is_past(date, today):
        close = difflib.get_close_matches(model, live, n=5, cutoff=0.5)
        hint = f" Choose another, e.g. {', '.join(close)}." if close else " Choose another."
        raise UserError(f"`{model}` was shut down on {date[:10]}, so it cannot answer.{hint}")
    return (
        f"Note: `{model}` shuts down on {date[:10]}; choose a successor before then "
        "(after that date this channel's answers fail)."
    )


def _is_past(date: str | None, today: dt.date) -> bool:
    if not date:
        return False
    try:
        return dt.date.fromisoformat(date[:10]) < today
    except ValueError:
        return False
