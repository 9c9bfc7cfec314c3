"""The price table (a TOML file, shipped or overridden) and the cost of a run's usage."""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from bot.core.config import SHIPPED_PRICES, ConfigError
from bot.core.types import Usage

log = logging.getLogger(__name__)

PER_MILLION = Decimal(1_000_000)
PRICE_KEYS = frozenset(
    {
        "input",
        "cached_input",
        "output",
        "image_input",
        "image_output",
        "audio_input",
        "audio_output",
        "audio_minute",
        "characters_1m",
    }
)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    input: Decimal = Decimal(0)
    cached_input: Decimal | None = None
    output: Decimal = Decimal(0)
    image_input: Decimal = Decimal(0)
    image_output: Decimal = Decimal(0)
    audio_input: Decimal = Decimal(0)  # Realtime audio tokens
    audio_output: Decimal = Decimal(0)
    audio_minute: Decimal = Decimal(0)
    characters_1m: Decimal = Decimal(0)


TOOL_KEYS = frozenset({"file_search_call", "web_search_call", "container_session"})


@dataclass(frozen=True, slots=True)
class ToolPrice:
    file_search_call: Decimal = Decimal(0)
    web_search_call: Decimal = Decimal(0)
    container_session: Decimal = Decimal(0)


@dataclass(slots=True)
class PriceTable:
    models: dict[str, ModelPrice]
    tools: ToolPrice = field(default_factory=ToolPrice)
    _warned: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        source = path or SHIPPED_PRICES
        try:
            raw = tomllib.loads(source.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"SWITCHBOARD_PRICES: cannot read {source}: {exc}") from None
        models: dict[str, ModelPrice] = {}
        for name, entry in raw.get("models", {}).items():
            if not isinstance(entry, dict) or not set(entry) <= PRICE_KEYS:
                unknown = sorted(set(entry) - PRICE_KEYS) if isinstance(entry, dict) else entry
                raise ConfigError(
                    f"price table {source}: model {name!r} has unknown keys {unknown}"
                )
            try:
                models[name] = ModelPrice(**{k: Decimal(str(v)) for k, v in entry.items()})
            except ArithmeticError:
                raise ConfigError(
                    f"price table {source}: model {name!r} has a non-number"
                ) from None
        tools = raw.get("tools", {})
        if not isinstance(tools, dict) or not set(tools) <= TOOL_KEYS:
            raise ConfigError(f"price table {source}: [tools] takes only {sorted(TOOL_KEYS)}")
        try:
            tool_price = ToolPrice(**{k: Decimal(str(v)) for k, v in tools.items()})
        except ArithmeticError:
            raise ConfigError(f"price table {source}: [tools] has a non-number") from None
        return cls(models, tool_price)

    def cost(self, usage: Usage) -> Decimal | None:
        """Dollars for one run's usage, or None when its model is not in the table."""
        price = self.models.get(usage.model)
        if price is None:
            if usage.model not in self._warned:
                self._warned.add(usage.model)
                log.warning(
                    "no price for model %s in the price table: cost recorded as unknown",
                    usage.model,
                )
            return None
        cached_rate = price.input if price.cached_input is None else price.cached_input
        cached = min(usage.cached_tokens, usage.input_tokens)
        audio_in = min(usage.audio_input_tokens, usage.input_tokens - cached)
        audio_out = min(usage.audio_output_tokens, usage.output_tokens)
        tokens = (
            (usage.input_tokens - cached - audio_in) * price.input
            + cached * cached_rate
            + audio_in * price.audio_input
            + (usage.output_tokens - audio_out) * price.output
            + audio_out * price.audio_output
            + usage.image_input_tokens * price.image_input
            + usage.image_output_tokens * price.image_output
            + usage.characters * price.characters_1m
        ) / PER_MILLION
        audio = Decimal(str(usage.audio_seconds)) / 60 * price.audio_minute
        fees = (
            usage.file_search_calls * self.tools.file_search_call
            + usage.web_search_calls * self.tools.web_search_call
            + usage.container_sessions * self.tools.container_session
        )
        return tokens + audio + fees
