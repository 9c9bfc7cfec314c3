"""Issue #16 end to end: three `python -m bot` processes in Slack's HTTP mode share one real
PostgreSQL database behind a round-robin "load balancer" (this test). Slack's own retry
behaviour is played too: some deliveries are retried on another process (same event id, with
X-Slack-Retry-Num), and a delivery to a dead process is retried on the next one. One process is
killed with SIGKILL while answers are in flight. Every message ends with exactly one outcome
(its answer, or a notice that it was interrupted), per thread in the order sent, and the
survivors take over the dead process's work within SWITCHBOARD_REPLICA_TIMEOUT (here 4 s)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from bot.core.recovery import INTERRUPTED
from storage.connect import open_database
from testing.fakes import slack_payloads as payloads
from testing.fakes.openai_fake import FakeOpenAI, FakeTurn
from testing.fakes.slack_fake import FakeSlack
from testing.postgres import PostgresServer, free_port
from testing.waiting import until
from tests.test_cli import bot_env
from tests.test_crash_recovery import Bot

pytestmark = pytest.mark.slow

THREADS = 6
PER_THREAD = 4


def answer_for(turn: FakeTurn) -> str:
    text = turn.user_text  # the message's own words, without the speaker's name
    words = " ".join(f"w{n}" for n in range(40))
    return f"answer to {text.split()[0]} {words}"


class Balancer:
    """Round-robin over the processes' event URLs; a process that does not answer is skipped
    (as a load balancer's health check, or Slack's retry, would)."""

    def __init__(self, slack: FakeSlack, urls: list[str]) -> None:
        self.slack = slack
        self.urls = urls
        self.turn = 0
        self.acked: list[int] = []  # which process acknowledged each delivery

    async def deliver(self, body: dict, *, retry: int | None = None) -> None:
        for _ in range(len(self.urls)):
            index = self.turn % len(self.urls)
            self.turn += 1
            try:
                status, _ = await self.slack.deliver_http(
                    self.urls[index],
                    body,
                    retry_num=retry,
                    retry_reason=None if retry is None else "http_timeout",
                )
            except aiohttp.ClientError:
                continue
            if status == 200:
                self.acked.append(index)
                return
        raise AssertionError("no process took the event")


async def test_three_processes_share_the_work_and_survive_a_kill_9(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    url = postgres.create_database()
    async with FakeOpenAI(latency=0.05, delta_delay=0.03) as openai_fake, FakeSlack() as slack:
        openai_fake.answer = answer_for
        ports = [free_port() for _ in range(3)]
        bots = await asyncio.gather(
            *(
                Bot.start(
                    bot_env(
                        openai_fake,
                        tmp_path,
                        DATABASE_URL=url,
                        SLACK_BOT_TOKEN=slack.bot_token,
                        SLACK_SIGNING_SECRET=slack.signing_secret,
                        SLACK_API_URL=slack.api_url,
                        SLACK_PORT=str(port),
                        SWITCHBOARD_REPLICA_TIMEOUT="4",
                    ),
                    tmp_path,
                )
                for port in ports
            )
        )
        balancer = Balancer(slack, [f"http://127.0.0.1:{p}/slack/events" for p in ports])
        inbox = await open_database(url)  # the test's own look at the shared database

        sent: dict[str, str] = {}  # message id -> its thread
        order: dict[str, list[str]] = {}  # thread -> message ids in the order sent
        threads: list[str] = []

        async def send(n: int, thread: int) -> None:
            name = f"m{n}"
            if thread >= len(threads):
                event = payloads.app_mention(f"{name} question")
                threads.append(event["ts"])
            else:
                event = payloads.app_mention(f"{name} question", thread_ts=threads[thread])
            body = slack.build_event_callback(event)
            sent[name] = threads[thread]
            order.setdefault(threads[thread], []).append(name)
            await balancer.deliver(body)
            if n % 4 == 1:  # Slack did not see the ack in time and retries elsewhere
                await balancer.deliver(body, retry=1)
            # The order kept is the order accepted (recorded in the inbox). Slack's HTTP ack
            # comes before that (bolt acks events first), so before the user's next message
            # in this thread, wait until this one is on record.
            for _ in range(300):
                if await inbox.fetch_one(
                    "SELECT 1 FROM processed_events WHERE event_id = ?", (body["event_id"],)
                ):
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError(f"{name} was acknowledged but never recorded")

        n = 0
        for _ in range(2):  # the first two messages of every thread
            for thread in range(THREADS):
                await send(n, thread)
                n += 1

        await until(lambda: len(slack.streams) >= 3, 60, "answers streaming")
        await bots[0].kill()  # with answers in flight and messages queued
        for _ in range(2, PER_THREAD):
            for thread in range(THREADS):
                await send(n, thread)
                n += 1

        def outcomes() -> tuple[dict[str, int], dict[str, int], dict[str, list[str]]]:
            answers: dict[str, int] = {}
            notices: dict[str, int] = {}
            answered_in: dict[str, list[str]] = {}
            for message in slack.messages.get(payloads.CHANNEL_ID, []):  # in ts order
                if not message.get("bot_id"):
                    continue
                text = message.get("text") or ""
                stream = slack.streams.get(message["ts"])
                finished = stream is None or stream.state == "stopped"
                if text.startswith("answer to m") and finished:
                    name = text.split()[2]
                    answers[name] = answers.get(name, 0) + 1
                    answered_in.setdefault(message.get("thread_ts") or "", []).append(name)
                elif text == INTERRUPTED:
                    thread = message["thread_ts"]
                    notices[thread] = notices.get(thread, 0) + 1
            return answers, notices, answered_in

        def told() -> bool:
            answers, notices, _ = outcomes()
            return sum(answers.values()) + sum(notices.values()) >= len(sent)

        await until(told, 120, "every message answered or told")
        try:
            for _ in range(600):
                row = await inbox.fetch_one(
                    "SELECT count(*) FROM processed_events WHERE done_at IS NULL "
                    "AND payload IS NOT NULL"
                )
                if row is not None and row[0] == 0:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("events left unfinished in the inbox")
        finally:
            await inbox.close()
        await asyncio.sleep(1.0)  # a late duplicate would show now
        answers, notices, answered_in = outcomes()
        for bot in bots[1:]:
            assert await bot.stop() == 0, "".join(bot.lines)[-3000:]

    assert len(sent) == THREADS * PER_THREAD
    assert all(count == 1 for count in answers.values()), answers  # none answered twice
    assert sum(answers.values()) + sum(notices.values()) == len(sent)  # none lost
    for thread, names in order.items():
        got = answered_in.get(thread, [])
        assert got == [name for name in names if name in got], (thread, got, names)  # in order
        assert len(got) + notices.get(thread, 0) == len(names)
    assert set(balancer.acked) == {0, 1, 2}  # every process took deliveries
    took_over = "".join(line for bot in bots[1:] for line in bot.lines)
    assert "took over" in took_over
    assert postgres.password not in took_over  # the database password never reaches a log
