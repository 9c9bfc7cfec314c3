"""Deployment configuration: environment variables and `.env`, per `shared/design/contract.md`.

This module holds the **one defaults table** for models. No other module names a model: every
model is configurable per deployment (`SWITCHBOARD_*_MODEL`) and per channel (assistant config).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ModelRole = Literal[
    "chat", "image", "transcribe", "speech", "embedding", "moderation", "translation"
]

# The one defaults table. Checked against GET /v1/models and the deprecations page on 2026-11-24
# (shared/facts/openai.md): every id here is live today. `python -m bot doctor` warns when one
# approaches its shutdown date. The speech models all shut down 2027-01-06 (no successor on
# /audio/speech yet), so that entry must change before then.
MODEL_DEFAULTS: dict[ModelRole, str] = {
    "chat": "gpt-6.1-terra",
    "image": "gpt-image-2.6-sunburst",
    "transcribe": "gpt-transcribe",
    "speech": "gpt-4o-mini-tts",
    "embedding": "text-embedding-3-small",
    "moderation": "omni-moderation-latest",
    # Only for SWITCHBOARD_TRANSLATION=endpoint: /audio/translations takes this one model and
    # shuts down 2027-02-26 (the default fallback translates with the chat model instead).
    "translation": "whisper-1",
}

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
    history_tokens: int = Field(default=16_000, ge=256, alias="SWITCHBOARD_HISTORY_TOKENS")
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
    # Retention (issue 19): message history, answer steps and moderation flags are deleted after
    # this many days (0 = kept); handled events' ids after 7 days, checked every hour.
    retention_days: float = Field(default=90, ge=0, alias="SWITCHBOARD_RETENTION_DAYS")
    # Fairness (issue 19): one user's messages and paid commands waiting or running, in all.
    max_queued_per_user: int = Field(default=20, ge=1, alias="SWITCHBOARD_MAX_QUEUED_PER_USER")
    delivery_retries: int = Field(default=3, ge=0, alias="SWITCHBOARD_DELIVERY_RETRIES")
    delivery_retry_wait: float = Field(default=1.0, ge=0, alias="SWITCHBOARD_DELIVERY_RETRY_WAIT")
    shutdown_grace: float = Field(default=30.0, ge=0, alias="SWITCHBOARD_SHUTDOWN_GRACE")
    # An answer running (or a message waiting for its turn) longer than this is stopped.
    run_timeout: float = Field(default=600.0, gt=0, alias="SWITCHBOARD_RUN_TIMEOUT_SECONDS")
    moderation: bool = Field(default=False, alias="SWITCHBOARD_MODERATION")
    discord_shards: str = Field(default="", alias="SWITCHBOARD_DISCORD_SHARDS")
    discord_max_attachment_mb: float = Field(
        default=25.0, gt=0, alias="SWITCHBOARD_DISCORD_MAX_ATTACHMENT_MB"
    )

    # Media (issue #5).
    max_images: int = Field(default=10, ge=0, alias="SWITCHBOARD_MAX_IMAGES")
    image_max_side: int = Field(default=2048, ge=256, alias="SWITCHBOARD_IMAGE_MAX_SIDE")
    image_max_mb: float = Field(default=20.0, gt=0, alias="SWITCHBOARD_IMAGE_MAX_MB")
    audio_max_mb: float = Field(default=100.0, gt=0, alias="SWITCHBOARD_AUDIO_MAX_MB")
    max_image_count: int = Field(default=4, ge=1, le=10, alias="SWITCHBOARD_MAX_IMAGE_COUNT")
    image_variations_endpoint: bool = Field(
        default=False, alias="SWITCHBOARD_IMAGE_VARIATIONS_ENDPOINT"
    )
    translation: Literal["endpoint", "fallback"] = Field(
        default="fallback", alias="SWITCHBOARD_TRANSLATION"
    )
    translation_model: str = Field(
        default=MODEL_DEFAULTS["translation"], alias="SWITCHBOARD_TRANSLATION_MODEL"
    )
    speech_engine: Literal["audio_speech"] = Field(
        default="audio_speech", alias="SWITCHBOARD_SPEECH_ENGINE"
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
    # Worker processes function tools run in (issue 19: off the event loop, hard timeout).
    tool_workers: int = Field(default=2, ge=1, le=32, alias="SWITCHBOARD_TOOL_WORKERS")
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
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value in ("", "0", 0) else value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def admin_ids(self) -> frozenset[str]:
        """The user ids listed in `SWITCHBOARD_ADMINS` (workspace prefixes `T123:` left off)."""
        return frozenset(
            part.strip().rpartition(":")[2] for part in self.admins.split(",") if part.strip()
        )

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

    @property
    def database_path(self) -> Path:
        """The SQLite file named by `DATABASE_URL` (`sqlite:///relative` or `sqlite:////absolute`)."""
        prefix = "sqlite:///"
        if not self.database_url.startswith(prefix):
            raise ConfigError(f"DATABASE_URL must start with {prefix} (got a different scheme)")
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
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]

    def require_openai(self) -> str:
        if self.openai_api_key is None or not self.openai_api_key.get_secret_value().strip():
            raise ConfigError("OPENAI_API_KEY is not set: set it in the environment or in .env")
        return self.openai_api_key.get_secret_value()


ENV_FILE_VARIABLE = "SWITCHBOARD_ENV_FILE"


def env_file() -> str | None:
    """The one `.env` file read: `SWITCHBOARD_ENV_FILE` (empty: none), else `.env` in the
    working directory. The container image sets it empty: its working directory is the data
    volume, and nothing written there may change the configuration."""
    import os

    path = os.environ.get(ENV_FILE_VARIABLE)
    if path is None:
        return ".env"
    return path.strip() or None


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and the `.env` file, `env_file`); a validation problem becomes one
    `ConfigError` line."""
    from pydantic import ValidationError

    try:
        return Settings(_env_file=env_file(), **overrides)  # type: ignore[arg-type, call-arg]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ())) or "configuration"
        raise ConfigError(f"{field}: {first.get('msg', 'invalid value')}") from None
