"""`python -m bot doctor` as a real subprocess lists the function tools, plugins included (a
package installed on PYTHONPATH), warns about a broken plugin and about channels enabling a
function no tool provides."""

from __future__ import annotations

import os
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.types import ConversationKey
from storage.configs import save_overrides
from storage.connect import open_database
from testing.fakes.openai_fake import FakeOpenAI
from tests.test_cli import bot_env, run_bot
from tests.test_tools_pure import PLUGIN


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def install_plugin(where: Path) -> None:
    where.mkdir()
    (where / "sb_plugin_demo.py").write_text(PLUGIN)
    info = where / "sb_plugin_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sb-plugin-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """
            [switchboard.tools]
            shout = sb_plugin_demo:SHOUT
            missing = sb_plugin_not_installed:TOOL
            """
        )
    )


async def test_doctor_lists_tools_and_warns_about_broken_plugins(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    install_plugin(tmp_path / "plugins")
    db = await open_database(tmp_path / "bot.db")
    key = ConversationKey("slack", "T1", "C1")
    await save_overrides(db, key, {"tools": ["functions:shout,nope"]}, updated_by="U1")
    await db.close()
    env = bot_env(fake, tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(tmp_path / "plugins")])
    code, out, err = await run_bot("doctor", env=env, cwd=tmp_path)
    assert code == 1, out + err
    assert "ok    function tools: calculate, channel_usage, current_time, shout" in out
    assert "WARN  plugin missing (sb_plugin_not_installed:TOOL) could not be loaded" in out
    assert "WARN  channel slack:T1:C1 enables unknown function tools: nope" in out
