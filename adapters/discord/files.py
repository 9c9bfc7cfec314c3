"""Attachment downloads from Discord's CDN, streamed with a cap.

discord.py's `Attachment.read()` reads the whole body into memory whatever its size and follows
redirects anywhere; this reads it ourselves:
- only from Discord's CDN hosts (`cdn.discordapp.com`, `media.discordapp.net`, over https) or
  the host of the configured `DISCORD_API_URL` (same scheme and port: a proxy or a test fake);
- redirects followed by hand, each hop checked (at most 3);
- at most `min(declared size, limit)` bytes: a body longer than the attachment's declared size
  (or a `Content-Length` over it) is refused without reading the rest.
The loop is `adapters.downloads.download`, in Discord's words (`WORDING`). No token is sent:
attachment URLs are signed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp
import discord

from adapters.downloads import Say, Wording, download
from bot.core.errors import UserError

log = logging.getLogger(__name__)

CDN_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})
WORDING = Wording(
    not_allowed=Say(
        "I couldn't download “{name}”: it is not stored on Discord.",
        "attachment host refused",
    ),
    http_error=Say(
        "I could not download “{name}” from Discord (HTTP {status}). "
        "Please try uploading it again.",
        "attachment download HTTP {status}",
    ),
    failed=Say(
        "I could not download “{name}” from Discord. Please try uploading it again.",
        "attachment download {error}",
    ),
    too_many_redirects=Say("I couldn't download “{name}” from Discord (too many redirects)."),
    too_large=Say(
        "“{name}” is {size_mb:.1f} MB; I take files up to {limit_mb:.0f} MB. "
        "Please send a smaller one.",
        "attachment over {limit} bytes",
    ),
    larger_than_declared=Say(
        "“{name}” is larger than Discord said it was, so I did not read it. "
        "Please upload it again.",
        "attachment larger than its declared {cap} bytes",
    ),
)


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return None
    return scheme, (parts.hostname or "").lower(), port


class DiscordCdn:
    def __init__(
        self,
        api_url: str = "https://discord.com/api/v10",
        *,
        session: Callable[[], aiohttp.ClientSession] | None = None,
    ) -> None:
        self.api_origin = _origin(api_url)
        self._session_factory = session

    @classmethod
    def current(cls) -> DiscordCdn:
        """The CDN policy for the API base discord.py is pointed at (`apply_endpoints`)."""
        return cls(str(discord.http.Route.BASE))

    def allows(self, url: str) -> bool:
        origin = _origin(url)
        if origin is None or not origin[1]:
            return False
        if origin == ("https", origin[1], 443) and origin[1] in CDN_HOSTS:
            return True
        return origin == self.api_origin

    async def download(self, url: str, name: str, *, limit: int, declared: int = 0) -> bytes:
        """The attachment's bytes, or a `UserError` (refused host, too large, size lie)."""
        cap = min(declared, limit) if declared > 0 else limit
        if self._session_factory is not None:
            return await self._get(self._session_factory(), url, name, cap, limit)
        async with aiohttp.ClientSession() as session:
            return await self._get(session, url, name, cap, limit)

    async def _get(
        self, session: aiohttp.ClientSession, url: str, name: str, cap: int, limit: int
    ) -> bytes:
        return await download(
            session,
            url,
            name=name,
            cap=cap,
            limit=limit,
            allows=self.allows,
            wording=WORDING,
            refused=_log_refused,
        )


def _log_refused(url: str) -> None:
    origin = _origin(url)
    log.warning(
        "discord: refusing to download an attachment from %s (not Discord's CDN)",
        origin[1] if origin else "an unparsable URL",
    )


def too_large(name: str, size: int, limit: int) -> UserError:
    return WORDING.over_limit(name, size, limit)
