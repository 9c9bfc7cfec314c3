"""Attachment downloads from Discord's CDN, streamed with a cap.

discord.py's `Attachment.read()` reads the whole body into memory whatever its size and follows
redirects anywhere; this reads it ourselves:
- only from Discord's CDN hosts (`cdn.discordapp.com`, `media.discordapp.net`, over https) or
  the host of the configured `DISCORD_API_URL` (same scheme and port: a proxy or a test fake);
- redirects followed by hand, each hop checked (at most 3);
- at most `min(declared size, limit)` bytes: a body longer than the attachment's declared size
  (or a `Content-Length` over it) is refused without reading the rest.
No token is sent: attachment URLs are signed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urljoin, urlsplit

import aiohttp
import discord

from bot.core.errors import UserError

log = logging.getLogger(__name__)

CDN_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})
MAX_REDIRECTS = 3
DOWNLOAD_TIMEOUT = 120.0
CHUNK = 64 * 1024
MB = 1024 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)


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
        timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT)
        for _ in range(MAX_REDIRECTS + 1):
            if not self.allows(url):
                origin = _origin(url)
                log.warning(
                    "discord: refusing to download an attachment from %s (not Discord's CDN)",
                    origin[1] if origin else "an unparsable URL",
                )
                raise UserError(
                    f"I couldn't download “{name}”: it is not stored on Discord.",
                    log_detail="attachment host refused",
                )
            try:
                async with session.get(url, allow_redirects=False, timeout=timeout) as response:
                    if response.status in _REDIRECTS:
                        url = urljoin(url, response.headers.get("Location", ""))
                        continue
                    if response.status != 200:
                        raise UserError(
                            f"I could not download “{name}” from Discord (HTTP "
                            f"{response.status}). Please try uploading it again.",
                            log_detail=f"attachment download HTTP {response.status}",
                        )
                    length = response.content_length
                    if length is not None and length > cap:
                        raise _refusal(name, length, cap, limit)
                    data = bytearray()
                    async for chunk in response.content.iter_chunked(CHUNK):
                        data += chunk
                        if len(data) > cap:
                            raise _refusal(name, len(data), cap, limit)
                    return bytes(data)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise UserError(
                    f"I could not download “{name}” from Discord. Please try uploading it again.",
                    log_detail=f"attachment download {type(exc).__name__}",
                ) from None
        raise UserError(f"I couldn't download “{name}” from Discord (too many redirects).")


def too_large(name: str, size: int, limit: int) -> str:
    return (
        f"“{name}” is {size / MB:.1f} MB; I take files up to {limit / MB:.0f} MB. "
        "Please send a smaller one."
    )


def _refusal(name: str, size: int, cap: int, limit: int) -> UserError:
    if cap < limit:  # the declared size was the cap: the file is not what Discord said
        return UserError(
            f"“{name}” is larger than Discord said it was, so I did not read it. "
            "Please upload it again.",
            log_detail=f"attachment larger than its declared {cap} bytes",
        )
    return UserError(too_large(name, size, limit), log_detail=f"attachment over {limit} bytes")
