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
The loop is `adapters.downloads.download`, in Slack's words (`WORDING`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from slack_sdk.web.async_client import AsyncWebClient

from adapters.downloads import MB, Say, Wording, download
from bot.core.config import ConfigError
from bot.core.errors import UserError
from bot.core.types import AttachmentKind, OutFile
from bot.text.sanitise import safe_filename

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 20 * MB
DEFAULT_MAX_AUDIO_BYTES = 25 * MB
UPLOAD_BATCH = 10
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")
WORDING = Wording(
    not_allowed=Say("I couldn't download “{name}”: it is not stored on this Slack workspace."),
    http_error=Say(
        "I couldn't download “{name}” from Slack (HTTP {status}).",
        "file download HTTP {status}",
    ),
    failed=Say(
        "I couldn't download “{name}” from Slack (the connection failed).",
        "file download {error}",
    ),
    too_many_redirects=Say("I couldn't download “{name}” from Slack (too many redirects)."),
    too_large=Say(
        "“{name}” is {size_mb:.1f} MB; I can take files up to {limit_mb:.0f} MB.",
        "file too large: {size} > {limit} bytes",
    ),
    larger_than_declared=Say(
        "“{name}” is larger than Slack said it was, so I did not read it. Please upload it again.",
        "file larger than its declared {cap} bytes",
    ),
)


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
            raise WORDING.over_limit(name, declared, limit)
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
        expected = str(file.get("mimetype") or "").lower()

        def refused(url: str) -> None:
            log.warning(
                "slack: refusing to download %s from %s (not a Slack host)",
                file.get("id") or "a file",
                urlsplit(url).hostname or "an unknown host",
            )

        def check(response: aiohttp.ClientResponse) -> None:
            if response.content_type == "text/html" and expected != "text/html":
                raise _login_page(name)

        data = await download(
            session,
            url,
            name=name,
            cap=cap,
            limit=limit,
            allows=self.host.allows,
            wording=WORDING,
            refused=refused,
            headers={"Authorization": f"Bearer {self._token}"},
            check=check,
        )
        if expected not in ("text/html", "text/plain") and _looks_like_html(data):
            raise _login_page(name)
        return data


def _looks_like_html(data: bytes) -> bool:
    head = data[:512].lstrip().lower()
    return head.startswith(_HTML_STARTS)


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
