"""Trimming chat history to a token budget, oldest first, never dropping the instructions.

Tokens are estimated (about four characters a token, plus a few per message) rather than counted
with a tokenizer: tiktoken downloads its vocabularies at run time, and compatible servers use
other tokenizers anyway, so the budget is a safety margin, not an exact count.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.messages import HistoryMessage

PER_MESSAGE_OVERHEAD = 4


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4 + PER_MESSAGE_OVERHEAD


def trim_history(
    instructions: str, history: Sequence[HistoryMessage], user_text: str, budget: int
) -> list[dict[str, str]]:
    """Chat messages for one request: the instructions, as much recent history as fits in
    `budget` tokens, then the new user message (always kept, whatever its size)."""
    used = estimate_tokens(instructions) + estimate_tokens(user_text)
    start = len(history)
    while start > 0:
        cost = estimate_tokens(history[start - 1].content)
        if used + cost > budget:
            break
        used += cost
        start -= 1
    kept = history[start:]
    # Never open the window on an assistant message whose question was trimmed away.
    while kept and kept[0].role != "user":
        kept = kept[1:]
    messages = [{"role": "system", "content": instructions}] if instructions else []
    messages.extend({"role": m.role, "content": m.content} for m in kept)
    messages.append({"role": "user", "content": user_text})
    return messages
