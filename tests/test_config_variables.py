"""Which environment variables Switchboard reads: misspellings found, and `.env.example` kept
complete (issue 18)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapters.slack.files import FileLimits
from bot.core.config import (
    ADAPTER_VARIABLES,
    closest_variable,
    dotenv_names,
    known_variables,
    settings_variables,
    unknown_variable_warnings,
)

ROOT = Path(__file__).resolve().parent.parent


def test_the_adapters_own_variables_are_known() -> None:
    aliases = {f.alias for f in FileLimits.model_fields.values()}
    assert aliases == set(ADAPTER_VARIABLES)


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("SWITCHBOARD_BACKENDS", "SWITCHBOARD_BACKEND"),
        ("OPENAI_API_BASE", "OPENAI_BASE_URL"),
        ("switchboard_chatmodel", "SWITCHBOARD_CHAT_MODEL"),
        ("SLACK_SIGNING", "SLACK_SIGNING_SECRET"),
        ("DISCORD_BOT_TOKEN", "DISCORD_TOKEN"),
        ("SWITCHBOARD_LOG_LEVEL", "LOG_LEVEL"),
        ("SWITCHBOARD_DATABASE_URL", "DATABASE_URL"),
        ("OPENAI_BACKEND", "SWITCHBOARD_BACKEND"),
        ("SWITCHBOARD_MAX_CONCURRENCY_LIMIT", "SWITCHBOARD_MAX_CONCURRENCY"),
        ("SWITCHBOARD_FROBNICATE", None),
        ("SLACK_WEBHOOK_URL", None),
    ],
)
def test_the_closest_known_name(typed: str, meant: str | None) -> None:
    assert closest_variable(typed, known_variables()) == meant


def test_warnings_come_from_the_environment_and_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# comment\nOPENAI_API_KEY=sk-x\n export SWITCHBOARD_BACKENDS = chat\n"
        "OPENAI_ORG_ID=org-1\nHOME_PAGE=x\n"
    )
    environ = {"OPENAI_API_KEY": "sk-x", "DISCORD_TOKN": "t", "PATH": "/bin", "OPENAI_LOG": "info"}
    warnings = unknown_variable_warnings(environ, dotenv)
    assert warnings == [
        "DISCORD_TOKN (in the environment) is not a Switchboard setting and is ignored: "
        "did you mean DISCORD_TOKEN?",
        "OPENAI_ORG_ID in .env is ignored: the OpenAI library reads it from the environment only",
        "SWITCHBOARD_BACKENDS (in .env) is not a Switchboard setting and is ignored: "
        "did you mean SWITCHBOARD_BACKEND?",
    ]
    assert unknown_variable_warnings({}, tmp_path / "missing.env") == []


def test_env_example_lists_every_variable_commented() -> None:
    """`.env.example` names every variable Switchboard reads (Settings and the adapters' own),
    each commented out (so copying it changes nothing) with a comment above it."""
    text = (ROOT / ".env.example").read_text()
    lines = text.splitlines()
    listed = []
    for number, line in enumerate(lines):
        found = re.match(r"^# ?([A-Z][A-Z0-9_]+)=", line)
        if found is None:
            assert not re.match(r"^\s*[A-Z][A-Z0-9_]*=", line), f"not commented out: {line}"
            continue
        listed.append(found.group(1))
        above = lines[number - 1] if number else ""
        described = above.startswith("# ") and not re.match(r"^# ?[A-Z][A-Z0-9_]+=", above)
        assert described, f"{found.group(1)} has no comment saying what it is"
    expected = settings_variables() | ADAPTER_VARIABLES
    assert sorted(set(listed)) == sorted(expected)
    assert len(listed) == len(set(listed)), "a variable is listed twice"
    assert dotenv_names(ROOT / ".env.example") == []  # nothing set by copying it
