"""The bot's own HTTP server (`SWITCHBOARD_HTTP_PORT`): liveness, readiness and metrics for an
orchestrator and Prometheus. It serves nothing else (Slack's HTTP events have their own port,
`SLACK_PORT`), and answers on every path without touching OpenAI or a chat platform.

- `GET /healthz`: 200 while the process runs (its event loop answers).
- `GET /readyz`: 200 once every configured adapter is connected and storage answers; 503 with a
  one-line JSON reason otherwise (during start-up, a platform reconnect, a database outage).
- `GET /metrics`: Prometheus text format (`bot.ops.metrics`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.ops.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

# None when ready, else why not (one line, no secret).
Readiness = Callable[[], Awaitable[str | None]]
BeforeScrape = Callable[[], Awaitable[None]]


class OpsServer:
    def __init__(
        self,
        port: int,
        metrics: Metrics,
        readiness: Readiness,
        before_scrape: BeforeScrape | None = None,
        host: str = "0.0.0.0",
    ) -> None:
        self._port = port
        self._host = host
        self._metrics = metrics
        self._readiness = readiness
        self._before_scrape = before_scrape
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The port listened on (the real one when 0 was asked for)."""
        if self._runner is not None:
            for site in self._runner.sites:
                server = getattr(site, "_server", None)
                if server is not None and server.sockets:
                    return int(server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        log.info("ops: /healthz, /readyz and /metrics on port %d", self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        try:
            reason = await self._readiness()
        except Exception as exc:
            reason = f"readiness check failed: {type(exc).__name__}"
        if reason is None:
            return web.json_response({"status": "ready"})
        return web.Response(
            status=503,
            text=json.dumps({"status": "not ready", "reason": reason}),
            content_type="application/json",
        )

    async def _metrics_page(self, request: web.Request) -> web.Response:
        if self._before_scrape is not None:
            try:
                await self._before_scrape()
            except Exception as exc:
                log.warning("ops: refreshing gauges before a scrape failed: %s", type(exc).__name__)
        return web.Response(body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})
