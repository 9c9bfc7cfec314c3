"""`python -m bot doctor` checks for Slack: the tokens are accepted, and the bot has its scopes."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.manifest import BOT_SCOPES
from bot.core.config import Settings

Finding = tuple[str, str]  # ("ok" | "warn" | "error", text)


async def check(settings: Settings) -> list[Finding]:
    if settings.slack_bot_token is None:
        return []
    findings: list[Finding] = []
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    try:
        auth = await client.auth_test()
    except SlackApiError as exc:
        return [("error", f"Slack rejected SLACK_BOT_TOKEN ({exc.response.get('error')})")]
    except Exception as exc:
        return [("error", f"cannot reach Slack at {settings.slack_api_url} ({type(exc).__name__})")]
    findings.append(("ok", f"Slack bot token accepted: @{auth.get('user')} in {auth.get('team')}"))
    granted = auth.headers.get("x-oauth-scopes") or auth.headers.get("X-OAuth-Scopes")
    if granted:
        missing = sorted(set(BOT_SCOPES) - {s.strip() for s in granted.split(",")})
        if missing:
            findings.append(
                ("warn", f"the Slack app lacks scopes {', '.join(missing)}: reinstall it from "
                 "`python -m bot manifest slack`")
            )  # fmt: skip
        else:
            findings.append(("ok", "Slack bot scopes complete"))
    if settings.slack_app_token is not None:
        app_client = AsyncWebClient(base_url=settings.slack_api_url)
        try:
            await app_client.apps_connections_open(
                app_token=settings.slack_app_token.get_secret_value()
            )
            findings.append(("ok", "Slack app token accepted (Socket Mode)"))
        except SlackApiError as exc:
            findings.append(
                ("error", f"Slack rejected SLACK_APP_TOKEN ({exc.response.get('error')})")
            )
    elif settings.slack_signing_secret is None:
        findings.append(("error", "Slack needs SLACK_APP_TOKEN or SLACK_SIGNING_SECRET"))
    return findings
