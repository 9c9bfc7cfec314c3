"""Raw speech (PCM16 mono, as the Realtime API sends it) encoded with PyAV into the audio file a
chat platform gets: mp3, opus (in ogg), aac (ADTS), flac or wav."""

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


def encode_pcm(pcm: bytes, fmt: str, rate: int = SAMPLE_RATE) -> bytes:
    """`pcm` (signed 16-bit little-endian mono at `rate`) as a `fmt` file. CPU-bound: call it in
    a thread."""
    encoding = ENCODINGS[fmt]
    pcm = pcm[: len(pcm) - len(pcm) % SAMPLE_BYTES]
    out = io.BytesIO()
    container = av.open(out, mode="w", format=encoding.container)
    try:
        stream = container.add_stream(encoding.codec, rate=rate, layout="mono")
        if encoding.bit_rate:
            stream.bit_rate = encoding.bit_rate
        frame_size = stream.codec_context.frame_size or 1024
        # Frames of exactly the encoder's frame size (opus and aac insist), in its sample format.
        resampler = av.AudioResampler(
            format=encoding.sample_format, layout="mono", rate=rate, frame_size=frame_size
        )
        step = frame_size * SAMPLE_BYTES * 8
        pts = 0
        for start in range(0, len(pcm), step):
            chunk = pcm[start : start + step]
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk) // SAMPLE_BYTES)
            frame.planes[0].update(chunk)
            frame.sample_rate = rate
            frame.pts = pts
            pts += frame.samples
            for converted in resampler.resample(frame):
                for packet in stream.encode(converted):
                    container.mux(packet)
        for converted in resampler.resample(None):
            for packet in stream.encode(converted):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    finally:
        container.close()
    return out.getvalue()
