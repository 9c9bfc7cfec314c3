"""The Slack adapter: a slack-bolt `AsyncApp` on Socket Mode or the HTTP Events API.

Listeners never wait for an answer: events are acknowledged by bolt before the listener runs
(commands acknowledge first thing), the listener normalises the payload and calls
`Dispatcher.submit`, which returns at once. The adapter only reports facts (mention, DM, thread):
the core decides which messages it answers. Answers come back through `SlackOutbox`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.middleware.authorization.async_single_team_authorization import (
    AsyncSingleTeamAuthorization,
)
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import normalise
from adapters.slack.commands import AdminCache, SlackCommands
from adapters.slack.delivery_retry import retry_handlers
from adapters.slack.errors import describe
from adapters.slack.files import FileLimits, SlackFiles
from adapters.slack.history import SlackHistory
from adapters.slack.outbox import SlackOutbox
from bot.core.config import ConfigError, Settings

if TYPE_CHECKING:
    from bot.core.dispatcher import Dispatcher

log = logging.getLogger("adapters.slack")

EVENTS_PATH = "/slack/events"
SUGGESTED_PROMPTS = (
    {"title": "Summarise", "message": "Summarise this for me in five bullet points:"},
    {"title": "Explain code", "message": "Explain what this code does, step by step:"},
    {"title": "Draft a reply", "message": "Help me write a friendly, short reply to:"},
)


class _InfoToDebug(logging.Filter):
    """slack-sdk's Socket Mode client logs every (re)connection at INFO; the adapter logs its
    own one line when ready, so those become DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


class _DropMessage(logging.Filter):
    def __init__(self, message: str) -> None:
        super().__init__()
        self._message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self._message


def _socket_logger() -> logging.Logger:
    logger = logging.getLogger("adapters.slack.socket")
    if not any(isinstance(f, _InfoToDebug) for f in logger.filters):
        logger.addFilter(_InfoToDebug())
    return logger


def make_client(
    settings: Settings, token: str, on_429: Callable[[], None] | None = None
) -> AsyncWebClient:
    """The one Web API client: `SLACK_API_URL`, with the retry handlers of
    `adapters.slack.delivery_retry` (429 honouring Retry-After, server errors, dropped connections)."""
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        retry_handlers=retry_handlers(
            settings.delivery_retries, settings.delivery_retry_wait, on_429
        ),
        logger=logging.getLogger("adapters.slack.web"),
    )


class SlackAdapter:
    name = "Slack"

    def __init__(
        self,
        settings: Settings,
        dispatcher: Dispatcher,
        *,
        http_host: str = "0.0.0.0",
        max_file_bytes: int | None = None,
        max_audio_bytes: int | None = None,
    ) -> None:
        if settings.slack_bot_token is None or not settings.slack_bot_token.get_secret_value():
            raise ConfigError("SLACK_BOT_TOKEN is not set")
        self._settings = settings
        self._dispatcher = dispatcher
        self._http_host = http_host
        app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
        secret = (
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret
            else ""
        )
        if not app_token and not secret:
            raise ConfigError(
                "Slack needs SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP Events "
                "API) besides SLACK_BOT_TOKEN"
            )
        self.socket_mode = bool(app_token)
        self._app_token = app_token
        token = settings.slack_bot_token.get_secret_value()
        self.client = make_client(
            settings, token, on_429=lambda: dispatcher.presence.rate_limited(self.name)
        )
        self._session: aiohttp.ClientSession | None = None
        limits = FileLimits.load()
        self.files = SlackFiles(
            token,
            settings.slack_api_url,
            max_bytes=max_file_bytes or limits.max_bytes,
            max_audio_bytes=max_audio_bytes or limits.max_audio_bytes,
            session=self._http_session,
        )
        self.outbox = SlackOutbox(self.client)
        self._admins = AdminCache(self.client)
        self.identity = normalise.BotIdentity(user_id="")
        self.history = SlackHistory(self.client, lambda: self.identity, self.files.fetcher)
        bolt_logger = logging.getLogger("adapters.slack.bolt")
        quiet = _DropMessage(warning_client_prioritized_and_token_skipped())
        bolt_logger.addFilter(quiet)  # bolt also reads $SLACK_BOT_TOKEN and warns it is unused
        try:
            self.app = AsyncApp(
                client=self.client,
                signing_secret=secret,
                name="switchboard",
                logger=bolt_logger,
                attaching_conversation_kwargs_enabled=False,
            )
        finally:
            bolt_logger.removeFilter(quiet)
        self._register()
        self._handler: AsyncSocketModeHandler | None = None
        self._runner: web.AppRunner | None = None
        self.http_port: int | None = None

    # -- wiring --------------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.event("app_mention")(self._on_message)
        app.event("message")(self._on_message)
        app.event("assistant_thread_started")(self._on_assistant_thread_started)
        app.event("assistant_thread_context_changed")(self._on_ignored)
        app.event("app_home_opened")(self._on_ignored)
        SlackCommands(self._dispatcher, self.outbox, self.files, self._admins).register(app)

    def _http_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self.client.session = self._session
        return self._session

    # -- listeners -----------------------------------------------------------------------------

    async def _on_message(self, body: dict) -> None:
        inbound = normalise.message_event(body, self.identity, self.files.fetcher)
        if inbound is None:
            return
        if not inbound.addressing.direct:  # names and earlier messages, read if the core asks
            inbound = replace(inbound, context=self.history.fetcher(inbound))
        try:
            if inbound.text.lstrip().startswith("/"):  # a command spelt in a message
                admin = await self._admins.is_admin(inbound.actor.id)
                inbound = replace(inbound, actor=replace(inbound.actor, is_admin=admin))
            await self._dispatcher.submit(inbound)
        except Exception as exc:
            log.error(
                "slack: could not hand event %s at %s to the dispatcher: %s",
                inbound.event_id,
                inbound.key,
                type(exc).__name__,
            )

    async def _on_assistant_thread_started(self, body: dict) -> None:
        thread = normalise.assistant_thread(body)
        if thread is None:
            return
        try:
            await self.client.assistant_threads_setSuggestedPrompts(
                channel_id=thread.channel,
                thread_ts=thread.thread_ts,
                prompts=list(SUGGESTED_PROMPTS),
            )
        except SlackApiError as exc:
            log.warning("slack: could not set suggested prompts: %s", describe(exc))

    async def _on_ignored(self, body: dict) -> None:
        return None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._http_session()
        try:
            auth = await self.client.auth_test()
        except SlackApiError as exc:
            raise ConfigError(
                f"Slack rejected SLACK_BOT_TOKEN ({exc.response.get('error')})"
            ) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise ConfigError(
                f"could not reach Slack at {self._settings.slack_api_url} ({type(exc).__name__})"
            ) from None
        self.identity = normalise.BotIdentity(
            user_id=str(auth.get("user_id") or ""),
            bot_id=str(auth.get("bot_id") or ""),
            team_id=str(auth.get("team_id") or ""),
        )
        self._prime_bolt_authorization(auth)
        self._dispatcher.register_outbox(normalise.PLATFORM, self.outbox)
        if self.socket_mode:
            await self._start_socket_mode()
            self._dispatcher.presence.watch(self.name, self._socket_alive)
            how = "Socket Mode"
        else:
            await self._start_http()
            how = f"HTTP Events API at :{self.http_port}{EVENTS_PATH}"
        self._dispatcher.presence.report(self.name, True)
        log.info(
            "slack: connected (%s) as @%s in %s (%s)",
            how,
            auth.get("user") or self.identity.user_id,
            auth.get("team") or "?",
            self.identity.team_id,
        )

    def _prime_bolt_authorization(self, auth: Any) -> None:
        """Bolt calls auth.test on the first event, before acknowledging it; hand it the result
        we already have so no Web API call ever stands between a delivery and its ack."""
        for middleware in getattr(self.app, "_async_middleware_list", ()):
            if isinstance(middleware, AsyncSingleTeamAuthorization):
                middleware.auth_test_result = auth

    async def _start_socket_mode(self) -> None:
        self._handler = AsyncSocketModeHandler(
            self.app,
            self._app_token,
            logger=_socket_logger(),
        )
        try:
            await self._handler.connect_async()
        except SlackApiError as exc:
            await self._close_handler()
            raise ConfigError(
                f"Slack rejected SLACK_APP_TOKEN ({exc.response.get('error')}); it needs the "
                "connections:write scope"
            ) from None

    async def _start_http(self) -> None:
        web_app = self.app.web_app(path=EVENTS_PATH, port=self._settings.slack_port)
        self._runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._http_host, self._settings.slack_port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise ConfigError(
                f"cannot listen on SLACK_PORT {self._settings.slack_port}: {exc.strerror}"
            ) from None
        self.http_port = self._runner.addresses[0][1]

    async def _socket_alive(self) -> bool:
        """Whether the Socket Mode connection is open and answering pings."""
        return self._handler is not None and await self._handler.client.is_connected()

    async def close(self) -> None:
        self._dispatcher.presence.report(self.name, False, "stopped")
        await self._close_handler()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def _close_handler(self) -> None:
        if self._handler is not None:
            handler, self._handler = self._handler, None
            await handler.close_async()
