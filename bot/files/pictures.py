"""Pillow helpers: images made acceptable for vision and for edits, masks validated or
converted, data URLs."""

from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass, field

from PIL import Image, ImageOps, UnidentifiedImageError

from bot.core.errors import UserError

MB = 1024 * 1024
VISION_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
EDIT_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
MASK_MAX_BYTES = 4 * MB
EDIT_MAX_BYTES = 50 * MB

MAX_PIXELS = 64_000_000  # ~8000×8000: far above what vision or edits take
MAX_FRAMES = 1_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard, for any other caller


@dataclass(frozen=True, slots=True)
class PreparedImage:
    data: bytes = field(repr=False)
    mime: str
    name: str
    width: int
    height: int

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode()}"


def open_image(data: bytes, name: str) -> Image.Image:
    """Decode fully (so corruption shows here, not later) or explain. The pixel count (width ×
    height × frames) is read from the header and checked before anything is decoded, so a small
    file that would expand to gigabytes (a decompression bomb) is refused cheaply."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_pixels(image, name)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(name, None) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UserError(
            f"I couldn't read “{name}” as an image: the file looks damaged or is not an image. "
            "Please send it again as png, jpg or webp.",
            log_detail=f"image decode failed: {type(exc).__name__}",
        ) from None
    return image


def _check_pixels(image: Image.Image, name: str) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ValueError("image without pixels")
    if width * height > MAX_PIXELS:
        raise _too_many_pixels(name, (width, height))
    frames = getattr(image, "n_frames", 1)
    if frames > MAX_FRAMES or width * height * frames > MAX_PIXELS * 4:
        raise _too_many_pixels(name, (width, height), frames)


def _too_many_pixels(name: str, size: tuple[int, int] | None, frames: int = 1) -> UserError:
    what = f" ({size[0]}×{size[1]}{f', {frames} frames' if frames > 1 else ''})" if size else ""
    return UserError(
        f"“{name}” has too many pixels for me to open{what}. I take images up to "
        f"{MAX_PIXELS // 1_000_000} million pixels; please send a smaller one.",
        log_detail=f"image refused: too many pixels{what}",
    )


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )


def _encode(image: Image.Image, *, prefer_png: bool) -> tuple[bytes, str, str]:
    out = io.BytesIO()
    if prefer_png or _has_alpha(image):
        image = image.convert("RGBA") if _has_alpha(image) else image.convert("RGB")
        image.save(out, "PNG", optimize=True)
        return out.getvalue(), "image/png", "png"
    image.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue(), "image/jpeg", "jpg"


def _renamed(name: str, ext: str) -> str:
    stem = name.rsplit(".", 1)[0] if "." in name else (name or "image")
    return f"{stem}.{ext}"


def prepare_for_vision(
    data: bytes, name: str, *, max_side: int = 2048, max_bytes: int = 20 * MB
) -> PreparedImage:
    """Pass a png/jpeg/webp (or still gif) that is small enough through unchanged; re-encode
    anything else (other formats, animated, too many pixels, too many bytes)."""
    image = open_image(data, name)
    fmt = image.format or ""
    animated = getattr(image, "n_frames", 1) > 1
    allowed = dict(VISION_FORMATS)
    if not animated:
        allowed["GIF"] = "image/gif"
    if fmt in allowed and not animated and max(image.size) <= max_side and len(data) <= max_bytes:
        return PreparedImage(data, allowed[fmt], name, *image.size)
    if animated:
        image.seek(0)
    image = ImageOps.exif_transpose(image) or image
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    encoded, mime, ext = _encode(image, prefer_png=False)
    side = max(image.size)
    while len(encoded) > max_bytes and side > 256:
        side = int(side * 0.7)
        image.thumbnail((side, side))
        encoded, mime, ext = _encode(image.convert("RGB"), prefer_png=False)
    return PreparedImage(encoded, mime, _renamed(name, ext), *image.size)


def prepare_for_edit(data: bytes, name: str) -> PreparedImage:
    """The source of an edit: png/webp/jpg under 50 MB as is, anything else converted to PNG."""
    image = open_image(data, name)
    fmt = image.format or ""
    animated = getattr(image, "n_frames", 1) > 1
    if fmt in EDIT_FORMATS and not animated and len(data) <= EDIT_MAX_BYTES:
        return PreparedImage(data, EDIT_FORMATS[fmt], name, *image.size)
    encoded, mime, ext = _encode(image, prefer_png=True)
    if len(encoded) > EDIT_MAX_BYTES:
        raise UserError(f"“{name}” is too large to edit, even converted (over 50 MB).")
    return PreparedImage(encoded, mime, _renamed(name, ext), *image.size)


def prepare_mask(data: bytes, name: str, size: tuple[int, int]) -> PreparedImage:
    """A mask for an edit: a PNG with an alpha channel, the same size as the image, where
    transparent = the area to change. A mask without transparency is read as black-and-white:
    white = the area to change (made transparent), black = keep."""
    mask = open_image(data, name)
    if mask.size != size:
        raise UserError(
            f"The mask “{name}” is {mask.size[0]}×{mask.size[1]} but the image is "
            f"{size[0]}×{size[1]}; they must be the same size."
        )
    rgba = mask.convert("RGBA")
    alpha = rgba.getchannel("A")
    if _has_alpha(mask) and alpha.getextrema()[0] < 255:
        result = rgba
    else:
        gray = mask.convert("L")
        result = Image.new("RGBA", size, (0, 0, 0, 255))
        result.putalpha(ImageOps.invert(gray))
    out = io.BytesIO()
    result.save(out, "PNG", optimize=True)
    if out.tell() > MASK_MAX_BYTES:
        out = io.BytesIO()
        result.convert("LA").save(out, "PNG", optimize=True)
    if out.tell() > MASK_MAX_BYTES:
        raise UserError(f"The mask “{name}” is too large (masks must be under 4 MB as PNG).")
    return PreparedImage(out.getvalue(), "image/png", _renamed(name, "png"), *size)
