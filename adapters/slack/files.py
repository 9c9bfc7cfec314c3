"""Files in (downloads with the bot token, carefully) and out (uploads into the thread).

Downloads (`SlackFiles.fetcher`) are the `fetch` of each inbound `Attachment`:
- only from Slack's own hosts, derived from `SLACK_API_URL` (`https://slack.com/api/` →
  `slack.com` and its subdomains such as `files.slack.com`; same scheme and port), so the bot
  token is never sent anywhere else;
- redirects are followed by hand, only to allowed hosts (at most 3);
- the size is checked before reading (the file's declared size, then `Content-Length`) and
  while reading, which stops past the declared size (a body larger than Slack said is
  refused, never read whole): `SWITCHBOARD_SLACK_MAX_FILE_MB` (default 20, OpenAI's image input limit) for
  everything, `SWITCHBOARD_SLACK_MAX_AUDIO_MB` (default 25, OpenAI's transcription limit) for
  audio;
- an HTML page where a file was expected (Slack's sign-in page, returned with status 200 when
  the token is missing or lacks `files:read`) becomes a friendly `UserError`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.config import ConfigError
from bot.core.errors import UserError
from bot.core.types import AttachmentKind, OutFile
from bot.text.sanitise import safe_filename

log = logging.getLogger(__name__)

MB = 1024 * 1024
DEFAULT_MAX_BYTES = 20 * MB
DEFAULT_MAX_AUDIO_BYTES = 25 * MB
MAX_REDIRECTS = 3
DOWNLOAD_TIMEOUT = 120.0
UPLOAD_BATCH = 10
_REDIRECTS = (301, 302, 303, 307, 308)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")


class FileLimits(BaseSettings):
    """The adapter's own knobs, read like the core's settings (environment, then `.env`)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    max_file_mb: float = Field(
        default=DEFAULT_MAX_BYTES / MB, gt=0, alias="SWITCHBOARD_SLACK_MAX_FILE_MB"
    )
    max_audio_mb: float = Field(
        default=DEFAULT_MAX_AUDIO_BYTES / MB, gt=0, alias="SWITCHBOARD_SLACK_MAX_AUDIO_MB"
    )

    @classmethod
    def load(cls) -> FileLimits:
        try:
            return cls()
        except ValidationError as exc:
            first = exc.errors()[0]
            name = ".".join(str(part) for part in first.get("loc", ())) or "file limit"
            raise ConfigError(f"{name}: {first.get('msg', 'invalid value')}") from None

    @property
    def max_bytes(self) -> int:
        return int(self.max_file_mb * MB)

    @property
    def max_audio_bytes(self) -> int:
        return int(self.max_audio_mb * MB)


class SlackHost:
    """Which URLs count as Slack's own, derived from the Web API base URL."""

    def __init__(self, api_url: str) -> None:
        parts = urlsplit(api_url)
        self.scheme = (parts.scheme or "https").lower()
        host = (parts.hostname or "slack.com").lower()
        self.domain = host[4:] if host.startswith("api.") else host
        self.port = parts.port or _default_port(self.scheme)

    def allows(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            port = parts.port or _default_port(parts.scheme.lower())
        except ValueError:
            return False
        return (
            parts.scheme.lower() == self.scheme
            and (host == self.domain or host.endswith("." + self.domain))
            and port == self.port
        )


def _default_port(scheme: str) -> int:
    return 443 if scheme in ("https", "wss") else 80


class SlackFiles:
    def __init__(
        self,
        token: str,
        api_url: str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_audio_bytes: int = DEFAULT_MAX_AUDIO_BYTES,
        session: Callable[[], aiohttp.ClientSession] | None = None,
    ) -> None:
        self._token = token
        self.host = SlackHost(api_url)
        self.max_bytes = max_bytes
        self.max_audio_bytes = max_audio_bytes
        self._session_factory = session

    def limit_for(self, kind: AttachmentKind) -> int:
        return self.max_audio_bytes if kind == "audio" else self.max_bytes

    def fetcher(
        self, file: Mapping[str, Any], kind: AttachmentKind
    ) -> Callable[[], Awaitable[bytes]]:
        meta = dict(file)

        async def fetch() -> bytes:
            return await self.download(meta, kind)

        return fetch

    async def download(self, file: Mapping[str, Any], kind: AttachmentKind) -> bytes:
        name = safe_filename(file.get("name") or file.get("title"), "the file")
        limit = self.limit_for(kind)
        declared = file.get("size")
        declared = declared if isinstance(declared, int) and not isinstance(declared, bool) else 0
        if declared > limit:
            raise _too_big(name, declared, limit)
        cap = min(declared, limit) if declared > 0 else limit
        url = file.get("url_private_download") or file.get("url_private")
        if not isinstance(url, str) or not url:
            raise UserError(f"I couldn't download “{name}” from Slack: it has no download link.")
        if self._session_factory is not None:
            return await self._get(self._session_factory(), url, name, (cap, limit), file)
        async with aiohttp.ClientSession() as session:
            return await self._get(session, url, name, (cap, limit), file)

    async def _get(
        self,
        session: aiohttp.ClientSession,
        url: str,
        name: str,
        caps: tuple[int, int],
        file: Mapping[str, Any],
    ) -> bytes:
        """GET `url` following redirects on Slack hosts only, reading at most `caps[0]` bytes
        (the declared size, else the limit `caps[1]`)."""
        cap, limit = caps
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT)
        for _ in range(MAX_REDIRECTS + 1):
            if not self.host.allows(url):
                log.warning(
                    "slack: refusing to download %s from %s (not a Slack host)",
                    file.get("id") or "a file",
                    urlsplit(url).hostname or "an unknown host",
                )
                raise UserError(
                    f"I couldn't download “{name}”: it is not stored on this Slack workspace."
                )
            headers = {"Authorization": f"Bearer {self._token}"}
            try:
                async with session.get(
                    url, headers=headers, allow_redirects=False, timeout=timeout
                ) as response:
                    if response.status in _REDIRECTS:
                        location = response.headers.get("Location", "")
                        if not location:
                            break
                        url = urljoin(url, location)
                        continue
                    if response.status != 200:
                        raise UserError(
                            f"I couldn't download “{name}” from Slack (HTTP {response.status}).",
                            log_detail=f"file download HTTP {response.status}",
                        )
                    expected = str(file.get("mimetype") or "").lower()
                    if response.content_type == "text/html" and expected != "text/html":
                        raise _login_page(name)
                    length = response.content_length
                    if length is not None and length > cap:
                        raise _refusal(name, length, cap, limit)
                    data = bytearray()
                    async for chunk in response.content.iter_chunked(64 * 1024):
                        data += chunk
                        if len(data) > cap:
                            raise _refusal(name, len(data), cap, limit)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise UserError(
                    f"I couldn't download “{name}” from Slack (the connection failed).",
                    log_detail=f"file download {type(exc).__name__}",
                ) from None
            if expected not in ("text/html", "text/plain") and _looks_like_html(data):
                raise _login_page(name)
            return bytes(data)
        raise UserError(f"I couldn't download “{name}” from Slack (too many redirects).")


def _looks_like_html(data: bytes | bytearray) -> bool:
    head = bytes(data[:512]).lstrip().lower()
    return head.startswith(_HTML_STARTS)


def _refusal(name: str, size: int, cap: int, limit: int) -> UserError:
    if cap < limit:  # the declared size was the cap: the file is not what Slack said
        return UserError(
            f"“{name}” is larger than Slack said it was, so I did not read it. "
            "Please upload it again.",
            log_detail=f"file larger than its declared {cap} bytes",
        )
    return _too_big(name, size, limit)


def _too_big(name: str, size: int, limit: int) -> UserError:
    return UserError(
        f"“{name}” is {size / MB:.1f} MB; I can take files up to {limit / MB:.0f} MB.",
        log_detail=f"file too large: {size} > {limit} bytes",
    )


def _login_page(name: str) -> UserError:
    return UserError(
        f"I couldn't download “{name}”: Slack sent its sign-in page instead of the file. "
        "An admin should check that the app has the files:read scope and can see this file.",
        log_detail="file download returned an HTML page",
    )


async def upload_files(
    client: AsyncWebClient, channel: str, thread_ts: str | None, files: Sequence[OutFile]
) -> None:
    """Upload reply files (images, audio, CSV…) with `files_upload_v2` into the thread."""
    for start in range(0, len(files), UPLOAD_BATCH):
        batch = files[start : start + UPLOAD_BATCH]
        await client.files_upload_v2(
            file_uploads=[
                {"content": f.data, "filename": safe_filename(f.name), "title": f.name}
                for f in batch
            ],
            channel=channel,
            thread_ts=thread_ts,
        )
