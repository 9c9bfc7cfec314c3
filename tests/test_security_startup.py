"""Issue 19, item 12 (start-up): no code from the working directory (the container's data
volume) runs, `.env` is read only from the configured path, and an unexpected start-up error is
one redacted line. `python -m bot …` as a real subprocess."""

from __future__ import annotations

import textwrap
from pathlib import Path

from testing.fakes.openai_fake import FakeOpenAI
from tests.test_cli import ROOT, bot_env, fake, run_bot  # noqa: F401 (fixture)

PLANTED = """
from pathlib import Path
Path(__file__).with_name("PWNED").write_text("code from the data volume ran")
from bot.tools import Tool

async def run(args, context):
    return "pwned"

TOOL = Tool("planted", "planted", {"type": "object"}, run)
"""


def installed_plugin(site: Path) -> None:
    """An installed plugin whose entry point names a module it does not ship: Python would
    look for it on sys.path, the working directory included."""
    site.mkdir()
    info = site / "sb_needs_module-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sb-needs-module\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """
            [switchboard.tools]
            planted = sb_planted_module:TOOL
            """
        )
    )


async def test_no_code_from_the_working_directory_runs(fake: FakeOpenAI, tmp_path: Path) -> None:  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    (data / "sb_planted_module.py").write_text(PLANTED)
    site = tmp_path / "site"
    installed_plugin(site)
    env = bot_env(fake, tmp_path, PYTHONPATH=f"{ROOT}:{site}")
    _, out, err = await run_bot("doctor", env=env, cwd=data)
    assert not (data / "PWNED").exists(), out + err
    assert "sb_planted_module" in out + err  # the plugin could not be loaded, and it says so


async def test_env_file_only_from_the_configured_path(fake: FakeOpenAI, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / ".env").write_text(f"OPENAI_BASE_URL={fake.base_url}\nLOG_LEVEL=NOPE\n")
    env = bot_env(fake, tmp_path, SWITCHBOARD_ENV_FILE="")
    env.pop("LOG_LEVEL")
    code, _, err = await run_bot("manifest", "slack", env=env, cwd=tmp_path)
    assert code == 0, err  # the .env in the working directory was not read
    env["SWITCHBOARD_ENV_FILE"] = str(tmp_path / ".env")
    code, _, err = await run_bot("manifest", "slack", env=env, cwd=tmp_path)
    assert code == 2 and "log_level" in err.lower()  # read from where it was configured


async def test_an_unexpected_start_up_error_is_one_redacted_line(
    fake: FakeOpenAI,  # noqa: F811
    tmp_path: Path,
) -> None:
    token = "xoxb-fake-not-a-real-token-abcdef"
    out_file = tmp_path / f"missing-{token}" / "usage.csv"
    (tmp_path / "bot.db").touch()
    env = bot_env(fake, tmp_path)
    code, out, err = await run_bot(
        "usage", "export", "--since", "2026-01-01", "-o", str(out_file), env=env, cwd=tmp_path
    )
    assert code == 1
    assert token not in err and token not in out
    assert "Traceback" not in err
    assert err.strip().startswith("switchboard: unexpected error: FileNotFoundError")
    assert len(err.strip().splitlines()) == 1


def test_the_image_is_pinned_and_runs_nothing_from_its_data_volume() -> None:
    """The Dockerfile (no Docker here to build it): every base image pinned by digest, uv by
    hashes, Python told never to put the working directory (the volume) on sys.path, no .env
    read from it."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in dockerfile.splitlines()]
    images = [line.split("=", 1)[1] for line in lines if line.startswith("ARG PYTHON_IMAGE=")]
    assert len(images) == 1 and "@sha256:" in images[0] and len(images[0].split(":")[-1]) == 64
    assert all(
        line.split()[1].startswith("${PYTHON_IMAGE}") for line in lines if line.startswith("FROM ")
    )
    assert "--require-hashes" in dockerfile
    pins = (ROOT / "deploy/docker/uv-requirements.txt").read_text()
    assert pins.count("--hash=sha256:") >= 2 and "uv==" in pins
    assert 'ENTRYPOINT ["python", "-P", "-m", "bot"]' in dockerfile
    assert "PYTHONSAFEPATH=1" in dockerfile and "SWITCHBOARD_ENV_FILE= " in dockerfile
