"""The one parser for media command options: Slack's text form (`a cat size=1536x1024 count=2`)
and Discord's named options (`CommandCall.options`) give the same result."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.core.errors import UserError
from bot.text.sanitise import clean_text, shorten

_PAIR = re.compile(r"(?<!\S)([a-z_]+)=(\S+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    choices: tuple[str, ...] = ()
    low: int | None = None  # integers: inclusive range
    high: int | None = None

    def check(self, raw: str) -> str | int:
        value = raw.strip()
        if self.low is not None and self.high is not None:
            try:
                number = int(value)
            except ValueError:
                number = None
            if number is None or not self.low <= number <= self.high:
                raise UserError(
                    f"{self.name} must be a whole number from {self.low} to {self.high} "
                    f"(got “{shorten(value, 20)}”)."
                )
            return number
        lowered = value.lower()
        if self.choices and lowered not in self.choices:
            raise UserError(
                f"Unknown {self.name} “{shorten(value, 30)}”. "
                f"Choose one of: {', '.join(self.choices)}."
            )
        return lowered


@dataclass(frozen=True, slots=True)
class Parsed:
    text: str
    values: dict[str, str | int]


def parse(
    text: str,
    options: Mapping[str, str],
    specs: tuple[Option, ...],
    *,
    text_option: str = "",
) -> Parsed:
    """`key=value` words for known keys are taken out of `text`, the rest is the free text.
    Named options (Discord) win over the same keys in the text; `text_option` names the option
    that carries the free text on Discord."""
    known = {spec.name: spec for spec in specs}
    raw: dict[str, str] = {}

    def take(match: re.Match[str]) -> str:
        key = match.group(1).lower()
        if key in known:
            raw[key] = match.group(2)
            return ""
        return match.group(0)

    free = _PAIR.sub(take, clean_text(text or ""))
    for key, value in options.items():
        if key in known and value not in (None, ""):
            raw[key] = clean_text(str(value))
    if text_option and options.get(text_option):
        free = clean_text(str(options[text_option]))
    values = {key: known[key].check(value) for key, value in raw.items()}
    return Parsed(" ".join(free.split()), values)
