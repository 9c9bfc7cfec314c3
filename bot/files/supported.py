"""The supported-files table: what the bot reads, checked (extension, MIME type, size) before
anything is downloaded or uploaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.core.errors import UserError
from bot.core.types import Attachment

MB = 1024 * 1024
MediaKind = Literal["image", "audio"]

# Sent to OpenAI as they are (after a size check); the "convert" ones are re-encoded first.
IMAGE_TYPES: dict[str, str] = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}
IMAGE_CONVERT: dict[str, str] = {
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
}
AUDIO_TYPES: dict[str, str] = {
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "mp4": "audio/mp4",
    "mpeg": "audio/mpeg",
    "mpga": "audio/mpeg",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "webm": "audio/webm",
}
AUDIO_CONVERT: dict[str, str] = {
    "oga": "audio/ogg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "aiff": "audio/aiff",
    "caf": "audio/x-caf",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
}
ACCEPTED = (
    "I can read images (png, jpg, webp, gif; bmp and tiff are converted) and audio "
    "(mp3, m4a, mp4, ogg, opus, wav, webm, flac, mpeg; aac, aiff, caf, mov, mkv are converted)."
)


@dataclass(frozen=True, slots=True)
class Limits:
    image_bytes: int = 20 * MB
    audio_bytes: int = 100 * MB


def extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem is not None else ""


def _kind_of_mime(mime: str) -> MediaKind | None:
    mime = mime.split(";")[0].strip().lower()
    if mime.startswith("image/"):
        return "image"
    if mime.startswith("audio/") or mime in ("video/webm", "video/mp4", "video/ogg"):
        return "audio"
    return None


def _kind_of_ext(ext: str) -> MediaKind | None:
    if ext in IMAGE_TYPES or ext in IMAGE_CONVERT:
        return "image"
    if ext in AUDIO_TYPES or ext in AUDIO_CONVERT:
        return "audio"
    return None


def media_kind(name: str, mime: str) -> MediaKind | None:
    """What a file is, from its extension and MIME type; None when it is neither image nor audio
    we read, or when the two disagree."""
    by_ext = _kind_of_ext(extension(name))
    by_mime = _kind_of_mime(mime)
    if by_ext is not None and by_mime is not None and by_ext != by_mime:
        return None
    if by_ext is None and extension(name) and by_mime is not None:
        # A known MIME type with an extension we do not know (e.g. image/heic as .heic).
        return None
    return by_ext or by_mime


def check_attachment(
    attachment: Attachment, expected: MediaKind | None = None, limits: Limits = Limits()
) -> MediaKind:
    """Refuse, before downloading, a file the bot cannot read; return its kind."""
    kind = media_kind(attachment.name, attachment.mime)
    name = attachment.name or "the file"
    if kind is None or (expected is not None and kind != expected):
        what = {"image": "an image", "audio": "an audio file"}.get(expected or "", "")
        lead = f"“{name}” is not {what} I can read." if what else f"I can't read “{name}”."
        raise UserError(
            f"{lead} {ACCEPTED}", log_detail=f"unsupported file {attachment.mime or '?'}"
        )
    limit = limits.image_bytes if kind == "image" else limits.audio_bytes
    if attachment.size > limit:
        raise UserError(
            f"“{name}” is {attachment.size / MB:.1f} MB; I take {kind} files up to "
            f"{limit / MB:.0f} MB.",
            log_detail=f"file too large: {attachment.size} > {limit}",
        )
    return kind


async def fetch_checked(attachment: Attachment, kind: MediaKind, limits: Limits) -> bytes:
    check_attachment(attachment, kind, limits)
    data = await attachment.fetch()
    limit = limits.image_bytes if kind == "image" else limits.audio_bytes
    if len(data) > limit:
        raise UserError(
            f"“{attachment.name}” is {len(data) / MB:.1f} MB; I take {kind} files up to "
            f"{limit / MB:.0f} MB."
        )
    if not data:
        raise UserError(f"“{attachment.name}” is empty.")
    return data


# Data files and documents handed to code interpreter (uploaded into the conversation's
# container). Code interpreter reads far more than these; this list is what a chat user
# reasonably attaches, and it keeps executables and archives out.
DOCUMENT_TYPES: frozenset[str] = frozenset(
    {
        "csv", "tsv", "xlsx", "xls", "json", "jsonl", "xml", "txt", "md", "pdf", "docx",
        "pptx", "html", "py", "ipynb", "parquet", "sql", "yaml", "yml", "log", "tex",
    }
)  # fmt: skip


def check_document(attachment: Attachment, max_bytes: int) -> None:
    """Refuse, before downloading, a document code interpreter should not get."""
    name = attachment.name or "the file"
    if extension(attachment.name) not in DOCUMENT_TYPES:
        kinds = ", ".join(sorted(DOCUMENT_TYPES))
        raise UserError(
            f"I can't give “{name}” to code interpreter. I take these documents: {kinds}.",
            log_detail=f"unsupported document {attachment.mime or '?'}",
        )
    if attachment.size > max_bytes:
        raise UserError(
            f"“{name}” is {attachment.size / MB:.1f} MB; I take documents up to "
            f"{max_bytes / MB:.0f} MB.",
            log_detail=f"document too large: {attachment.size} > {max_bytes}",
        )


async def fetch_document(attachment: Attachment, max_bytes: int) -> bytes:
    check_document(attachment, max_bytes)
    data = await attachment.fetch()
    if len(data) > max_bytes:
        raise UserError(
            f"“{attachment.name}” is {len(data) / MB:.1f} MB; I take documents up to "
            f"{max_bytes / MB:.0f} MB."
        )
    if not data:
        raise UserError(f"“{attachment.name}” is empty.")
    return data
