"""`python -m bot doctor` checks for Discord: the token is accepted, and which intents the
application has (message content decides whether thread messages need a mention)."""

from __future__ import annotations

import aiohttp

from bot.core.config import Settings

Finding = tuple[str, str]  # ("ok" | "warn" | "error", text)

# Application flags: GATEWAY_MESSAGE_CONTENT and GATEWAY_MESSAGE_CONTENT_LIMITED.
MESSAGE_CONTENT_FLAGS = (1 << 18) | (1 << 19)


async def check(settings: Settings) -> list[Finding]:
    if settings.discord_token is None:
        return []
    base = settings.discord_api_url.rstrip("/")
    headers = {"Authorization": f"Bot {settings.discord_token.get_secret_value()}"}
    timeout = aiohttp.ClientTimeout(total=15)
    try:
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
            async with session.get(f"{base}/users/@me") as response:
                if response.status == 401:
                    return [("error", "Discord rejected DISCORD_TOKEN (401)")]
                response.raise_for_status()
                user = await response.json()
            async with session.get(f"{base}/oauth2/applications/@me") as response:
                response.raise_for_status()
                application = await response.json()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [("error", f"cannot reach Discord at {base} ({type(exc).__name__})")]
    findings: list[Finding] = [("ok", f"Discord token accepted: {user.get('username')}")]
    if int(application.get("flags") or 0) & MESSAGE_CONTENT_FLAGS:
        findings.append(("ok", "Discord message content intent enabled"))
    else:
        findings.append(
            ("warn", "Discord message content intent is off: the bot answers mentions, DMs and "
             "slash commands only (enable it under Bot → Privileged Gateway Intents)")
        )  # fmt: skip
    return findings
