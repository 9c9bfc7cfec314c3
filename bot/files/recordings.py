"""PyAV helpers: audio made acceptable for the transcription endpoint (container and size),
split into parts when long, and test tones.

FFmpeg trusts content: a "voice note" can be a playlist (ffconcat, HLS) that makes the demuxer
open local files or URLs. So every input is opened with a whitelist of the demuxers the bot
needs (`DEMUXERS`) and no protocol at all for nested opens (`protocol_whitelist`), and what is
decoded is capped: at most `MAX_SECONDS` of sound and `MAX_OUTPUT_BYTES` of converted audio.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import av

from bot.core.errors import UserError
from bot.files.supported import AUDIO_TYPES, extension

MB = 1024 * 1024
UPLOAD_LIMIT = 25 * MB  # the transcription endpoint's per-file limit
TARGET_RATE = 16_000
TARGET_BITRATE = 32_000  # mono mp3: ~240 KB a minute, 25 MB ≈ 100 minutes
SEGMENT_SECONDS = 20 * 60  # parts of ~4.8 MB each when a recording must be split
MAX_SECONDS = 4 * 3600  # of sound decoded from one file
MAX_OUTPUT_BYTES = 128 * MB  # of converted audio from one file
# FFmpeg's demuxer names for the containers `supported.AUDIO_TYPES`/`AUDIO_CONVERT` accept.
DEMUXERS = ",".join(
    (
        "ogg", "mp3", "wav", "flac", "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "aac",
        "aiff", "caf", "mpeg", "w64",
    )
)  # fmt: skip
OPEN_OPTIONS = {"format_whitelist": DEMUXERS, "protocol_whitelist": "none"}


@dataclass(frozen=True, slots=True)
class AudioPart:
    data: bytes = field(repr=False)
    name: str
    mime: str
    seconds: float


def _open(data: bytes, name: str) -> av.container.InputContainer:
    try:
        container = av.open(io.BytesIO(data), mode="r", container_options=OPEN_OPTIONS)
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise UserError(
            f"I couldn't read “{name}” as audio: the file looks damaged or is in a format I "
            "don't know.",
            log_detail=f"audio open failed: {type(exc).__name__}",
        ) from None
    if not container.streams.audio:
        container.close()
        raise UserError(f"“{name}” has no audio track.")
    return container


def duration_seconds(data: bytes, name: str = "audio") -> float:
    """The recording's length (from the container, else by decoding)."""
    container = _open(data, name)
    try:
        if container.duration:
            return _capped(container.duration / av.time_base, name)
        stream = container.streams.audio[0]
        if stream.duration and stream.time_base:
            return _capped(float(stream.duration * stream.time_base), name)
        samples = 0
        rate = stream.rate or 1
        for frame in container.decode(stream):
            samples += frame.samples
            _capped(samples / rate, name)
        return samples / rate
    except av.FFmpegError:
        raise UserError(f"I couldn't read “{name}”: the audio looks damaged.") from None
    finally:
        container.close()


def _capped(seconds: float, name: str) -> float:
    if seconds > MAX_SECONDS:
        raise UserError(
            f"“{name}” is longer than I take ({MAX_SECONDS // 3600} hours of sound at most).",
            log_detail=f"audio refused: {seconds:.0f} s",
        )
    return seconds


def _stem(name: str) -> str:
    return (name.rsplit(".", 1)[0] if "." in name else name) or "audio"


def transcode(data: bytes, name: str, *, segment_seconds: float = SEGMENT_SECONDS) -> list[bytes]:
    """Decode anything FFmpeg reads; encode mono 16 kHz mp3, one file per `segment_seconds`."""
    container = _open(data, name)
    parts: list[bytes] = []
    resampler = av.AudioResampler(format="s16p", layout="mono", rate=TARGET_RATE)
    limit = int(segment_seconds * TARGET_RATE)
    out: io.BytesIO | None = None
    output = None
    stream = None
    written = 0
    decoded = 0.0  # seconds of sound read, whatever the container's header claims
    stored = 0  # bytes of finished parts

    def close_part() -> None:
        nonlocal output, out, stream, stored
        if output is None or out is None or stream is None:
            return
        for packet in stream.encode(None):
            output.mux(packet)
        output.close()
        parts.append(out.getvalue())
        output, out, stream = None, None, None
        stored += len(parts[-1])
        if stored > MAX_OUTPUT_BYTES:
            raise UserError(f"“{name}” converts to more audio than I take.")

    def encode(frame: av.AudioFrame) -> None:
        nonlocal output, out, stream, written
        if output is None:
            out = io.BytesIO()
            output = av.open(out, mode="w", format="mp3")
            stream = output.add_stream("libmp3lame", rate=TARGET_RATE, layout="mono")
            stream.bit_rate = TARGET_BITRATE
            written = 0
        assert stream is not None
        for packet in stream.encode(frame):
            output.mux(packet)
        written += frame.samples
        if written >= limit:
            close_part()

    try:
        for frame in container.decode(container.streams.audio[0]):
            decoded += frame.samples / (frame.sample_rate or TARGET_RATE)
            _capped(decoded, name)
            frame.pts = None
            for converted in resampler.resample(frame):
                encode(converted)
        for converted in resampler.resample(None):
            encode(converted)
        close_part()
    except av.FFmpegError as exc:
        raise UserError(
            f"I couldn't convert “{name}”: the audio looks damaged.",
            log_detail=f"transcode failed: {type(exc).__name__}",
        ) from None
    finally:
        container.close()
    if not parts:
        raise UserError(f"“{name}” contains no sound I could read.")
    return parts


def prepare_for_transcription(
    data: bytes, name: str, *, upload_limit: int = UPLOAD_LIMIT
) -> list[AudioPart]:
    """Parts ready for `/audio/transcriptions`: the file itself when its container is accepted
    and it is small enough; otherwise mono 16 kHz mp3, split when still too large."""
    seconds = duration_seconds(data, name)
    ext = extension(name)
    if ext in AUDIO_TYPES and len(data) <= upload_limit:
        return [AudioPart(data, name, AUDIO_TYPES[ext], seconds)]
    segment = SEGMENT_SECONDS
    # keep each part under the limit whatever the bitrate: bytes per second of our mp3
    segment = min(segment, upload_limit / (TARGET_BITRATE / 8) * 0.9)
    encoded = transcode(data, name, segment_seconds=segment)
    stem = _stem(name)
    result = []
    for index, part in enumerate(encoded):
        part_name = f"{stem}.mp3" if len(encoded) == 1 else f"{stem}-part{index + 1}.mp3"
        part_seconds = min(segment, max(0.0, seconds - index * segment))
        result.append(AudioPart(part, part_name, "audio/mpeg", part_seconds))
    return result


def tone(
    seconds: float = 1.0, *, fmt: str = "wav", frequency: float = 440.0, rate: int = 48_000
) -> bytes:
    """A sine tone encoded as `fmt` ("wav", "ogg" (opus), "mp3", "flac", "webm" (opus)): for
    tests and for `doctor`-style self checks."""
    import array
    import math

    codecs = {"wav": "pcm_s16le", "ogg": "libopus", "mp3": "libmp3lame", "flac": "flac"}
    codecs["webm"] = "libopus"
    out = io.BytesIO()
    container = av.open(out, mode="w", format=fmt)
    stream = container.add_stream(codecs[fmt], rate=rate, layout="mono")
    total = int(seconds * rate)
    chunk = 960
    for start in range(0, total, chunk):
        count = min(chunk, total - start)
        samples = array.array(
            "h",
            (
                int(math.sin(2 * math.pi * frequency * (start + i) / rate) * 0.3 * 32767)
                for i in range(count)
            ),
        )
        frame = av.AudioFrame(format="s16", layout="mono", samples=count)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = rate
        frame.pts = start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return out.getvalue()
