"""Pure tests of the core's one decision whether to answer a message (`bot.core.addressing`),
over the facts the adapters report. The wire tests (test_slack_adapter, test_discord_adapter,
test_assistant_platforms) check the same cases through the real platform clients."""

from __future__ import annotations

import itertools

import pytest

from bot.core.addressing import NO, YES, Verdict, should_answer, verdict
from bot.core.types import Actor, Addressing, Attachment, ConversationKey, Inbound

KEY = ConversationKey("test", "W1", "C1", "T1")
PERSON = Actor("U1")


async def _no_bytes() -> bytes:
    return b""


FILE = Attachment("image", "image/png", "x.png", 1, fetch=_no_bytes)


def event(
    facts: Addressing,
    text: str = "hello",
    *,
    actor: Actor = PERSON,
    is_self: bool = False,
    attachments: tuple[Attachment, ...] = (),
) -> Inbound:
    return Inbound(
        KEY, actor, text, "Ev1", attachments=attachments, addressing=facts, is_self=is_self
    )


BOTH = list(itertools.product((False, True), repeat=2))  # (takes_part, answers_all)


@pytest.mark.parametrize(
    "facts",
    [
        Addressing(mentioned=True),
        Addressing(direct=True),
        Addressing(direct=True, in_thread=True),  # a Slack DM thread, an AI-app thread
        Addressing(mentioned=True, in_thread=True, bot_in_thread=False),
        Addressing(reply_to="42", reply_to_bot=True),  # a Discord reply to the bot
        Addressing(in_thread=True, bot_in_thread=True),  # a Discord thread the bot is in
    ],
)
def test_mentions_dms_replies_to_the_bot_and_its_threads_are_always_answered(
    facts: Addressing,
) -> None:
    assert verdict(event(facts)) == YES
    assert all(should_answer(event(facts), takes_part=p, answers_all=a) for p, a in BOTH)


def test_a_mention_or_dm_is_answered_even_when_empty() -> None:
    """The core explains an empty message to whoever addressed it (Discord drops what arrived
    empty for want of the message-content intent before it gets here)."""
    assert verdict(event(Addressing(mentioned=True), text=" ")) == YES
    assert verdict(event(Addressing(direct=True), text="")) == YES


@pytest.mark.parametrize("facts", [Addressing(), Addressing(in_thread=True)])
def test_an_empty_message_nobody_addressed_is_never_answered(facts: Addressing) -> None:
    assert verdict(event(facts, text=" \n")) == NO
    with_file = event(facts, text="", attachments=(FILE,))
    assert verdict(with_file) != NO  # a file alone is not empty


def test_a_top_level_channel_message_only_with_reply_mode_all() -> None:
    top = event(Addressing())
    assert verdict(top) == Verdict(if_reply_mode_all=True)
    answered = {(p, a): should_answer(top, takes_part=p, answers_all=a) for p, a in BOTH}
    assert answered == {(False, False): False, (True, False): False, (False, True): True,
                        (True, True): True}  # fmt: skip


def test_a_thread_reply_where_the_bot_takes_part_or_with_reply_mode_all() -> None:
    """Slack: no thread membership, so the conversation or the channel's reply_mode decides."""
    reply = event(Addressing(in_thread=True, reply_to="1700000000.000005"))
    assert verdict(reply) == Verdict(if_taking_part=True, if_reply_mode_all=True)
    answered = {(p, a): should_answer(reply, takes_part=p, answers_all=a) for p, a in BOTH}
    assert answered == {(False, False): False, (True, False): True, (False, True): True,
                        (True, True): True}  # fmt: skip


def test_a_thread_the_platform_says_the_bot_is_not_in_needs_its_conversation() -> None:
    """Discord: reply_mode `all` of the parent channel does not pull the bot into a thread it is
    no member of; having answered there does."""
    reply = event(Addressing(in_thread=True, bot_in_thread=False))
    assert verdict(reply) == Verdict(if_taking_part=True)
    answered = {(p, a): should_answer(reply, takes_part=p, answers_all=a) for p, a in BOTH}
    assert answered == {(False, False): False, (True, False): True, (False, True): False,
                        (True, True): True}  # fmt: skip


@pytest.mark.parametrize(
    "facts", [Addressing(mentioned=True), Addressing(direct=True), Addressing(in_thread=True)]
)
def test_the_bots_own_and_other_bots_messages_are_never_answered(facts: Addressing) -> None:
    own = event(facts, is_self=True)
    other = event(facts, actor=Actor("B1", is_bot=True))
    for message in (own, other):
        assert verdict(message) == NO
        assert not any(should_answer(message, takes_part=p, answers_all=a) for p, a in BOTH)


def test_an_event_without_facts_is_a_direct_message() -> None:
    """The console and events read back from the inbox carry no platform facts."""
    bare = Inbound(KEY, PERSON, "hi", "Ev1")
    assert bare.addressing == Addressing(direct=True) and verdict(bare) == YES
