"""Media made in the tests: Pillow images and short real audio (PyAV), and attachments."""

from __future__ import annotations

import io

from PIL import Image

from bot.core.types import Attachment, AttachmentKind
from bot.files.recordings import tone


def png(size: tuple[int, int] = (64, 48), color: tuple[int, ...] = (10, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else 128).save(out, fmt)
    return out.getvalue()


def bw_mask(size: tuple[int, int] = (64, 48)) -> bytes:
    """Black (keep) with a white square (change)."""
    image = Image.new("L", size, 0)
    image.paste(255, (8, 8, 24, 24))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def alpha_mask(size: tuple[int, int] = (64, 48)) -> bytes:
    image = Image.new("RGBA", size, (0, 0, 0, 255))
    image.paste((0, 0, 0, 0), (8, 8, 24, 24))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


CORRUPT_PNG = png()[:40] + b"\x00garbage" * 10
OGG = tone(1.0, fmt="ogg")
WAV = tone(1.0, fmt="wav")


def attachment(name: str, data: bytes, mime: str, kind: AttachmentKind | None = None) -> Attachment:
    async def fetch() -> bytes:
        return data

    if kind is None:
        kind = (
            "image"
            if mime.startswith("image/")
            else "audio"
            if mime.startswith("audio/")
            else "other"
        )
    return Attachment(kind, mime, name, len(data), fetch)
