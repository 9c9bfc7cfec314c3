# Slim, non-root image running `python -m bot`. Storage lives in the /data volume.
# The base image is pinned by digest (refresh it with
# `docker buildx imagetools inspect python:3.11-slim`), uv by version and wheel hashes.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7
FROM ${PYTHON_IMAGE} AS build
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
COPY deploy/docker/uv-requirements.txt /tmp/uv-requirements.txt
RUN pip install --no-cache-dir --require-hashes -r /tmp/uv-requirements.txt
WORKDIR /app
# The dependency layer depends on the lock file alone: editing code or docs does not rebuild it.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-install-project --no-editable
COPY README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY storage ./storage
RUN uv sync --locked --no-editable

FROM ${PYTHON_IMAGE}
RUN useradd --create-home --uid 10001 switchboard && mkdir /data && chown switchboard /data
COPY --from=build /app/.venv /app/.venv
# PYTHONSAFEPATH and -P: the working directory (the data volume) is never on sys.path;
# SWITCHBOARD_ENV_FILE empty: no .env is read from it (use `docker run --env-file`).
# Nothing is written outside /data, so the root filesystem can be read-only:
# `docker run --read-only --tmpfs /tmp -v switchboard:/data ...` (README, "Security").
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONSAFEPATH=1 \
    SWITCHBOARD_ENV_FILE= \
    DATABASE_URL=sqlite:////data/switchboard.db \
    SWITCHBOARD_HTTP_PORT=8080
VOLUME /data
WORKDIR /data
USER switchboard
# 8080: /healthz, /readyz, /metrics. 3000: Slack's HTTP events (SLACK_PORT), when used.
EXPOSE 8080 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SWITCHBOARD_HTTP_PORT', '8080'), timeout=4)"]
# SIGTERM starts a graceful stop: give it longer than SWITCHBOARD_SHUTDOWN_GRACE (30 s), e.g.
# `docker stop -t 45` or compose's `stop_grace_period: 45s`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-P", "-m", "bot"]
