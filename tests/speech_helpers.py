"""Shared by the speech tests: texts to say, the length the Realtime fake gives their audio,
and what a posted audio file decodes to."""

from __future__ import annotations

import io

import av

from bot.backends.realtime_speech import PAUSE_SECONDS, split_for_speech

SECONDS_PER_CHAR = 0.06  # the Realtime fake's default `ms_per_char`

SENTENCES = (
    "The quarterly report is ready for review.",
    "Revenue grew in every region, led by the north.",
    "Costs stayed flat while headcount rose slightly.",
    "Please send your comments before Friday noon.",
    "We will discuss the open questions at the weekly meeting.",
)


def long_text(chars: int = 1500) -> str:
    """Whole sentences, about `chars` characters in all."""
    words: list[str] = []
    index = 0
    while len(" ".join(words)) < chars - 60:
        words.append(SENTENCES[index % len(SENTENCES)])
        index += 1
    return " ".join(words)


def expected_seconds(text: str) -> float:
    """How long the fake's audio for `text` is once the engine joined its chunks."""
    chunks = split_for_speech(text)
    return sum(len(c) for c in chunks) * SECONDS_PER_CHAR + PAUSE_SECONDS * (len(chunks) - 1)


def decoded_seconds(data: bytes) -> float:
    """The duration of an audio file, by decoding every frame (not the container's header)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / (stream.rate or 1)
