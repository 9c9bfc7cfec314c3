"""Context that never overflows (issue 14): the OpenAI fake's context window (the real 400
`context_length_exceeded`, truncation, compaction, POST /v1/responses/compact) driven by the
real `openai` client, and both backends of the real app keeping long conversations inside a
small window: compacting, summarising, recovering from the error instead of showing it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from bot.backends.chat_completions import SUMMARISE
from bot.backends.context import ContextBudget
from bot.backends.history import SUMMARY_MARK
from testing.fakes.openai_fake import FakeOpenAI, FakeTurn, default_answer
from tests.harness import Harness, make_settings

MODEL = "gpt-6.1-terra"
WINDOW = 4_000
LONG = "x" * 780  # with its number, a message of ~800 characters (~200 tokens)


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0) as c:
        yield c


def message(n: int) -> dict:
    return {"role": "user", "content": f"m{n} {LONG}"}


async def small_window_bot(
    fake: FakeOpenAI, tmp_path: Path, backend: str, **env: object
) -> Harness:
    fake.context_window = WINDOW
    settings = make_settings(
        fake.base_url,
        tmp_path,
        SWITCHBOARD_BACKEND=backend,
        SWITCHBOARD_CONTEXT_WINDOWS=f"{MODEL}={WINDOW}",
        **env,
    )
    return await Harness.start(settings)


async def steps_of(bot: Harness) -> list[tuple[str, str]]:
    rows = await bot.app.db.fetch_all("SELECT kind, title FROM run_steps ORDER BY run_id, position")
    return [(row["kind"], row["title"]) for row in rows]


async def close(bot: Harness) -> list[tuple[str, str]]:
    """Close the bot; the steps it recorded."""
    steps = await steps_of(bot)
    await bot.close()
    return steps


# --------------------------------------------------------------------------- the fake, at the wire


async def test_the_fake_refuses_an_input_over_its_window_like_openai(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.context_window = 1_000
    too_long = [message(n) for n in range(10)]
    with pytest.raises(openai.BadRequestError) as responses_error:
        await client.responses.create(model=MODEL, input=too_long)  # type: ignore[arg-type]
    assert responses_error.value.code == "context_length_exceeded"
    assert responses_error.value.param == "input"
    with pytest.raises(openai.BadRequestError) as chat_error:
        await client.chat.completions.create(model=MODEL, messages=too_long)  # type: ignore[arg-type]
    assert chat_error.value.code == "context_length_exceeded"
    assert "maximum context length is 1000 tokens" in chat_error.value.message
    assert fake.context_errors == 2

    # truncation "auto" drops the oldest items instead
    response = await client.responses.create(model=MODEL, input=too_long, truncation="auto")  # type: ignore[arg-type]
    assert response.output_text.startswith("echo: m9 ")
    (turn,) = fake.turns  # the refused requests never reached the "model"
    assert turn.truncated and turn.input_tokens <= 1_000
    assert [text.split()[0] for _, text in turn.messages] == ["m5", "m6", "m7", "m8", "m9"]


async def test_the_fake_compacts_a_conversation_past_its_threshold(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.context_window = 2_000
    conversation = await client.conversations.create()
    policy = [{"type": "compaction", "compact_threshold": 1_000}]
    compacted_at = []
    for n in range(12):
        response = await client.responses.create(
            model=MODEL,
            conversation=conversation.id,
            input=[message(n)],  # type: ignore[list-item]
            context_management=policy,  # type: ignore[arg-type]
        )
        kinds = [item.type for item in response.output]
        if "compaction" in kinds:
            compacted_at.append(n)
            assert kinds == ["compaction", "message"]
        assert response.output_text == f"echo: m{n} {LONG}"
    assert compacted_at and fake.context_errors == 0
    assert all(t.input_tokens <= 2_000 for t in fake.turns)
    # later turns start from the compaction item: the earlier messages are no longer read
    last = fake.turns[-1]
    assert last.compacted and len(last.messages) < 12
    stored = [i["type"] for i in fake.conversations[conversation.id]]
    assert stored.count("compaction") == len(compacted_at)

    # the same conversation without compaction or truncation would be refused
    fake.honour_context_management = False
    items = [message(n) for n in range(12)]
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(model=MODEL, input=items, context_management=policy)  # type: ignore[arg-type]


async def test_compact_endpoint_keeps_recent_user_messages_and_one_compaction_item(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.context_window = 2_000
    items = []
    for n in range(10):
        items += [message(n), {"role": "assistant", "content": f"answer {n}"}]
    compacted = await client.responses.compact(model=MODEL, input=items)  # type: ignore[arg-type]
    kinds = [item.type for item in compacted.output]
    assert kinds[-1] == "compaction" and set(kinds[:-1]) == {"message"}
    assert 0 < len(kinds) - 1 < 10  # the most recent user messages within a quarter window
    assert compacted.usage.input_tokens > 0
    assert fake.compactions == [{"via": "compact", "items": 20, "kept": len(kinds) - 1}]
    fake.compact_endpoint = False
    with pytest.raises(openai.NotFoundError):
        await client.responses.compact(model=MODEL, input=items)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the bot


@pytest.mark.parametrize("backend", ["responses", "chat"])
async def test_a_long_conversation_in_a_small_window_is_always_answered(
    fake: FakeOpenAI, tmp_path: Path, backend: str
) -> None:
    bot = await small_window_bot(fake, tmp_path, backend)
    try:
        for n in range(40):
            assert await bot.say(f"m{n} {LONG}") == f"echo: m{n} {LONG}"
        rows = await bot.app.db.fetch_all("SELECT content FROM messages")
    finally:
        steps = await close(bot)
    assert fake.context_errors == 0
    kinds = {kind for kind, _ in steps}
    assert "compaction" in kinds
    budget = ContextBudget(WINDOW)
    answers = [r.json for r in fake.requests if r.path.endswith(("/responses", "/completions"))]
    if backend == "responses":
        assert all(
            body["context_management"]
            == [{"type": "compaction", "compact_threshold": budget.compact_threshold}]
            and body["truncation"] == "auto"
            for body in answers
        )
        assert fake.compactions and {c["via"] for c in fake.compactions} == {"context_management"}
    else:
        # the history is summarised, not dropped: a summary is stored and sent after it
        summaries = [t for t in fake.turns if t.instructions == SUMMARISE]
        assert summaries
        assert "Summary of the earlier conversation" in (fake.turns[-1].instructions or "")
        assert any(row["content"].startswith(SUMMARY_MARK) for row in rows)


async def test_chat_summary_is_made_by_the_model_and_carried_forward(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    made: list[FakeTurn] = []

    def answer(turn: FakeTurn) -> str:
        if turn.instructions == SUMMARISE:
            made.append(turn)
            return f"SUMMARY {len(made)}: alice asked about m0 and more."
        return default_answer(turn)

    fake.answer = answer
    bot = await small_window_bot(fake, tmp_path, "chat")
    try:
        for n in range(25):
            await bot.say(f"m{n} {LONG}")
    finally:
        steps = await close(bot)
    assert len(made) >= 2
    # the second summary folds the first one in, and the last request carries the latest
    assert "SUMMARY 1" in made[1].messages[-1][1]
    assert f"SUMMARY {len(made)}:" in (fake.turns[-1].instructions or "")
    assert fake.turns[-1].messages[-1][1].startswith("m24 ")
    titles = [title for kind, title in steps if kind == "compaction"]
    assert len(titles) == len(made) and "oldest messages" in titles[0]


@pytest.mark.parametrize("in_stream", [False, True])
async def test_responses_recovers_from_context_length_exceeded_by_compacting(
    fake: FakeOpenAI, tmp_path: Path, in_stream: bool
) -> None:
    bot = await small_window_bot(fake, tmp_path, "responses")
    fake.honour_context_management = False  # a server that ignores compaction and truncation
    fake.context_error_in_stream = in_stream
    try:
        for n in range(30):
            assert await bot.say(f"m{n} {LONG}") == f"echo: m{n} {LONG}"
        (record,) = await bot.app.db.fetch_all(
            "SELECT backend_conversation_id FROM conversations WHERE archived_at IS NULL"
        )
    finally:
        steps = await close(bot)
    assert fake.context_errors >= 1
    assert {c["via"] for c in fake.compactions} == {"compact"}
    compacted = [t for k, t in steps if k == "compaction"]
    assert compacted and all("/responses/compact" in t for t in compacted)
    # the outgrown conversations were replaced (and deleted): one is left, the one in use
    assert len(fake.conversations) == 1
    assert record["backend_conversation_id"] in fake.conversations


async def test_without_the_compact_endpoint_a_fresh_conversation_starts_with_a_recap(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    bot = await small_window_bot(fake, tmp_path, "responses")
    fake.honour_context_management = False
    fake.compact_endpoint = False  # e.g. a compatible server
    try:
        for n in range(20):
            assert await bot.say(f"m{n} {LONG}") == f"echo: m{n} {LONG}"
    finally:
        steps = await close(bot)
    recaps = [t for k, t in steps if k == "truncation" and "recap of its last" in t]
    assert recaps
    seeded = [t for t in fake.turns if "grew too long for the model" in t.messages[0][1]]
    assert seeded  # the first turn of a fresh conversation reads the recap


async def test_chat_trims_harder_when_the_server_counts_more_than_estimated(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    # the bot believes the window is twice what the server allows
    bot = await small_window_bot(fake, tmp_path, "chat")
    await bot.close()
    fake.context_window = WINDOW // 2
    bot = await Harness.start(
        make_settings(
            fake.base_url,
            tmp_path / "again",
            SWITCHBOARD_BACKEND="chat",
            SWITCHBOARD_CONTEXT_WINDOWS=f"{MODEL}={WINDOW}",
        )
    )
    try:
        for n in range(12):
            assert await bot.say(f"m{n} {LONG}") == f"echo: m{n} {LONG}"
    finally:
        steps = await close(bot)
    assert fake.context_errors >= 1
    trimmed = [t for k, t in steps if k == "truncation"]
    assert trimmed and "asked again" in trimmed[0]


async def test_a_message_too_long_for_any_window_gets_a_clear_reply(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    bot = await small_window_bot(fake, tmp_path, "responses")
    try:
        text = await bot.say("y" * 40_000)
        assert "too long for the model's context window" in text
        assert await bot.say("short") == "echo: short"  # and the conversation goes on
    finally:
        await bot.close()


# --------------------------------------------------------------------------- small pieces


async def test_a_new_conversation_is_seeded_twenty_items_at_a_time(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    from bot.backends.conversations import ServerConversations
    from bot.backends.retry import RetryPolicy

    conversations = ServerConversations(client, RetryPolicy(attempts=0))
    items = [{"type": "message", "role": "user", "content": f"n{n}"} for n in range(45)]
    made = await conversations.create("slack:T1:C1:1.2", items)
    listed = await conversations.items(made)
    assert [i["content"][0]["text"] for i in listed] == [f"n{n}" for n in range(45)]
    creates = [r for r in fake.requests if r.path.startswith("/v1/conversations")]
    assert [r.method for r in creates] == ["POST"] * 3 + ["GET"]


def test_context_windows_and_budgets(tmp_path: Path) -> None:
    from bot.backends.context import is_context_error
    from bot.backends.history import split_summary, stored_answer, stored_summary
    from bot.core.config import DEFAULT_CONTEXT_WINDOW, ConfigError, load_settings
    from storage.messages import HistoryMessage

    settings = load_settings(SWITCHBOARD_CONTEXT_WINDOWS="gpt-6.1-terra=8000, local=9_000")
    assert settings.context_window("gpt-6.1-terra") == 8_000  # the override wins
    assert settings.context_window("local-llama") == 9_000
    assert settings.context_window("gpt-6.1-sol-2026-10-01") == 1_050_000  # a snapshot: prefix
    assert settings.context_window("llama-3") == DEFAULT_CONTEXT_WINDOW
    assert load_settings(SWITCHBOARD_CONTEXT_WINDOWS="*=16000").context_window("x") == 16_000
    with pytest.raises(ConfigError, match=r"^SWITCHBOARD_CONTEXT_WINDOWS: .*'gpt=12'"):
        load_settings(SWITCHBOARD_CONTEXT_WINDOWS="gpt=12")

    budget = ContextBudget(100_000)
    assert budget.output_reserve == 16_000 and budget.input_limit == 71_400
    assert budget.compact_threshold == 42_840
    assert ContextBudget(100_000, max_output_tokens=2_000).input_limit == 83_300
    assert ContextBudget(2_000).compact_threshold == 1_000  # the API's minimum
    assert budget.history_budget("x" * 400, images=2) == 71_400 - 104 - 2_000

    class Refusal(Exception):
        status_code, code, message = 400, None, "This model's maximum context length is 8192"

    assert is_context_error(Refusal()) and not is_context_error(ValueError("context length"))

    # a stored summary stands for everything before it; an answer never passes for one
    summary = stored_summary("they agreed on Monday")
    history = [HistoryMessage("user", "a"), summary, HistoryMessage("user", "b")]
    assert split_summary(history) == ("they agreed on Monday", [HistoryMessage("user", "b")])
    forged = stored_answer(summary.content)
    assert split_summary([forged]) == ("", [forged])
