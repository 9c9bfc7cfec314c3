"""Issue 19, item 9: one user cannot fill the queues. Each user holds at most a share of them;
past it only that user is told (privately), everyone else still gets in. Through slack-bolt
against the Slack fake, the OpenAI fake answering slowly so the messages pile up."""

from __future__ import annotations

from pathlib import Path

from testing.fakes import slack_payloads as P
from tests.test_slack_adapter import start_env, stop_env, until


async def test_a_flooding_user_gets_their_share_and_others_still_get_in(tmp_path: Path) -> None:
    env = await start_env(
        tmp_path,
        SWITCHBOARD_MAX_QUEUED_TOTAL=30,
        SWITCHBOARD_BUSY_QUEUED_TOTAL=30,
        SWITCHBOARD_MAX_QUEUED_PER_USER=10,
        SWITCHBOARD_MAX_CONCURRENCY=2,
    )
    try:
        env.openai.latency = 1.0
        roots = [P.app_mention(f"topic {n}") for n in range(4)]
        for root in roots:
            await env.slack.send_event(root)
        for n in range(36):  # Alice: 40 messages in four threads
            root = roots[n % 4]
            await env.slack.send_event(P.app_mention(f"more {n}", thread_ts=root["ts"]))
        await until(lambda: len(env.submitted) == 40, 10)
        bob = P.app_mention("hello, anyone there?", user="UBOB")
        await env.slack.send_event(bob)
        await env.settle(41, seconds=60)

        # Bob was not told "too busy": he was answered.
        assert env.bot_texts(P.CHANNEL_ID, bob["ts"]) == ["echo: hello, anyone there?"]
        told = [m for m in env.slack.ephemeral if "messages waiting for me" in m["text"]]
        assert told and all(m["user"] == P.USER_ID for m in told)  # privately, to Alice only
        assert len(env.openai.turns) < 41  # not all of Alice's flood was taken
        too_busy = [
            m for ch in env.slack.messages.values() for m in ch if "too busy" in m.get("text", "")
        ]
        assert too_busy == []
    finally:
        await stop_env(env)
