"""Raw speech (PCM16 mono, as the Realtime API sends it) encoded with PyAV into the audio file a
chat platform gets: mp3, opus (in ogg), aac (ADTS), flac or wav. `StreamEncoder` takes the
audio as it arrives, so the file is ready almost as soon as the last sound is."""

from __future__ import annotations

import io
from dataclasses import dataclass

import av

SAMPLE_RATE = 24_000  # the only rate of the Realtime API's `audio/pcm`
SAMPLE_BYTES = 2  # 16-bit mono


@dataclass(frozen=True, slots=True)
class Encoding:
    container: str
    codec: str
    sample_format: str
    bit_rate: int | None = None


ENCODINGS: dict[str, Encoding] = {
    "mp3": Encoding("mp3", "libmp3lame", "s16p", 64_000),
    "opus": Encoding("ogg", "libopus", "s16", 32_000),
    "aac": Encoding("adts", "aac", "fltp", 64_000),
    "flac": Encoding("flac", "flac", "s16"),
    "wav": Encoding("wav", "pcm_s16le", "s16"),
}


def silence(seconds: float, rate: int = SAMPLE_RATE) -> bytes:
    return b"\x00\x00" * int(seconds * rate)


def pcm_seconds(pcm: bytes, rate: int = SAMPLE_RATE) -> float:
    return len(pcm) / (SAMPLE_BYTES * rate)


class StreamEncoder:
    """`feed` PCM (signed 16-bit little-endian mono at `rate`) in pieces of any length, then
    `finish` for the file; `close` abandons it. CPU-bound and not thread-safe: call it from one
    worker thread at a time."""

    def __init__(self, fmt: str, rate: int = SAMPLE_RATE) -> None:
        encoding = ENCODINGS[fmt]
        self._rate = rate
        self._out = io.BytesIO()
        self._container = av.open(self._out, mode="w", format=encoding.container)
        self._stream = self._container.add_stream(encoding.codec, rate=rate, layout="mono")
        if encoding.bit_rate:
            self._stream.bit_rate = encoding.bit_rate
        frame_size = self._stream.codec_context.frame_size or 1024
        # Frames of exactly the encoder's frame size (opus and aac insist), in its sample format.
        self._resampler = av.AudioResampler(
            format=encoding.sample_format, layout="mono", rate=rate, frame_size=frame_size
        )
        self._step = frame_size * SAMPLE_BYTES * 8
        self._pts = 0
        self._odd = b""  # half a sample left from the previous piece

    def feed(self, pcm: bytes) -> None:
        data = self._odd + pcm
        usable = len(data) - len(data) % SAMPLE_BYTES
        self._odd = data[usable:]
        for start in range(0, usable, self._step):
            chunk = data[start : min(start + self._step, usable)]
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk) // SAMPLE_BYTES)
            frame.planes[0].update(chunk)
            frame.sample_rate = self._rate
            frame.pts = self._pts
            self._pts += frame.samples
            self._encode(self._resampler.resample(frame))

    def finish(self) -> bytes:
        try:
            self._encode(self._resampler.resample(None))
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
        return self._out.getvalue()

    def close(self) -> None:
        self._container.close()

    def _encode(self, frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)


def encode_pcm(pcm: bytes, fmt: str, rate: int = SAMPLE_RATE) -> bytes:
    """`pcm` as a `fmt` file, in one go. CPU-bound: call it in a thread."""
    encoder = StreamEncoder(fmt, rate)
    try:
        encoder.feed(pcm)
    except BaseException:
        encoder.close()
        raise
    return encoder.finish()
