"""Install uv into a private directory, leaving the Python that runs this untouched.

    python3 scripts/_bootstrap_uv.py DIR        # then DIR/bin/uv exists

Used by scripts/_env.sh when neither `uv` nor `python3 -m uv` is available, as on a stock
Debian 13 or Ubuntu 24.04, whose Python is "externally managed" (PEP 668: pip refuses to install
into it, and `--break-system-packages` is not ours to use) and often has neither pip nor venv.

1. With pip (if this Python has it): `pip install --target DIR`, which installs into DIR only
   (PEP 668 allows it) and follows the user's pip configuration (index, proxy, certificates).
2. Without pip: the uv wheel for this platform straight from the package index
   (`PIP_INDEX_URL`, default https://pypi.org/simple; PEP 691 JSON or PEP 503 HTML), checked
   against the index's sha256, and its `uv` executable unpacked into DIR/bin.

Standard library only. Exit status 0 when DIR/bin/uv runs, else 1 with one line on stderr.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from html.parser import HTMLParser
from pathlib import Path

REQUIREMENT = "uv>=0.13,<0.14"
LOWEST, BELOW = (0, 13), (0, 14)
DEFAULT_INDEX = "https://pypi.org/simple"
TIMEOUT = 60
WHEEL = re.compile(r"^uv-(\d+(?:\.\d+)*)-py3-none-(.+)\.whl$")


class BootstrapError(Exception):
    """Why uv could not be installed: one line for the user."""


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python3 scripts/_bootstrap_uv.py DIR", file=sys.stderr)
        return 2
    target = Path(argv[0])
    try:
        if _has_pip():
            _with_pip(target)
        else:
            _from_index(target)
        _check(target)
    except BootstrapError as exc:
        print(f"scripts: could not install uv: {exc}", file=sys.stderr)
        return 1
    return 0


def executable(target: Path) -> Path:
    return target / "bin" / ("uv.exe" if os.name == "nt" else "uv")


def _has_pip() -> bool:
    probe = [sys.executable, "-m", "pip", "--version"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def _with_pip(target: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-warn-script-location", "--only-binary", ":all:", "--no-deps", "--upgrade",
        "--target", str(target), REQUIREMENT,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise BootstrapError(f"pip install --target {target}: {last}")


# -- without pip ------------------------------------------------------------------------------


def _from_index(target: Path) -> None:
    index = os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX
    files = _project_files(index.rstrip("/") + "/uv/")
    name, url, digest = _best_wheel(files, _platform_matches())
    with tempfile.TemporaryDirectory() as tmp:
        wheel = Path(tmp) / name
        _download(url, wheel, digest)
        _unpack(wheel, target)


def _project_files(url: str) -> list[tuple[str, str, str]]:
    """(filename, absolute url, sha256) of every file of the project page."""
    accept = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            kind = response.headers.get("Content-Type", "")
            body = response.read().decode("utf-8", "replace")
            base = response.geturl()
    except OSError as exc:
        raise BootstrapError(f"cannot read the package index at {url} ({exc})") from None
    if "json" in kind:
        entries = [
            (f["filename"], f["url"], (f.get("hashes") or {}).get("sha256", ""))
            for f in json.loads(body).get("files", [])
        ]
    else:
        links = _Links()
        links.feed(body)
        entries = []
        for href in links.hrefs:
            path, _, fragment = href.partition("#")
            name = urllib.parse.unquote(path.rsplit("/", 1)[-1])
            digest = fragment[len("sha256=") :] if fragment.startswith("sha256=") else ""
            entries.append((name, path, digest))
    return [(name, urllib.parse.urljoin(base, link), digest) for name, link, digest in entries]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def _platform_matches() -> tuple[str, ...]:
    """Substrings a wheel's platform tag must all contain to run here."""
    system, machine = platform.system(), platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if system == "Linux":
        libc = "manylinux" if platform.libc_ver()[0] == "glibc" else "musllinux"
        return (libc, arch)
    if system == "Darwin":
        return ("macosx", "arm64" if arch == "aarch64" else arch)
    raise BootstrapError(
        f"no uv wheel is chosen automatically for {system} {machine}: install uv yourself "
        "(https://docs.astral.sh/uv/getting-started/installation/)"
    )


def _best_wheel(files: list[tuple[str, str, str]], needs: tuple[str, ...]) -> tuple[str, str, str]:
    best: tuple[tuple[int, ...], tuple[str, str, str]] | None = None
    for name, url, digest in files:
        found = WHEEL.match(name)
        if found is None or not digest:
            continue
        version = tuple(int(part) for part in found.group(1).split("."))
        tags = found.group(2)
        if not (LOWEST <= version[:2] < BELOW) or not all(n in tags for n in needs):
            continue
        if best is None or version > best[0]:
            best = (version, (name, url, digest))
    if best is None:
        raise BootstrapError(f"the package index has no {REQUIREMENT} wheel for {needs}")
    return best[1]


def _download(url: str, into: Path, sha256: str) -> None:
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response, into.open("wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:
        raise BootstrapError(f"download of {url} failed ({exc})") from None
    if digest.hexdigest() != sha256.lower():
        raise BootstrapError(f"{into.name} does not match the index's sha256: not installed")


def _unpack(wheel: Path, target: Path) -> None:
    wanted = re.compile(r"^uv-[^/]+\.data/scripts/(uv|uv\.exe)$")
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if wanted.match(m)]
        if not members:
            raise BootstrapError(f"{wheel.name} holds no uv executable")
        binary = executable(target)
        binary.parent.mkdir(parents=True, exist_ok=True)
        partial = binary.with_name(binary.name + ".partial")
        with archive.open(members[0]) as source, partial.open("wb") as out:
            shutil.copyfileobj(source, out)
    partial.chmod(0o755)
    partial.replace(binary)


def _check(target: Path) -> None:
    binary = executable(target)
    try:
        done = subprocess.run([str(binary), "--version"], capture_output=True, check=False)
    except OSError as exc:
        raise BootstrapError(f"{binary} does not run ({exc})") from None
    if done.returncode != 0:
        raise BootstrapError(f"{binary} --version failed")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
