"""Pure logic: key policy, cost arithmetic, history trimming, retry classification, config."""

from decimal import Decimal
from pathlib import Path

import httpx2
import openai
import pytest

from bot.backends.context import estimate_tokens
from bot.backends.errors import explain_error
from bot.backends.history import fit
from bot.backends.retry import is_retryable, retry_after_seconds
from bot.core.config import MODEL_DEFAULTS, ConfigError, load_settings
from bot.core.errors import UserError
from bot.core.types import ConversationKey, Usage
from bot.spend.pricing import PriceTable
from storage.messages import HistoryMessage


def test_conversation_key_policy() -> None:
    thread = ConversationKey("slack", "T1", "C1", "1700000000.0001")
    assert str(thread) == "slack:T1:C1:1700000000.0001"
    assert thread.channel_key == ConversationKey("slack", "T1", "C1", "")
    assert str(thread.channel_key) == "slack:T1:C1:-"
    assert thread != thread.channel_key


def test_cost_of_tokens_with_cache() -> None:
    prices = PriceTable.load()
    model = MODEL_DEFAULTS["chat"]
    price = prices.models[model]
    usage = Usage(model=model, input_tokens=1_000_000, cached_tokens=400_000, output_tokens=200_000)
    expected = (
        600_000 * price.input + 400_000 * price.cached_input + 200_000 * price.output
    ) / Decimal(1_000_000)
    assert prices.cost(usage) == expected


def test_cost_of_audio_minutes() -> None:
    prices = PriceTable.load()
    model = MODEL_DEFAULTS["transcribe"]
    cost = prices.cost(Usage(model=model, audio_seconds=120))
    assert cost == 2 * prices.models[model].audio_minute


def test_unknown_model_costs_none_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    prices = PriceTable.load()
    assert prices.cost(Usage(model="no-such-model", input_tokens=10)) is None
    assert prices.cost(Usage(model="no-such-model", input_tokens=10)) is None
    assert sum("no-such-model" in r.getMessage() for r in caplog.records) == 1


def test_price_table_override_and_bad_file(tmp_path: Path) -> None:
    good = tmp_path / "prices.toml"
    good.write_text('[models."m1"]\ninput = 3\noutput = 6\n')
    table = PriceTable.load(good)
    assert table.cost(Usage(model="m1", input_tokens=1_000_000, output_tokens=1_000_000)) == 9
    bad = tmp_path / "bad.toml"
    bad.write_text('[models."m1"]\ninptu = 3\n')
    with pytest.raises(ConfigError, match="unknown keys"):
        PriceTable.load(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        PriceTable.load(tmp_path / "missing.toml")


def test_fit_keeps_the_newest_messages() -> None:
    history = [
        HistoryMessage("user" if i % 2 == 0 else "assistant", f"m{i} " + "x" * 396)
        for i in range(20)
    ]
    kept, dropped = fit(history, 4 * estimate_tokens(history[0].content))
    assert [m.content[:3] for m in kept] == ["m16", "m17", "m18", "m19"]
    assert dropped == history[:16]


def test_fit_never_starts_on_an_orphan_answer() -> None:
    history = [HistoryMessage("user", "q" * 400), HistoryMessage("assistant", "a" * 40)]
    kept, dropped = fit(history, estimate_tokens("a" * 40) + 1)
    assert kept == [] and dropped == history


def test_fit_with_no_room_keeps_nothing() -> None:
    assert fit([HistoryMessage("user", "old")], -5) == ([], [HistoryMessage("user", "old")])


def _status_error(cls: type[openai.APIStatusError], status: int, code: str, headers=None):  # type: ignore[no-untyped-def]
    request = httpx2.Request("POST", "http://127.0.0.1/v1/responses")
    response = httpx2.Response(status, headers=headers or {}, request=request)
    return cls("boom", response=response, body={"code": code, "message": "boom"})


def test_retry_classification() -> None:
    assert is_retryable(_status_error(openai.RateLimitError, 429, "rate_limit_exceeded"))
    assert not is_retryable(_status_error(openai.RateLimitError, 429, "insufficient_quota"))
    assert not is_retryable(_status_error(openai.AuthenticationError, 401, "invalid_api_key"))
    assert is_retryable(_status_error(openai.InternalServerError, 500, "server_error"))
    assert not is_retryable(_status_error(openai.BadRequestError, 400, "invalid_request"))
    exc = _status_error(openai.RateLimitError, 429, "x", {"retry-after": "2"})
    assert retry_after_seconds(exc) == 2
    exc = _status_error(
        openai.RateLimitError, 429, "x", {"retry-after-ms": "250", "retry-after": "2"}
    )
    assert retry_after_seconds(exc) == 0.25


def test_friendly_messages_name_what_to_do() -> None:
    auth = explain_error(_status_error(openai.AuthenticationError, 401, "invalid_api_key"))
    assert auth is not None and "OPENAI_API_KEY" in auth.message
    quota = explain_error(_status_error(openai.RateLimitError, 429, "insufficient_quota"))
    assert quota is not None and "billing" in quota.message
    model = explain_error(
        _status_error(openai.NotFoundError, 404, "model_not_found"), model="gpt-x"
    )
    assert model is not None and "gpt-x" in model.message
    assert explain_error(ValueError("bug")) is None
    mine = UserError("hi")
    assert explain_error(mine) is mine


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-value-123456")
    monkeypatch.setenv("SWITCHBOARD_BACKEND", "chat")
    monkeypatch.setenv("SWITCHBOARD_CHAT_MODEL", "local-llama")
    monkeypatch.setenv("SWITCHBOARD_ADMINS", "U1, U2,")
    monkeypatch.setenv("SWITCHBOARD_BUDGET_USER_DAILY_USD", "0")
    settings = load_settings()
    assert settings.backend == "chat"
    assert settings.models["chat"] == "local-llama"
    assert settings.admin_ids == {"U1", "U2"}
    assert settings.budget_user_daily_usd is None
    assert "sk-test-secret" not in repr(settings)
    assert settings.secrets() == ["sk-test-secret-value-123456"]


def test_settings_read_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-from-dotenv\nLOG_LEVEL=debug\n")
    settings = load_settings()
    assert settings.require_openai() == "sk-from-dotenv"
    assert settings.log_level == "DEBUG"


def test_bad_settings_give_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_BACKEND", "assistants")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "SWITCHBOARD_BACKEND" in str(info.value) and "\n" not in str(info.value)
    monkeypatch.delenv("SWITCHBOARD_BACKEND")
    monkeypatch.setenv("DATABASE_URL", "postgres://x")
    with pytest.raises(ConfigError, match="sqlite:///"):
        _ = load_settings().database_path
    monkeypatch.delenv("DATABASE_URL")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        load_settings().require_openai()


def test_database_url_paths() -> None:
    assert str(load_settings(DATABASE_URL="sqlite:///data/x.db").database_path) == "data/x.db"
    assert (
        str(load_settings(DATABASE_URL="sqlite:////var/lib/x.db").database_path) == "/var/lib/x.db"
    )


def test_no_model_name_outside_the_defaults_table() -> None:
    """Model ids live in bot/core/config.py's table and the price table only."""
    root = Path(__file__).resolve().parent.parent
    names = set(MODEL_DEFAULTS.values())
    offenders = []
    for folder in ("bot", "adapters", "storage"):
        for path in (root / folder).rglob("*.py"):
            if path.relative_to(root).as_posix() == "bot/core/config.py":
                continue
            text = path.read_text()
            offenders += [f"{path.name}: {n}" for n in names if n in text]
    assert offenders == []
