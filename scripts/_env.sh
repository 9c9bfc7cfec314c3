# Shared by scripts/run and scripts/test: find uv, the tool that installs from uv.lock, or install
# it once into a private directory. The system's Python is never modified: on Debian and Ubuntu
# it is "externally managed" (PEP 668), and `pip install --user` or `--break-system-packages`
# would fail or damage it. uv itself creates .venv (no python3-venv or pip needed).
export UV_PYTHON_DOWNLOADS=never
if command -v uv >/dev/null 2>&1; then
  UV=(uv)
elif command -v python3 >/dev/null 2>&1 && python3 -m uv --version >/dev/null 2>&1; then
  UV=(python3 -m uv)
else
  if ! command -v python3 >/dev/null 2>&1; then
    echo "scripts: Python 3.11 or newer is needed (no python3 on PATH)" >&2
    exit 2
  fi
  uv_home="${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/uv"
  if ! "$uv_home/bin/uv" --version >/dev/null 2>&1; then
    echo "scripts: uv not found; installing it once into $uv_home (your Python is left as it is)" >&2
    python3 "$(dirname "${BASH_SOURCE[0]}")/_bootstrap_uv.py" "$uv_home" || exit 1
  fi
  UV=("$uv_home/bin/uv")
fi
