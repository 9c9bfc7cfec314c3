"""scripts/_env.sh on a machine without uv (issue 18, point 3): a stock Debian 13 / Ubuntu 24.04
Python is "externally managed" (PEP 668) and often has neither pip nor venv. The scripts must
then install uv into a private directory, never into that Python.

Simulated with a Python that has no uv and no pip (`venv --without-pip`) first on PATH, and a
loopback package index serving a uv wheel made from the uv binary at hand (no network)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
VERSION = "0.13.9"

pytestmark = pytest.mark.slow


def uv_binary() -> Path | None:
    """The uv executable running this test suite (uv run sets UV), or one on PATH."""
    for candidate in (os.environ.get("UV"), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    found = subprocess.run(
        ["python3", "-c", "import uv; print(uv.find_uv_bin())"],
        capture_output=True,
        text=True,
        check=False,
    )
    path = Path(found.stdout.strip()) if found.returncode == 0 else None
    return path if path is not None and path.is_file() else None


def platform_tag() -> str:
    machine = platform.machine().lower()
    if platform.system() != "Linux" or machine not in ("x86_64", "aarch64"):
        pytest.skip(f"the wheel made here is tagged for Linux only, not {platform.system()}")
    libc = "manylinux_2_17" if platform.libc_ver()[0] == "glibc" else "musllinux_1_1"
    return f"{libc}_{machine}"


@pytest.fixture(scope="module")
def uv_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A uv wheel as PyPI has them: the binary under uv-X.data/scripts/, with the metadata pip
    needs to install it."""
    binary = uv_binary()
    if binary is None:
        pytest.skip("no uv binary here to make a wheel of")
    name = f"uv-{VERSION}-py3-none-{platform_tag()}.whl"
    wheel = tmp_path_factory.mktemp("wheels") / name
    info = f"uv-{VERSION}.dist-info"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        member = zipfile.ZipInfo(f"uv-{VERSION}.data/scripts/uv")
        member.external_attr = 0o100755 << 16  # a regular file, executable
        archive.writestr(member, binary.read_bytes())
        archive.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: uv\nVersion: {VERSION}\n"
        )
        archive.writestr(
            f"{info}/WHEEL",
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: py3-none-{platform_tag()}\n",
        )
        archive.writestr(f"{info}/RECORD", "")
    return wheel


class FakeIndex:
    """A PEP 691 simple index with one project, uv, and the wheel; counts downloads."""

    def __init__(self, wheel: Path) -> None:
        self.wheel = wheel
        self.downloads = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/simple/uv/", self._project)
        app.router.add_get("/files/{name}", self._file)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _project(self, request: web.Request) -> web.Response:
        digest = hashlib.sha256(self.wheel.read_bytes()).hexdigest()
        older = f"uv-0.12.0-py3-none-{platform_tag()}.whl"
        body = {
            "meta": {"api-version": "1.0"},
            "name": "uv",
            "files": [
                {"filename": older, "url": f"/files/{older}", "hashes": {"sha256": "0" * 64}},
                {
                    "filename": self.wheel.name,
                    "url": f"/files/{self.wheel.name}",
                    "hashes": {"sha256": digest},
                },
            ],
        }
        return web.json_response(body, content_type="application/vnd.pypi.simple.v1+json")

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["name"] != self.wheel.name:
            raise web.HTTPNotFound()
        self.downloads += 1
        return web.FileResponse(self.wheel)


@pytest.fixture
async def index(uv_wheel: Path) -> AsyncIterator[FakeIndex]:
    server = FakeIndex(uv_wheel)
    await server.start()
    yield server
    await server.close()


def bare_python(where: Path, *, with_pip: bool) -> Path:
    """A directory holding a `python3` that has no uv (and, without pip, no pip either)."""
    base = getattr(sys, "_base_executable", sys.executable)
    command = [base, "-m", "venv", str(where)]
    if not with_pip:
        command.insert(3, "--without-pip")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot make a venv here: {done.stderr.strip()[-200:]}")
    return where / "bin"


def clean_env(bin_dir: Path, home: Path, **extra: str) -> dict[str, str]:
    system_path = ":".join(p for p in ("/usr/bin", "/bin") if Path(p).is_dir())
    env = {"PATH": f"{bin_dir}:{system_path}", "HOME": str(home), "LANG": "C.UTF-8"}
    env.update(extra)
    return env


async def pip_list(python: Path) -> str:
    command = [python, "-m", "pip", "list", "--format=freeze"]
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, check=True
    )
    return done.stdout


async def find_uv(env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        'source scripts/_env.sh && "${UV[@]}" --version',
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_without_uv_or_pip_uv_is_installed_privately_once(
    index: FakeIndex, tmp_path: Path
) -> None:
    bin_dir = bare_python(tmp_path / "py", with_pip=False)
    for module in ("uv", "pip"):
        probe = await asyncio.to_thread(
            subprocess.run, [bin_dir / "python3", "-m", module, "--version"], check=False
        )
        assert probe.returncode != 0, f"the bare Python has {module}"
    env = clean_env(bin_dir, tmp_path / "home", PIP_INDEX_URL=f"{index.url}/simple")
    if shutil.which("uv", path=env["PATH"]):
        pytest.skip("uv is installed system-wide here")

    code, out, err = await find_uv(env)
    assert code == 0, err
    assert out.startswith(f"uv {VERSION}")
    private = tmp_path / "home" / ".cache" / "switchboard" / "uv"
    assert err.strip() == (
        f"scripts: uv not found; installing it once into {private} (your Python is left as it is)"
    )
    assert (private / "bin" / "uv").is_file() and index.downloads == 1

    code, out, err = await find_uv(env)  # the second time it is there already
    assert (code, err) == (0, "") and out.startswith(f"uv {VERSION}")
    assert index.downloads == 1


async def test_a_wheel_that_does_not_match_its_hash_is_refused(
    index: FakeIndex, tmp_path: Path, uv_wheel: Path
) -> None:
    bin_dir = bare_python(tmp_path / "py", with_pip=False)
    data = await asyncio.to_thread(uv_wheel.read_bytes)
    tampered = tmp_path / uv_wheel.name
    await asyncio.to_thread(tampered.write_bytes, data + b"x")
    index.wheel = tampered
    real_digest = hashlib.sha256(data).hexdigest()

    async def stale_hash(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "meta": {"api-version": "1.0"},
                "files": [
                    {
                        "filename": uv_wheel.name,
                        "url": f"/files/{uv_wheel.name}",
                        "hashes": {"sha256": real_digest},
                    }
                ],
            },
            content_type="application/vnd.pypi.simple.v1+json",
        )

    index._project = stale_hash  # type: ignore[method-assign]
    await index.close()
    await index.start()
    env = clean_env(bin_dir, tmp_path / "home", PIP_INDEX_URL=f"{index.url}/simple")
    code, _, err = await find_uv(env)
    assert code == 1
    assert "does not match the index's sha256" in err
    assert not (tmp_path / "home" / ".cache" / "switchboard" / "uv" / "bin" / "uv").exists()


async def test_with_pip_uv_goes_into_the_private_directory_only(
    uv_wheel: Path, tmp_path: Path
) -> None:
    bin_dir = bare_python(tmp_path / "py", with_pip=True)
    python = bin_dir / "python3"
    before = await pip_list(python)
    env = clean_env(
        bin_dir,
        tmp_path / "home",
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(uv_wheel.parent),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    code, out, err = await find_uv(env)
    assert code == 0, err
    assert out.startswith(f"uv {VERSION}")
    private = tmp_path / "home" / ".cache" / "switchboard" / "uv"
    assert (private / "bin" / "uv").is_file()
    after = await pip_list(python)
    assert after == before  # the Python that ran pip got nothing
