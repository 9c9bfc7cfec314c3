"""The `/assistant` parser, pure: examples and properties (any text → a command or a
`UserError`, never another exception; values that parse round-trip through their display)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.backends.answer_format import answer_format
from bot.core.errors import UserError
from bot.features.assistant import args as A

CONTEXT = A.ValueContext(frozenset({"weather", "lookup_order"}), "chat")
TODAY = dt.date(2026, 11, 24)


def test_commands() -> None:
    assert A.parse_command("") == A.Show()
    assert A.parse_command("  SHOW ") == A.Show()
    assert A.parse_command("set model gpt-6.1-sol") == A.SetField(A.FIELDS["model"], "gpt-6.1-sol")
    assert A.parse_command("set workspace temperature 1") == A.SetField(
        A.FIELDS["temperature"], "1", workspace=True
    )
    assert A.parse_command("set --workspace voice-replies on").workspace  # type: ignore[union-attr]
    assert A.parse_command("set instructions Line one.\nLine two.") == A.SetField(
        A.FIELDS["instructions"], "Line one.\nLine two."
    )
    assert A.parse_command("reset") == A.Reset()
    assert A.parse_command("reset workspace") == A.Reset(workspace=True)
    assert A.parse_command("history 3") == A.History(3)
    assert A.parse_command("knowledge") == A.KnowledgeList()
    assert A.parse_command("knowledge add") == A.KnowledgeAdd()
    assert A.parse_command('knowledge remove "my notes.md"') == A.KnowledgeRemove("my notes.md")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bogus", "I don't know `/assistant bogus`"),
        ("set", "Say which field"),
        ("set colour red", "There is no field `colour`"),
        ("reset model", "set FIELD default"),
        ("history 500", "1 to 50"),
        ("knowledge remove", "Say which file"),
        ("knowledge zap", "add (with files), list, or remove"),
        ("help", "Fields: name, instructions, model"),
    ],
)
def test_command_errors(text: str, expected: str) -> None:
    with pytest.raises(UserError) as caught:
        A.parse_command(text)
    assert expected in caught.value.message


def test_field_names_and_aliases() -> None:
    assert A.field_spec("Voice-Replies").attr == "voice_replies"
    assert A.field_spec("voicereplies").attr == "voice_replies"
    assert A.field_spec("max_tokens").attr == "max_output_tokens"
    assert A.field_spec("budget").attr == "budget_monthly_usd"


@pytest.mark.parametrize(
    ("field", "raw", "value"),
    [
        ("name", '"Scout"', "Scout"),
        ("instructions", "“Be brief.”", "Be brief."),
        ("temperature", "0", 0.0),
        ("temperature", "2", 2.0),
        ("tools", "none", ()),
        (
            "tools",
            "code_interpreter,file_search functions:weather,lookup_order web_search",
            ("code_interpreter", "file_search", "web_search", "functions:weather,lookup_order"),
        ),
        ("format", "JSON", "json"),
        ("format", '{"type":"object","properties":{"a":{"type":"integer"}}}', None),
        ("format", '{"name":"city","strict":true,"schema":{"type":"object"}}', None),
        ("seed", "-3", -3),
        ("seed", "off", A.INHERIT),
        ("voice", "Nova", "nova"),
        ("voice_replies", "yes", True),
        ("moderation", "off", False),
        ("reply_mode", "ALL", "all"),
        ("vision_detail", "low", "low"),
        ("max_output_tokens", "4,096", 4096),
        ("budget", "$12.50", 12.5),
        ("budget", "off", A.INHERIT),
        ("model", "default", A.INHERIT),
    ],
)
def test_values(field: str, raw: str, value: object) -> None:
    parsed = A.parse_value(A.FIELDS[field], raw, CONTEXT)
    if value is None:
        document = json.loads(parsed)
        assert document.get("type", document.get("schema", {}).get("type")) == "object"
        assert answer_format(parsed) is not None  # the backends accept what is stored
    else:
        assert parsed == value


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("temperature", "2.5", "from 0 to 2"),
        ("temperature", "nan", "a number from 0 to 2"),
        ("tools", "functions:delete_everything", "Unknown function `delete_everything`"),
        ("format", "[1, 2]", "JSON schema of an object"),
        ("format", '{"type": "object", "properties": 3}', "not a valid JSON schema"),
        ("format", '{"type": "object"', "not valid JSON"),
        ("max_output_tokens", "5", "from 16 to"),
        ("budget", "-1", "positive number"),
        ("name", "a" * 81, "at most 80"),
        ("model", "gpt 6", "not a model id"),
        ("voice_replies", "maybe", "`on` or `off`"),
        ("moderation", "", "Give a value for moderation"),
    ],
)
def test_value_errors(field: str, raw: str, expected: str) -> None:
    with pytest.raises(UserError) as caught:
        A.parse_value(A.FIELDS[field], raw, CONTEXT)
    assert expected in caught.value.message


def test_seed_on_the_responses_backend_is_refused_plainly() -> None:
    with pytest.raises(UserError) as caught:
        A.parse_value(A.FIELDS["seed"], "42", A.ValueContext(backend="responses"))
    assert "Responses API" in caught.value.message and "no seed" in caught.value.message


def test_check_model() -> None:
    served = {"gpt-6.1-sol": None, "gpt-6.1-terra": None, "gpt-5": "2026-12-11", "o1": "2026-10-23"}
    assert A.check_model("gpt-6.1-sol", served, TODAY) == ""
    assert "shuts down on 2026-12-11" in A.check_model("gpt-5", served, TODAY)
    with pytest.raises(UserError, match=r"Close names: gpt-6\.1-sol"):
        A.check_model("gpt-6.1-sal", served, TODAY)
    with pytest.raises(UserError, match="was shut down on 2026-10-23"):
        A.check_model("o1", served, TODAY)


# ----------------------------------------------------------------------------- properties

WORDS = st.sampled_from(
    [
        "set",
        "reset",
        "history",
        "knowledge",
        "add",
        "remove",
        "list",
        "workspace",
        "--workspace",
        *A.FIELDS,
        "default",
        "on",
        "off",
        "1e999",
        "nan",
        "-0",
        '{"type":"object"}',
        "[[[[",
        "functions:",
        "“",
        "\x00",
        "9" * 40,
    ]
)
TEXTS = st.one_of(st.text(max_size=200), st.lists(WORDS, max_size=6).map(" ".join))


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_any_command_text_parses_or_raises_a_user_error(text: str) -> None:
    try:
        command = A.parse_command(text)
    except UserError as exc:
        assert exc.message
        return
    if isinstance(command, A.SetField):
        try:
            value = A.parse_value(command.field, command.value, CONTEXT)
        except UserError:
            return
        assert isinstance(A.display(command.field, value), str)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(A.FIELDS.values())), st.one_of(st.text(max_size=300), WORDS))
def test_any_value_parses_or_raises_a_user_error(spec: A.FieldSpec, raw: str) -> None:
    for backend in ("responses", "chat"):
        try:
            value = A.parse_value(spec, raw, A.ValueContext(CONTEXT.function_names, backend))
        except UserError:
            continue
        json.dumps(list(value) if isinstance(value, tuple) else repr(value))


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=20,
    )
)
def test_any_json_as_a_format_parses_or_raises_a_user_error(document: object) -> None:
    text = json.dumps(document)
    try:
        stored = A.parse_value(A.FIELDS["format"], text, CONTEXT)
    except UserError:
        return
    if stored not in ("text", "json"):
        schema = json.loads(stored)
        assert schema.get("type", schema.get("schema", {}).get("type")) == "object"


def test_deeply_nested_schema_is_a_user_error() -> None:
    with pytest.raises(UserError):
        A.parse_value(A.FIELDS["format"], "{" + '"a":{' * 5000 + "}" * 5001, CONTEXT)


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=40),
    st.dictionaries(st.text(max_size=12), st.none() | st.text(max_size=12), max_size=6),
)
def test_check_model_never_raises_anything_else(model: str, served: dict[str, str | None]) -> None:
    with contextlib.suppress(UserError):
        A.check_model(model, served, TODAY)
