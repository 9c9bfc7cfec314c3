"""Deployment configuration: environment variables and `.env`, per `shared/design/contract.md`.

This module holds the **one defaults table** for models. No other module names a model: every
model is configurable per deployment (`SWITCHBOARD_*_MODEL`) and per channel (assistant config).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ModelRole = Literal[
    "chat", "image", "transcribe", "speech", "embedding", "moderation", "translation"
]

# The one defaults table. Checked against GET /v1/models and the deprecations page on 2026-11-24
# (shared/facts/openai.md): every id here is live today and has no shutdown date. `python -m bot
# doctor` warns when one approaches its shutdown date. Speech: every /audio/speech model shuts
# down 2027-01-06; their successor speaks through the Realtime API (bot/backends/speech.py
# picks the engine by the model). Transcription: gpt-transcribe is the one model that outlives
# 2027-02-26.
MODEL_DEFAULTS: dict[ModelRole, str] = {
    "chat": "gpt-6.1-terra",
    "image": "gpt-image-2.6-sunburst",
    "transcribe": "gpt-transcribe",
    "speech": "gpt-realtime-2.1-mini",
    "embedding": "text-embedding-3-small",
    "moderation": "omni-moderation-latest",
    # Only for SWITCHBOARD_TRANSLATION=endpoint: /audio/translations takes this one model and
    # shuts down 2027-02-26 (the default fallback translates with the chat model instead).
    "translation": "whisper-1",
}

# Context windows (total tokens: input + output) next to the defaults, for the models above and
# their close relatives; longest prefix wins, so a dated snapshot ("gpt-4o-2024-08-06") finds its
# family. Checked on 2026-11-24 against the models' pages (gpt-6.1-*: 1,050,000, of which at most
# 922,000 input). `SWITCHBOARD_CONTEXT_WINDOWS` overrides or extends it ("model=tokens,...",
# `*=tokens` for every model not listed). A model found nowhere gets DEFAULT_CONTEXT_WINDOW:
# small on purpose, since compatible servers (Ollama, vLLM) often run with small windows.
CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-6.1-terra": 1_050_000,
    "gpt-6.1-sol": 1_050_000,
    "gpt-6.2-sol": 1_050_000,
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
}
DEFAULT_CONTEXT_WINDOW = 32_000
MIN_CONTEXT_WINDOW = 2_000

SHIPPED_PRICES = Path(__file__).parents[1] / "spend" / "prices.toml"


class ConfigError(Exception):
    """Configuration is missing or wrong; the message is one line, safe to print."""


class Settings(BaseSettings):
    """Every setting the bot reads. Secrets are `SecretStr`: their repr and str are masked."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    openai_api_key: SecretStr | None = Field(default=None, alias="OPENAI_API_KEY")
    openai_base_url: str = Field(default="https://api.openai.com/v1", alias="OPENAI_BASE_URL")
    backend: Literal["responses", "chat"] = Field(default="responses", alias="SWITCHBOARD_BACKEND")

    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_port: int = Field(default=3000, alias="SLACK_PORT")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")

    discord_token: SecretStr | None = Field(default=None, alias="DISCORD_TOKEN")
    discord_api_url: str = Field(default="https://discord.com/api/v10", alias="DISCORD_API_URL")
    discord_gateway_url: str = Field(
        default="wss://gateway.discord.gg/", alias="DISCORD_GATEWAY_URL"
    )

    database_url: str = Field(default="sqlite:///data/switchboard.db", alias="DATABASE_URL")
    admins: str = Field(default="", alias="SWITCHBOARD_ADMINS")

    chat_model: str = Field(default=MODEL_DEFAULTS["chat"], alias="SWITCHBOARD_CHAT_MODEL")
    image_model: str = Field(default=MODEL_DEFAULTS["image"], alias="SWITCHBOARD_IMAGE_MODEL")
    transcribe_model: str = Field(
        default=MODEL_DEFAULTS["transcribe"], alias="SWITCHBOARD_TRANSCRIBE_MODEL"
    )
    speech_model: str = Field(default=MODEL_DEFAULTS["speech"], alias="SWITCHBOARD_SPEECH_MODEL")
    embedding_model: str = Field(
        default=MODEL_DEFAULTS["embedding"], alias="SWITCHBOARD_EMBEDDING_MODEL"
    )
    moderation_model: str = Field(
        default=MODEL_DEFAULTS["moderation"], alias="SWITCHBOARD_MODERATION_MODEL"
    )

    budget_user_daily_usd: float | None = Field(
        default=None, alias="SWITCHBOARD_BUDGET_USER_DAILY_USD"
    )
    budget_channel_monthly_usd: float | None = Field(
        default=None, alias="SWITCHBOARD_BUDGET_CHANNEL_MONTHLY_USD"
    )
    budget_workspace_monthly_usd: float | None = Field(
        default=None, alias="SWITCHBOARD_BUDGET_WORKSPACE_MONTHLY_USD"
    )
    rate_limit_per_minute: int | None = Field(
        default=None, alias="SWITCHBOARD_RATE_LIMIT_PER_MINUTE"
    )
    prices_path: Path | None = Field(default=None, alias="SWITCHBOARD_PRICES")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    log_format: Literal["text", "json"] = Field(default="text", alias="LOG_FORMAT")
    http_port: int | None = Field(default=None, ge=0, le=65535, alias="SWITCHBOARD_HTTP_PORT")

    # Knobs beyond the contract (documented in the README).
    instructions: str = Field(
        default="You are a helpful assistant in a team chat. Answer concisely.",
        alias="SWITCHBOARD_INSTRUCTIONS",
    )
    max_concurrency: int = Field(default=32, ge=1, alias="SWITCHBOARD_MAX_CONCURRENCY")
    # Chat backend: an optional cap on the history sent (estimated tokens); the budget itself
    # comes from the model's context window (`context_window`).
    history_tokens: int | None = Field(default=None, ge=256, alias="SWITCHBOARD_HISTORY_TOKENS")
    # "model=tokens,model=tokens,*=tokens": context windows beyond (or instead of) the table.
    context_windows: str = Field(default="", alias="SWITCHBOARD_CONTEXT_WINDOWS")
    # Earlier messages read from the platform when the bot joins a thread or is replied to.
    context_messages: int = Field(default=50, ge=0, le=1000, alias="SWITCHBOARD_CONTEXT_MESSAGES")
    context_tokens: int = Field(default=8_000, ge=0, alias="SWITCHBOARD_CONTEXT_TOKENS")
    max_input_chars: int = Field(default=200_000, ge=1, alias="SWITCHBOARD_MAX_INPUT_CHARS")
    openai_timeout: float = Field(default=120.0, gt=0, alias="SWITCHBOARD_OPENAI_TIMEOUT")
    openai_max_retries: int = Field(default=3, ge=0, alias="SWITCHBOARD_OPENAI_MAX_RETRIES")
    openai_retry_max_wait: float = Field(
        default=20.0, ge=0, alias="SWITCHBOARD_OPENAI_RETRY_MAX_WAIT"
    )
    # Reliability (issue #8): the fault policy and back-pressure, see README "Reliability".
    openai_retry_budget: float = Field(default=60.0, gt=0, alias="SWITCHBOARD_OPENAI_RETRY_BUDGET")
    breaker_failures: int = Field(default=5, ge=0, alias="SWITCHBOARD_BREAKER_FAILURES")
    breaker_cooldown: float = Field(default=15.0, gt=0, alias="SWITCHBOARD_BREAKER_COOLDOWN")
    breaker_max_cooldown: float = Field(
        default=300.0, gt=0, alias="SWITCHBOARD_BREAKER_MAX_COOLDOWN"
    )
    busy_queued_per_conversation: int = Field(
        default=5, ge=1, alias="SWITCHBOARD_BUSY_QUEUED_PER_CONVERSATION"
    )
    max_queued_per_conversation: int = Field(
        default=25, ge=1, alias="SWITCHBOARD_MAX_QUEUED_PER_CONVERSATION"
    )
    busy_queued_total: int = Field(default=200, ge=1, alias="SWITCHBOARD_BUSY_QUEUED_TOTAL")
    max_queued_total: int = Field(default=1000, ge=1, alias="SWITCHBOARD_MAX_QUEUED_TOTAL")
    delivery_retries: int = Field(default=3, ge=0, alias="SWITCHBOARD_DELIVERY_RETRIES")
    delivery_retry_wait: float = Field(default=1.0, ge=0, alias="SWITCHBOARD_DELIVERY_RETRY_WAIT")
    shutdown_grace: float = Field(default=30.0, ge=0, alias="SWITCHBOARD_SHUTDOWN_GRACE")
    # An answer running (or a message waiting for its turn) longer than this is stopped.
    run_timeout: float = Field(default=600.0, gt=0, alias="SWITCHBOARD_RUN_TIMEOUT_SECONDS")
    moderation: bool = Field(default=False, alias="SWITCHBOARD_MODERATION")
    # Several processes on one PostgreSQL database: one not heard from for this long is taken
    # for dead and its work taken over (README "Scaling out").
    replica_timeout: float = Field(default=20.0, ge=1, le=50, alias="SWITCHBOARD_REPLICA_TIMEOUT")
    discord_shards: str = Field(default="", alias="SWITCHBOARD_DISCORD_SHARDS")
    # This process's shards when the gateway's shards are spread over several processes
    # (e.g. "0,1" or "2-3"); empty = every shard.
    discord_shard_ids: str = Field(default="", alias="SWITCHBOARD_DISCORD_SHARD_IDS")
    discord_max_attachment_mb: float = Field(
        default=25.0, gt=0, alias="SWITCHBOARD_DISCORD_MAX_ATTACHMENT_MB"
    )

    # Media (issue #5).
    max_images: int = Field(default=10, ge=0, alias="SWITCHBOARD_MAX_IMAGES")
    image_max_side: int = Field(default=2048, ge=256, alias="SWITCHBOARD_IMAGE_MAX_SIDE")
    image_max_mb: float = Field(default=20.0, gt=0, alias="SWITCHBOARD_IMAGE_MAX_MB")
    audio_max_mb: float = Field(default=100.0, gt=0, alias="SWITCHBOARD_AUDIO_MAX_MB")
    max_image_count: int = Field(default=4, ge=1, le=10, alias="SWITCHBOARD_MAX_IMAGE_COUNT")
    # `/translate` calls /audio/translations (shut down 2027-02-26) only with "endpoint", an
    # operator's explicit choice; "fallback" transcribes, then the chat model translates.
    translation: Literal["endpoint", "fallback"] = Field(
        default="fallback", alias="SWITCHBOARD_TRANSLATION"
    )
    translation_model: str = Field(
        default=MODEL_DEFAULTS["translation"], alias="SWITCHBOARD_TRANSLATION_MODEL"
    )
    # auto: by the model (gpt-realtime* -> Realtime API, others -> /audio/speech); realtime:
    # always the Realtime API; audio_speech: the old name of auto (see bot/backends/speech.py).
    speech_engine: Literal["auto", "realtime", "audio_speech"] = Field(
        default="auto", alias="SWITCHBOARD_SPEECH_ENGINE"
    )
    speech_format: Literal["mp3", "opus", "aac", "flac", "wav"] = Field(
        default="mp3", alias="SWITCHBOARD_SPEECH_FORMAT"
    )
    speech_voice: str = Field(default="alloy", alias="SWITCHBOARD_SPEECH_VOICE")

    # Tools (issue #6).
    tool_timeout_seconds: float = Field(
        default=20.0, gt=0, alias="SWITCHBOARD_TOOL_TIMEOUT_SECONDS"
    )
    max_tool_rounds: int = Field(default=5, ge=1, le=50, alias="SWITCHBOARD_MAX_TOOL_ROUNDS")
    document_max_mb: float = Field(default=50.0, gt=0, alias="SWITCHBOARD_DOCUMENT_MAX_MB")
    background: bool = Field(default=True, alias="SWITCHBOARD_BACKGROUND")

    # Assistant admin (issue #6): how long `/assistant knowledge add` waits for OpenAI to
    # process the files, and how often it asks.
    knowledge_wait: float = Field(default=120.0, gt=0, alias="SWITCHBOARD_KNOWLEDGE_WAIT")
    knowledge_poll_interval: float = Field(
        default=1.0, gt=0, alias="SWITCHBOARD_KNOWLEDGE_POLL_INTERVAL"
    )

    @field_validator(
        "budget_user_daily_usd",
        "budget_channel_monthly_usd",
        "budget_workspace_monthly_usd",
        "rate_limit_per_minute",
        "prices_path",
        "history_tokens",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value in ("", "0", 0) else value

    @field_validator("context_windows")
    @classmethod
    def _windows_readable(cls, value: str) -> str:
        parse_context_windows(value)  # raises ValueError with the offending entry
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def admin_ids(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.admins.split(",") if part.strip())

    @property
    def models(self) -> dict[ModelRole, str]:
        """The models this deployment uses (the translation model only when its endpoint is)."""
        models: dict[ModelRole, str] = {
            "chat": self.chat_model,
            "image": self.image_model,
            "transcribe": self.transcribe_model,
            "speech": self.speech_model,
            "embedding": self.embedding_model,
            "moderation": self.moderation_model,
        }
        if self.translation == "endpoint":
            models["translation"] = self.translation_model
        return models

    def context_window(self, model: str) -> int:
        """The context window of `model` in tokens: `SWITCHBOARD_CONTEXT_WINDOWS` first, then
        the table (longest matching prefix), then its `*` entry or `DEFAULT_CONTEXT_WINDOW`."""
        overrides = parse_context_windows(self.context_windows)
        for table in (overrides, CONTEXT_WINDOWS):
            found = _longest_prefix(table, model)
            if found is not None:
                return found
        return overrides.get("*", DEFAULT_CONTEXT_WINDOW)

    @property
    def uses_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    @property
    def state_dir(self) -> Path:
        """Where small local files go (the Discord command hash): the SQLite file's folder, or
        `data/` with PostgreSQL."""
        return Path("data") if self.uses_postgres else self.database_path.parent

    @property
    def database_path(self) -> Path:
        """The SQLite file named by `DATABASE_URL` (`sqlite:///relative` or `sqlite:////absolute`)."""
        prefix = "sqlite:///"
        if not self.database_url.startswith(prefix):
            raise ConfigError(
                f"DATABASE_URL must start with {prefix} or postgresql:// (got a different scheme)"
            )
        path = self.database_url[len(prefix) :]
        if not path:
            raise ConfigError("DATABASE_URL names no file")
        return Path(path)

    def secrets(self) -> list[str]:
        """Every configured secret value, for log redaction."""
        values = (
            self.openai_api_key,
            self.slack_bot_token,
            self.slack_app_token,
            self.slack_signing_secret,
            self.discord_token,
        )
        found = [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]
        password = _url_password(self.database_url)
        return [*found, password] if password else found

    def require_openai(self) -> str:
        if self.openai_api_key is None or not self.openai_api_key.get_secret_value().strip():
            raise ConfigError("OPENAI_API_KEY is not set: set it in the environment or in .env")
        return self.openai_api_key.get_secret_value()


def _url_password(url: str) -> str | None:
    """The password of a `scheme://user:password@host/…` URL (`DATABASE_URL`), for redaction."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def parse_context_windows(value: str) -> dict[str, int]:
    """`"gpt-x=128000, local-llama=8192, *=16000"` → {model: tokens}; ValueError naming the
    entry that is not `model=tokens` with tokens of at least MIN_CONTEXT_WINDOW."""
    windows: dict[str, int] = {}
    for entry in value.split(","):
        if not entry.strip():
            continue
        model, sep, tokens = entry.partition("=")
        model, tokens = model.strip(), tokens.strip().replace("_", "")
        if not sep or not model or not tokens.isdigit() or int(tokens) < MIN_CONTEXT_WINDOW:
            raise ValueError(
                f"{entry.strip()!r} is not model=tokens (tokens at least {MIN_CONTEXT_WINDOW})"
            )
        windows[model] = int(tokens)
    return windows


def _longest_prefix(table: dict[str, int], model: str) -> int | None:
    matches = [name for name in table if name != "*" and model.startswith(name)]
    return table[max(matches, key=len)] if matches else None


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and `.env`); a validation problem becomes one `ConfigError` line."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ())) or "configuration"
        raise ConfigError(f"{field}: {first.get('msg', 'invalid value')}") from None


# -- unknown variables --------------------------------------------------------------------------

# A variable with one of these prefixes is meant for Switchboard (or for the SDKs it drives): one
# that nothing reads is a misspelling until proven otherwise.
WATCHED_PREFIXES = ("SWITCHBOARD_", "SLACK_", "DISCORD_", "OPENAI_")

# Read by the OpenAI SDK itself from the process environment (never from `.env`).
SDK_VARIABLES = frozenset({"OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_LOG"})

# Read by an adapter's own settings (`adapters.slack.files.FileLimits`; a test keeps this in step).
ADAPTER_VARIABLES = frozenset({"SWITCHBOARD_SLACK_MAX_FILE_MB", "SWITCHBOARD_SLACK_MAX_AUDIO_MB"})

# Names other tools use for the same thing, which string similarity would not find.
OTHER_TOOLS_NAMES = {
    "OPENAI_API_BASE": "OPENAI_BASE_URL",
    "OPENAI_API_BASE_URL": "OPENAI_BASE_URL",
    "OPENAI_API_HOST": "OPENAI_BASE_URL",
    "OPENAI_ENDPOINT": "OPENAI_BASE_URL",
    "OPENAI_MODEL": "SWITCHBOARD_CHAT_MODEL",
    "OPENAI_CHAT_MODEL": "SWITCHBOARD_CHAT_MODEL",
    "OPENAI_TOKEN": "OPENAI_API_KEY",
    "OPENAI_KEY": "OPENAI_API_KEY",
    "SLACK_TOKEN": "SLACK_BOT_TOKEN",
    "SLACK_API_TOKEN": "SLACK_BOT_TOKEN",
    "SLACK_XAPP_TOKEN": "SLACK_APP_TOKEN",
    "DISCORD_BOT_TOKEN": "DISCORD_TOKEN",
    "DISCORD_API_TOKEN": "DISCORD_TOKEN",
}

_DOTENV_NAME = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def settings_variables() -> frozenset[str]:
    """The variable names `Settings` reads (its aliases): the source of `.env.example`."""
    return frozenset(
        field.alias for field in Settings.model_fields.values() if field.alias is not None
    )


def known_variables() -> frozenset[str]:
    """Every watched variable something in Switchboard reads."""
    return settings_variables() | ADAPTER_VARIABLES | SDK_VARIABLES


def dotenv_names(path: Path) -> list[str]:
    """The variable names assigned in a `.env` file (none when it is missing or unreadable)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [m.group(1) for line in text.splitlines() if (m := _DOTENV_NAME.match(line))]


def closest_variable(name: str, known: Iterable[str]) -> str | None:
    """The known variable `name` was most likely meant to be, or None when nothing is close.
    Names are compared without their prefix, so a long shared `SWITCHBOARD_` does not make
    every pair look alike, and a setting under the wrong prefix is found too."""
    upper = name.upper()
    if upper in OTHER_TOOLS_NAMES:
        return OTHER_TOOLS_NAMES[upper]
    by_stem: dict[str, str] = {}
    for candidate in sorted(known):
        by_stem.setdefault(_stem(candidate), candidate)
    stem = _stem(upper)
    found = difflib.get_close_matches(stem, list(by_stem), n=1, cutoff=0.75)
    if found:
        return by_stem[found[0]]
    # A longer or shorter spelling of one name (`SWITCHBOARD_MAX_CONCURRENCY_LIMIT`).
    longer = [s for s in by_stem if len(s) >= 6 and (stem.startswith(s) or s.startswith(stem))]
    return by_stem[max(longer, key=len)] if longer and len(stem) >= 6 else None


def _stem(name: str) -> str:
    for prefix in WATCHED_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def unknown_variable_warnings(
    environ: Mapping[str, str], dotenv: Path | None = Path(".env")
) -> list[str]:
    """One warning per watched variable (environment or `.env`) that nothing reads, naming the
    closest known name; and one per OpenAI SDK variable found only in `.env`, which the SDK
    does not read. Names are compared as `Settings` does: ignoring case."""
    known = known_variables()
    sources: dict[str, str] = {}
    for name in dotenv_names(dotenv) if dotenv is not None else []:
        sources.setdefault(name.upper(), ".env")
    for name in environ:
        sources[name.upper()] = "the environment"
    warnings = []
    for name, source in sorted(sources.items()):
        if not name.startswith(WATCHED_PREFIXES):
            continue
        if name in SDK_VARIABLES and source == ".env":
            warnings.append(
                f"{name} in .env is ignored: the OpenAI library reads it from the environment only"
            )
            continue
        if name in known:
            continue
        guess = closest_variable(name, known)
        hint = f"did you mean {guess}?" if guess else "no setting has a similar name"
        warnings.append(f"{name} (in {source}) is not a Switchboard setting and is ignored: {hint}")
    return warnings
