"""Pure tests of splitting long answers into Discord messages (the Slack preset of the same
splitter is tested in test_slack_normalise)."""

from __future__ import annotations

import random

import pytest

from bot.text.split import DISCORD, SLACK, Splitter, open_fence

split_text = DISCORD.split
MESSAGE_LIMIT = DISCORD.limit


def test_short_text_is_one_part() -> None:
    assert split_text("hello") == ["hello"]
    assert split_text("") == []
    assert split_text("   \n ") == []
    assert split_text("x" * MESSAGE_LIMIT) == ["x" * MESSAGE_LIMIT]


def test_words_are_never_broken_and_order_is_kept() -> None:
    words = [f"w{i:05d}" for i in range(2000)]
    text = " ".join(words)
    parts = split_text(text)
    assert len(parts) >= 6
    assert all(len(p) <= MESSAGE_LIMIT for p in parts)
    assert "".join(parts) == text
    assert all(p.endswith(" ") for p in parts[:-1])  # cut after a space, never inside a word
    assert [w for p in parts for w in p.split()] == words


def test_prefers_paragraph_then_line_boundaries() -> None:
    paragraph = ("sentence " * 150).strip()  # 1,349 characters
    text = f"{paragraph}\n\n{paragraph}\n\n{paragraph}"
    parts = split_text(text)
    assert parts[0] == paragraph + "\n\n"
    assert "".join(parts) == text


def test_a_single_huge_word_is_cut_hard() -> None:
    parts = split_text("x" * 4500)
    assert all(len(p) <= MESSAGE_LIMIT for p in parts)
    assert "".join(parts) == "x" * 4500


def test_code_blocks_are_closed_and_reopened_across_parts() -> None:
    lines = "\n".join(f"print({i})  # a line of code" for i in range(200))
    text = f"Here is the code:\n```python\n{lines}\n```\nThat's all."
    parts = split_text(text)
    assert len(parts) >= 3
    assert all(len(p) <= MESSAGE_LIMIT for p in parts)
    for part in parts:
        assert open_fence(part) is None, part[-80:]  # every part renders on its own
    for part in parts[1:-1]:
        assert part.startswith("```python\n") and part.endswith("\n```")
    assert parts[0].startswith("Here is the code:") and parts[-1].endswith("That's all.")
    code_lines = [line for p in parts for line in p.splitlines() if line.startswith("print(")]
    assert code_lines == lines.splitlines()  # nothing lost, nothing repeated


def test_inline_fences_do_not_open_blocks() -> None:
    assert open_fence("use ```x``` inline\nmore") is None
    assert open_fence("```\ncode") == "```"
    assert open_fence("```js\ncode\n```\ntext") is None


@pytest.mark.parametrize("seed", range(5))
def test_random_text_respects_the_limit(seed: int) -> None:
    rng = random.Random(seed)
    chunks = []
    for _ in range(400):
        roll = rng.random()
        if roll < 0.05:
            chunks.append("\n```\n")
        elif roll < 0.15:
            chunks.append("\n\n")
        else:
            chunks.append("".join(rng.choice("abcdef ") for _ in range(rng.randint(1, 60))))
    text = "".join(chunks)
    parts = split_text(text)
    assert all(0 < len(p) <= MESSAGE_LIMIT for p in parts)
    stripped = "".join(parts).replace("```", "").replace("\n", "").replace(" ", "")
    assert stripped == text.replace("```", "").replace("\n", "").replace(" ", "")


def test_the_platform_presets_differ_only_where_documented() -> None:
    # Discord refuses a whitespace-only message; Slack's parts join back into the whole text
    text = "x" * 1_999 + " " * 3_000 + "end"
    assert all(p.strip() for p in DISCORD.split(text))
    slack_text = "y" * 3_899 + " " * 5_000 + "end"
    assert "".join(SLACK.split(slack_text)) == slack_text
    # Discord cuts at a line break anywhere in the window's last half, Slack only near its end
    line = "z" * 1_200 + "\n" + "w " * 1_500
    assert DISCORD.split(line)[0] == "z" * 1_200 + "\n"
    assert SLACK.safe_prefix == 3_900 - 4 - 800
    with pytest.raises(ValueError, match="too small"):
        Splitter(limit=8, word_search=500)
