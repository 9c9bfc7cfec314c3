"""The capped, host-checked download loop both platforms' attachment downloads share.

- only URLs the platform allows (`allows`), checked again at every redirect hop: redirects are
  followed by hand, at most `MAX_REDIRECTS`, and a redirect without a `Location` ends the chase;
- at most `cap` bytes (the attachment's declared size, else the platform's limit): a
  `Content-Length` over it is refused before reading, and reading stops as soon as the body
  passes it, so a file larger than the platform said is never read whole;
- every failure is a `UserError` in the platform's own words (`Wording`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import aiohttp

from bot.core.errors import UserError

MAX_REDIRECTS = 3
DOWNLOAD_TIMEOUT = 120.0
CHUNK = 64 * 1024
MB = 1024 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True, slots=True)
class Say:
    """One failure's message and its log detail, as `str.format` templates."""

    text: str
    detail: str = ""

    def error(self, **values: Any) -> UserError:
        return UserError(self.text.format(**values), log_detail=self.detail.format(**values))


@dataclass(frozen=True, slots=True)
class Wording:
    """A platform's words for each failure. Fields: `{name}` always; `{status}` (HTTP status),
    `{error}` (exception type), `{size}`/`{limit}` (bytes) with `{size_mb}`/`{limit_mb}`,
    `{cap}` (the declared size, in bytes)."""

    not_allowed: Say
    http_error: Say
    failed: Say
    too_many_redirects: Say
    too_large: Say
    larger_than_declared: Say

    def over_limit(self, name: str, size: int, limit: int) -> UserError:
        return self.too_large.error(
            name=name, size=size, limit=limit, size_mb=size / MB, limit_mb=limit / MB
        )

    def refusal(self, name: str, size: int, cap: int, limit: int) -> UserError:
        """`size` bytes are over `cap`: a lie about the size when the declared size was the cap,
        else a file over the limit."""
        if cap < limit:
            return self.larger_than_declared.error(name=name, cap=cap)
        return self.over_limit(name, size, limit)


async def download(
    session: aiohttp.ClientSession,
    url: str,
    *,
    name: str,
    cap: int,
    limit: int,
    allows: Callable[[str], bool],
    wording: Wording,
    refused: Callable[[str], None] = lambda url: None,
    headers: Mapping[str, str] | None = None,
    check: Callable[[aiohttp.ClientResponse], None] | None = None,
) -> bytes:
    """The body at `url` (see the module docstring). `refused` is told a URL that is not
    allowed (to log it); `check` may raise on a 200 response before its body is read."""
    timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT)
    for _ in range(MAX_REDIRECTS + 1):
        if not allows(url):
            refused(url)
            raise wording.not_allowed.error(name=name)
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
                    raise wording.http_error.error(name=name, status=response.status)
                if check is not None:
                    check(response)
                length = response.content_length
                if length is not None and length > cap:
                    raise wording.refusal(name, length, cap, limit)
                data = bytearray()
                async for chunk in response.content.iter_chunked(CHUNK):
                    data += chunk
                    if len(data) > cap:
                        raise wording.refusal(name, len(data), cap, limit)
                return bytes(data)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise wording.failed.error(name=name, error=type(exc).__name__) from None
    raise wording.too_many_redirects.error(name=name)
