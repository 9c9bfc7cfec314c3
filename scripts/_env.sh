# Shared by scripts/run and scripts/test: find (or install) uv, the tool that installs from uv.lock.
export UV_PYTHON_DOWNLOADS=never
if command -v uv >/dev/null 2>&1; then
  UV=(uv)
else
  if ! python3 -m uv --version >/dev/null 2>&1; then
    python3 -m pip install --quiet --user "uv>=0.13,<0.14" 2>/dev/null \
      || python3 -m pip install --quiet "uv>=0.13,<0.14"
  fi
  UV=(python3 -m uv)
fi
