"""The tool registry, plugin discovery (a real installed-package layout on sys.path), the
built-in arithmetic and time tools, and answer formats."""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.backends.answer_format import answer_format
from bot.core.errors import UserError
from bot.core.types import ConversationKey
from bot.tools import BUILTIN_TOOLS, Tool, ToolContext, ToolError, build_registry, function_names
from bot.tools.arithmetic import MAX_CHARS, calculate, format_number
from bot.tools.builtins import current_time

CONTEXT = ToolContext(ConversationKey("test", "W1", "C1"), "U1", db=None)  # type: ignore[arg-type]


# -- arithmetic ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("2 ** 10", "1024"),
        ("2 ^ 10", "1024"),
        ("7 / 2", "3.5"),
        ("7 // 2", "3"),
        ("-7 % 3", "2"),
        ("sqrt(16) + abs(-2)", "6"),
        ("round(pi, 4)", "3.1416"),
        ("max(1, 5, 3) - min(4, 2)", "3"),
        ("0.1 + 0.2", "0.3"),
        ("10 ** 20", "100000000000000000000"),
        ("2 ** -1", "0.5"),
    ],
)
def test_arithmetic(expression: str, expected: str) -> None:
    assert format_number(calculate(expression)) == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("", "empty"),
        ("1 / 0", "division by zero"),
        ("2 ** 100000", "exponents are limited"),
        ("9 ** 9999", "too large"),
        ("10.0 ** 400", "too large"),
        ("__import__('os').system('true')", "not allowed"),
        ("open('/etc/passwd')", "not allowed"),
        ("(1).__class__", "not allowed"),
        ("x + 1", "unknown name 'x'"),
        ("'a' * 3", "only numbers"),
        ("[1, 2]", "not allowed"),
        ("1 +", "cannot parse"),
        ("sqrt(-1)", "math error"),
        ("1 if 1 else 2", "not allowed"),
        ("1" + "+1" * (MAX_CHARS // 2), "longer than"),
        ("(-8) ** 0.5", "not a real number"),
        ("True + 1", "only numbers"),
    ],
)
def test_arithmetic_refusals(expression: str, reason: str) -> None:
    with pytest.raises(ToolError) as caught:
        calculate(expression)
    assert reason in caught.value.message


@given(st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6))
def test_arithmetic_matches_python_on_integers(a: int, b: int) -> None:
    assert calculate(f"({a}) * ({b}) - ({b})") == a * b - b


@given(st.text(max_size=60))
def test_arithmetic_never_raises_anything_but_tool_error(text: str) -> None:
    with contextlib.suppress(ToolError):
        calculate(text)


# -- time ---------------------------------------------------------------------------------------


async def test_current_time_in_a_zone() -> None:
    out = await current_time({"timezone": "Asia/Tokyo"}, CONTEXT)
    stamp = out.split(" ")[0]
    assert datetime.fromisoformat(stamp).utcoffset().total_seconds() == 9 * 3600
    assert out.endswith(", Asia/Tokyo)")
    assert "+00:00" in await current_time({}, CONTEXT)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "", "Europe/"])
async def test_current_time_refuses_unknown_zones(zone: str) -> None:
    if not zone:  # empty means UTC
        assert "UTC" in await current_time({"timezone": zone}, CONTEXT)
        return
    with pytest.raises(ToolError, match="unknown time zone"):
        await current_time({"timezone": zone}, CONTEXT)


# -- registry and plugins -----------------------------------------------------------------------


def test_builtins_are_valid_and_named() -> None:
    registry = build_registry(plugins=False)
    assert registry.names == {"current_time", "calculate", "channel_usage"}
    assert all(not tool.problems() for tool in BUILTIN_TOOLS)


def test_function_names_of_a_tools_setting() -> None:
    tools = ("web_search", "functions:calculate, current_time", "functions:calculate,x")
    assert function_names(tools) == ["calculate", "current_time", "x"]


def test_malformed_tools_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    async def run(args: dict, context: ToolContext) -> str:
        return ""

    registry = build_registry(plugins=False)
    with caplog.at_level(logging.ERROR):
        assert not registry.add(Tool("bad name!", "", {"type": "object"}, run))
        assert not registry.add(Tool("ok", "", {"type": "array"}, run))
        assert not registry.add(Tool("ok", "", {"type": "object", "required": 3}, run))
        assert not registry.add(Tool("calculate", "again", {"type": "object"}, run))
    assert "already taken" in caplog.text and "not a valid JSON schema" in caplog.text
    assert len(registry) == 3


PLUGIN = """
from bot.tools import Tool

async def shout(args, context):
    return args["text"].upper()

SHOUT = Tool("shout", "Upper-case a text.", {
    "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
}, shout)

def more():
    async def echo(args, context):
        return "echo"
    return [Tool("echo_tool", "Echo.", {"type": "object"}, echo)]

def wrong():
    return 42
"""


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Iterator[Path]:
    """An installed package on sys.path, the way pip lays one out: the module and a
    ``*.dist-info`` directory whose ``entry_points.txt`` declares the tools."""
    (tmp_path / "sb_plugin_demo.py").write_text(PLUGIN)
    info = tmp_path / "sb_plugin_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sb-plugin-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """
            [switchboard.tools]
            shout = sb_plugin_demo:SHOUT
            more = sb_plugin_demo:more
            wrong = sb_plugin_demo:wrong
            missing = sb_plugin_not_installed:TOOL
            clash = sb_plugin_demo:SHOUT
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("sb_plugin_demo", None)


async def test_plugins_are_discovered_and_broken_ones_skipped(
    plugin_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        registry = build_registry()
    assert {"shout", "echo_tool"} <= registry.names
    assert "sb_plugin_not_installed" in caplog.text  # the missing module, logged
    assert "returned int" in caplog.text  # the factory returning something else
    assert "already taken" in caplog.text  # the second registration of "shout"
    shout = registry.get("shout")
    assert shout is not None and await shout.run({"text": "hi"}, CONTEXT) == "HI"


# -- answer formats -----------------------------------------------------------------------------


def test_answer_formats() -> None:
    assert answer_format("text") is None and answer_format("") is None
    assert answer_format("json").responses_text() == {"format": {"type": "json_object"}}
    bare = answer_format('{"type": "object"}')
    assert bare.chat_response_format() == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": False},
    }
    for bad in ("[1]", '{"type": 5}', '{"name": "a b", "schema": {}}'):
        with pytest.raises(UserError):
            answer_format(bad)
    fmt = answer_format("json")
    assert fmt.instructions("Be brief.") == "Be brief.\n\nAnswer with one JSON object only."
    assert fmt.instructions("Reply in json.") == "Reply in json."
    assert fmt.finish("[1, 2]") == ("```json\n[\n  1,\n  2\n]\n```", "")
