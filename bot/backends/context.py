"""How much of a model's context window a request may fill, and how to recognise the error of
a request that did not fit.

The window is the model's total (input + output) from `Settings.context_window`. Of it:
- room is kept for the answer (the channel's `max_output_tokens`, else a quarter of the window
  up to `OUTPUT_RESERVE_MAX`);
- `SAFETY` of the rest is used at most, because tokens are estimated (`estimate_tokens`) rather
  than counted with the model's tokenizer;
- the Responses API is asked to compact the conversation once its input passes
  `compact_threshold` (well before the input limit, so compaction, not truncation, is what
  normally happens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PER_MESSAGE_OVERHEAD = 4
IMAGE_TOKENS = 1_000  # an image part, counted high: its real cost depends on size and detail
OUTPUT_RESERVE_MAX = 16_000
SAFETY = 0.85
COMPACT_AT = 0.6  # of the input the window leaves
MIN_COMPACT_THRESHOLD = 1_000  # the API's minimum for `compact_threshold`
CONTEXT_ERROR = "context_length_exceeded"


def estimate_tokens(text: str) -> int:
    """About four characters a token, plus a few per message (no tokenizer: compatible servers
    use other ones, and the budget is a margin, not an exact count)."""
    return (len(text) + 3) // 4 + PER_MESSAGE_OVERHEAD


@dataclass(frozen=True, slots=True)
class ContextBudget:
    """The token arithmetic for one model's window."""

    window: int
    max_output_tokens: int | None = None

    @property
    def output_reserve(self) -> int:
        if self.max_output_tokens:
            return min(self.max_output_tokens, self.window // 2)
        return min(self.window // 4, OUTPUT_RESERVE_MAX)

    @property
    def input_limit(self) -> int:
        """Estimated tokens a request's whole input may take."""
        return int((self.window - self.output_reserve) * SAFETY)

    @property
    def compact_threshold(self) -> int:
        """Input tokens past which the Responses API compacts the conversation."""
        return max(MIN_COMPACT_THRESHOLD, int(self.input_limit * COMPACT_AT))

    def history_budget(self, *fixed: str, images: int = 0) -> int:
        """Estimated tokens left for history once `fixed` texts (instructions, the new message)
        and `images` are in (may be negative: the new message alone is too long)."""
        used = sum(estimate_tokens(text) for text in fixed) + images * IMAGE_TOKENS
        return self.input_limit - used


def is_context_error(exc: BaseException) -> bool:
    """OpenAI's (or a compatible server's) "the input does not fit the context window"."""
    code = getattr(exc, "code", None)
    if code == CONTEXT_ERROR:
        return True
    message = str(getattr(exc, "message", "") or "").lower()
    status = getattr(exc, "status_code", None)
    return status == 400 and (
        "context length" in message
        or "context window" in message
        or "maximum context" in message
        or "too many tokens" in message
    )


def text_of(item: Any) -> str:
    """The text of a conversation item (a dict or an SDK object): its text parts joined."""
    content = item.get("content") if isinstance(item, dict) else getattr(item, "content", None)
    if isinstance(content, str):
        return content
    texts = []
    for part in content or ():
        text = part.get("text") if isinstance(part, dict) else getattr(part, "text", None)
        if isinstance(text, str):
            texts.append(text)
    return "\n".join(texts)
