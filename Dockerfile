# Slim, non-root image running `python -m bot`. Storage lives in the /data volume.
FROM python:3.11-slim AS build
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir "uv>=0.13,<0.14"
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-install-project --no-editable
COPY bot ./bot
COPY adapters ./adapters
COPY storage ./storage
RUN uv sync --locked --no-editable

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 switchboard && mkdir /data && chown switchboard /data
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite:////data/switchboard.db
VOLUME /data
WORKDIR /data
USER switchboard
ENTRYPOINT ["python", "-m", "bot"]
