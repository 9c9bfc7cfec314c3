"""The scale-out files agree with each other and with the bot: docker-compose.yml (PostgreSQL,
two Slack HTTP replicas, nginx) and deploy/nginx.conf. No Docker here: read, not run."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.core.config import load_settings
from storage.connect import is_postgres, postgres_target

ROOT = Path(__file__).resolve().parent.parent


def test_the_compose_file_runs_two_slack_replicas_on_postgres_behind_nginx() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "bot1", "bot2", "lb"} <= set(services)
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    upstream = set(re.findall(r"server (\w+):(\d+)", nginx))
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name in ("bot1", "bot2"):
        bot = services[name]
        env = bot["environment"]
        url = env["DATABASE_URL"].replace("${POSTGRES_PASSWORD:-switchboard}", "pw")
        assert is_postgres(url) and postgres_target(url).where.endswith(
            "@postgres:5432/switchboard"
        )
        settings = load_settings(DATABASE_URL=url, SLACK_PORT=env["SLACK_PORT"])
        assert settings.uses_postgres and "pw" in settings.secrets()  # redacted from logs
        assert (name, env["SLACK_PORT"]) in upstream
        assert env["SWITCHBOARD_HTTP_PORT"] == "8080" and "HEALTHCHECK" in dockerfile
        assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services["lb"]["depends_on"][name]["condition"] == "service_healthy"
    assert "proxy_next_upstream" in nginx and "location /slack/" in nginx
