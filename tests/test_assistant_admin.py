"""`/assistant` at the core: the real app (dispatcher, storage, backend) against the loopback
OpenAI fake, with a recording adapter. The platform paths are in test_assistant_platforms.py."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.types import Actor, Attachment, CommandCall, ConversationKey
from testing.fakes.openai_fake import FakeOpenAI
from tests.harness import KEY, USER, Harness, make_settings

ADMIN = Actor("UADMIN", "root", is_admin=True)
OTHER_CHANNEL = ConversationKey(KEY.platform, KEY.workspace, "C2")
_ids = itertools.count(1)


@pytest.fixture
async def bot(fake: FakeOpenAI, tmp_path: Path) -> AsyncIterator[Harness]:
    harness = await start(fake, tmp_path)
    yield harness
    await harness.close()


async def start(fake: FakeOpenAI, tmp_path: Path, **settings: object) -> Harness:
    values: dict[str, object] = {
        "SWITCHBOARD_KNOWLEDGE_POLL_INTERVAL": 0.01,
        "SWITCHBOARD_KNOWLEDGE_WAIT": 10,
        **settings,
    }
    return await Harness.start(make_settings(fake.base_url, tmp_path, **values))


def file(name: str, data: bytes, mime: str = "application/octet-stream") -> Attachment:
    async def fetch() -> bytes:
        return data

    return Attachment("document", mime, name, len(data), fetch)


async def command(
    bot: Harness,
    text: str,
    *,
    actor: Actor = ADMIN,
    key: ConversationKey = KEY,
    files: tuple[Attachment, ...] = (),
) -> str:
    before = len(bot.outbox.shown)
    call = CommandCall(key, actor, "assistant", f"cmd{next(_ids)}", text=text, attachments=files)
    assert await bot.app.dispatcher.submit(call)
    await bot.app.dispatcher.wait_idle()
    (shown,) = bot.outbox.shown[before:]
    return shown


async def audit_rows(bot: Harness) -> list[dict]:
    rows = await bot.app.db.fetch_all("SELECT * FROM assistant_changes ORDER BY id")
    return [dict(row) for row in rows]


async def settings_rows(bot: Harness) -> list[dict]:
    rows = await bot.app.db.fetch_all("SELECT channel, settings FROM channel_configs")
    return [dict(row) for row in rows]


async def test_show_lists_every_field_and_where_it_comes_from(bot: Harness) -> None:
    await command(bot, "set workspace temperature 0.5")
    await command(bot, "set model gpt-6.1-sol")
    shown = await command(bot, "", actor=USER)
    assert "• model: gpt-6.1-sol (set for this channel)" in shown
    assert "• temperature: 0.5 (workspace default)" in shown
    assert "• name: Switchboard (deployment default)" in shown
    for field in ("instructions", "tools", "format", "seed", "voice", "voice_replies"):
        assert f"• {field}: " in shown
    for field in ("reply_mode", "vision_detail", "max_output_tokens", "budget", "moderation"):
        assert f"• {field}: " in shown


async def test_an_admin_change_applies_from_the_next_turn(bot: Harness, fake: FakeOpenAI) -> None:
    await bot.say("hello")
    first = fake.requests[-1].json
    assert first["model"] == "gpt-6.1-terra" and "temperature" not in first

    reply = await command(bot, 'set instructions "Answer like a pirate."')
    assert "applies from the next message" in reply
    assert "Set model" in await command(bot, "set model gpt-6.1-sol")
    await command(bot, "set temperature 0.2")
    await command(bot, "set max_output_tokens 500")
    await bot.say("hello again")
    body = next(r.json for r in reversed(fake.requests) if r.path == "/v1/responses")
    assert body["instructions"] == "Answer like a pirate."
    assert (body["model"], body["temperature"], body["max_output_tokens"]) == (
        "gpt-6.1-sol",
        0.2,
        500,
    )
    fields = [row["field"] for row in await audit_rows(bot)]
    assert fields == ["instructions", "model", "temperature", "max_output_tokens"]


async def test_a_non_admin_is_refused_and_nothing_changes(bot: Harness) -> None:
    await command(bot, "set name Helper")
    before = (await settings_rows(bot), await audit_rows(bot))
    for text in (
        "set model gpt-6.1-sol",
        "set workspace temperature 1",
        "reset",
        "history",
        "knowledge list",
        "knowledge remove x.pdf",
    ):
        refusal = await command(bot, text, actor=USER)
        assert "Only admins" in refusal, text
    files = (file("guide.md", b"# guide"),)
    assert "Only admins" in await command(bot, "knowledge add", actor=USER, files=files)
    assert (await settings_rows(bot), await audit_rows(bot)) == before
    # SWITCHBOARD_ADMINS makes a user an admin without platform rights.


async def test_switchboard_admins_are_admins(fake: FakeOpenAI, tmp_path: Path) -> None:
    bot = await start(fake, tmp_path, SWITCHBOARD_ADMINS="U1, U9")
    try:
        assert "Set name" in await command(bot, "set name Helper", actor=USER)
    finally:
        await bot.close()


async def test_model_validation(bot: Harness, fake: FakeOpenAI) -> None:
    unknown = await command(bot, "set model gpt-6.1-sool")
    assert "no model `gpt-6.1-sool`" in unknown and "gpt-6.1-sol" in unknown
    fake.models.append(
        {
            "id": "gpt-4.1-nano",
            "object": "model",
            "created": 0,
            "owned_by": "system",
            "shutdown_date": "2026-10-23",
        }
    )
    gone = await command(bot, "set model gpt-4.1-nano")
    assert "was shut down on 2026-10-23" in gone
    unpriced = await command(bot, "set model gpt-5-mini")
    assert "not in the price table" in unpriced and "gpt-5-mini unpriced" in unpriced
    assert await audit_rows(bot) == []
    soon = await command(bot, "set model gpt-5-mini unpriced")
    assert "Set model" in soon and "shuts down on 2026-12-11" in soon
    assert [row["new_value"] for row in await audit_rows(bot)] == ['"gpt-5-mini"']
    fake.fail_next("server_error", times=5, endpoint="models")
    outage = await command(bot, "set model gpt-6.1-sol")
    assert "could not check `gpt-6.1-sol`" in outage and "nothing changed" in outage
    assert len(await audit_rows(bot)) == 1


async def test_seed_is_refused_on_responses_and_kept_on_chat(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    bot = await start(fake, tmp_path)
    try:
        refusal = await command(bot, "set seed 42")
        assert "Responses API" in refusal and "no seed" in refusal and "chat backend" in refusal
        assert await audit_rows(bot) == []
    finally:
        await bot.close()
    chat = await start(fake, tmp_path / "chat", SWITCHBOARD_BACKEND="chat")
    try:
        assert "Set seed" in await command(chat, "set seed 42")
        assert "seed: 42 (set for this channel)" in await command(chat, "")
    finally:
        await chat.close()


async def test_friendly_parsing_errors_list_the_valid_values(bot: Harness) -> None:
    assert "from 0 to 2" in await command(bot, "set temperature 3")
    assert "`mention` or `all`" in await command(bot, "set reply_mode sometimes")
    assert "There is no field `colour`" in await command(bot, "set colour blue")
    assert "Unknown tool `browser`" in await command(bot, "set tools browser")
    unknown = await command(bot, "set tools functions:weather")
    assert "Unknown function `weather`" in unknown and "current_time" in unknown
    assert "Set tools" in await command(bot, "set tools web_search functions:current_time")
    assert "functions:current_time" in await command(bot, "")
    assert "Voices:" in await command(bot, "set voice robot")
    assert '"type": "object"' in await command(bot, 'set format {"type": "string"}')
    assert "not valid JSON" in await command(bot, "set format {nope")
    assert [row["field"] for row in await audit_rows(bot)] == ["tools"]


async def test_every_field_can_be_set_and_inherited_again(bot: Harness) -> None:
    for text in (
        "set name Helper",
        "set tools code_interpreter, web_search",
        'set format {"type": "object", "properties": {"a": {"type": "string"}}}',
        "set voice nova",
        "set voice_replies on",
        "set reply-mode all",
        "set vision_detail high",
        "set budget $25",
        "set moderation on",
    ):
        assert "Set " in await command(bot, text), text
    shown = await command(bot, "")
    assert "• tools: code_interpreter, web_search (set for this channel)" in shown
    assert "• format: JSON schema" in shown and "• budget: $25.00 a month" in shown
    assert "• voice_replies: on" in shown and "• reply_mode: all" in shown
    config = await bot.app.dispatcher._check_quota(  # the config a turn would use
        bot.message("x")
    )
    assert config.tools == ("code_interpreter", "web_search") and config.moderation
    assert "inherited again" in await command(bot, "set budget default")
    assert "budget: none (deployment default)" in await command(bot, "")


async def test_a_format_schema_from_an_attached_json_file(bot: Harness) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    files = (file("answer.json", json.dumps(schema).encode(), "application/json"),)
    assert "Set format" in await command(bot, "set format", files=files)
    (row,) = await settings_rows(bot)
    assert json.loads(json.loads(row["settings"])["format"]) == schema


async def test_workspace_defaults_are_inherited_and_channel_values_win(bot: Harness) -> None:
    await command(bot, "set workspace model gpt-6.1-sol")
    assert "model: gpt-6.1-sol (workspace default)" in await command(bot, "", key=OTHER_CHANNEL)
    await command(bot, "set model gpt-6.1-terra")
    note = await command(bot, "set workspace model gpt-5-mini unpriced")
    assert "This channel has its own value" in note
    assert "model: gpt-6.1-terra (set for this channel)" in await command(bot, "")
    assert "model: gpt-5-mini (workspace default)" in await command(bot, "", key=OTHER_CHANNEL)


async def test_reset_removes_the_channel_overrides_and_history_shows_them(bot: Harness) -> None:
    await command(bot, "set workspace temperature 0.7")
    await command(bot, "set temperature 0.1")
    await command(bot, "set name Helper")
    reply = await command(bot, "reset")
    assert "Removed the settings for this channel (name, temperature)" in reply
    shown = await command(bot, "")
    assert "temperature: 0.7 (workspace default)" in shown and "name: Switchboard" in shown
    assert "There were no settings" in await command(bot, "reset")
    history = await command(bot, "history")
    lines = history.splitlines()[1:]
    assert len(lines) == 5
    assert "<@UADMIN> temperature (this channel): 0.1 → (inherited)" in lines[0] + lines[1]
    assert "temperature (workspace default): (inherited) → 0.7" in lines[-1]
    rows = await audit_rows(bot)
    assert [(r["field"], r["old_value"], r["new_value"]) for r in rows[-2:]] in (
        [("name", '"Helper"', None), ("temperature", "0.1", None)],
        [("temperature", "0.1", None), ("name", '"Helper"', None)],
    )
    assert all(r["changed_by"] == "UADMIN" and r["changed_at"] > 0 for r in rows)


async def test_usage_budget_keeps_working_and_is_audited(bot: Harness) -> None:
    assert "$12.50" in await bot.command("usage", "budget 12.5", actor=ADMIN)
    assert "budget: $12.50 a month (set for this channel)" in await command(bot, "")
    await bot.command("usage", "moderation on", actor=ADMIN)
    await bot.command("usage", "budget off", actor=ADMIN)
    rows = [(r["field"], r["old_value"], r["new_value"]) for r in await audit_rows(bot)]
    assert rows == [
        ("budget_monthly_usd", None, "12.5"),
        ("moderation", None, "true"),
        ("budget_monthly_usd", "12.5", None),
    ]
    history = await command(bot, "history")
    assert "budget (this channel): $12.50 a month → (inherited)" in history


async def test_knowledge_add_list_remove(bot: Harness, fake: FakeOpenAI) -> None:
    kb = fake.knowledge
    kb.polls_to_complete = 2
    kb.fail = lambda name: (
        ("invalid_file", "The file could not be parsed.") if name == "bad.pdf" else None
    )
    files = (
        file("guide.md", b"# How we work\nBe kind."),
        file("bad.pdf", b"%PDF-1.4 broken"),
        file("sales.csv", b"a,b\n1,2\n"),
    )
    reply = await command(bot, "knowledge add", files=files)
    assert "✓ guide.md: ready for file search." in reply
    assert (
        "✗ bad.pdf: OpenAI could not process it (The file could not be parsed. [invalid_file])"
        in reply
    )
    assert "✗ sales.csv: file search cannot read spreadsheets or CSV" in reply
    assert "code_interpreter" in reply and "file_search tool is now on" in reply
    (store_id,) = kb.stores
    assert list(kb.store_files[store_id]) == [
        fid for fid, f in kb.files.items() if f["filename"] == "guide.md"
    ]
    assert [f["filename"] for f in kb.files.values()] == ["guide.md"]  # bad.pdf cleaned up
    assert all(f["purpose"] == "assistants" for f in kb.files.values())
    config = await bot.app.dispatcher._check_quota(bot.message("x"))
    assert config.vector_store_id == store_id and "file_search" in config.tools
    await bot.say("what does the guide say?")
    body = next(r.json for r in reversed(fake.requests) if r.path == "/v1/responses")
    assert {"type": "file_search", "vector_store_ids": [store_id]} in body["tools"]

    listing = await command(bot, "knowledge list")
    assert "guide.md" in listing and "completed" in listing and "<@UADMIN>" in listing
    assert "bad.pdf" not in listing

    more = await command(bot, "knowledge add", files=(file("notes.txt", b"more"),))
    assert "✓ notes.txt" in more and "file_search tool" not in more
    assert list(kb.stores) == [store_id]  # one store per channel

    removed = await command(bot, "knowledge remove GUIDE.md")
    assert "Removed guide.md" in removed
    assert [f["filename"] for f in kb.files.values()] == ["notes.txt"]
    assert "no knowledge file `nope.pdf`" in await command(bot, "knowledge remove nope.pdf")
    fields = [(r["field"], r["old_value"], r["new_value"]) for r in await audit_rows(bot)]
    assert ("vector_store_id", None, json.dumps(store_id)) in fields
    assert ("knowledge", None, '"guide.md"') in fields
    assert ("knowledge", '"guide.md"', None) in fields
    assert ("knowledge", None, '"bad.pdf"') not in fields
    # reset keeps knowledge: it is removed file by file
    await command(bot, "reset")
    config = await bot.app.dispatcher._check_quota(bot.message("x"))
    assert config.vector_store_id == store_id


async def test_knowledge_still_processing_after_the_wait(fake: FakeOpenAI, tmp_path: Path) -> None:
    bot = await start(fake, tmp_path, SWITCHBOARD_KNOWLEDGE_WAIT=0.05)
    try:
        fake.knowledge.stuck.add("big.pdf")
        reply = await command(bot, "knowledge add", files=(file("big.pdf", b"%PDF-1.7"),))
        assert "big.pdf: still being processed" in reply
        assert "still being processed" in await command(bot, "knowledge list")
        fake.knowledge.stuck.clear()
        assert "completed" in await command(bot, "knowledge list")
        (row,) = await bot.app.db.fetch_all("SELECT status FROM knowledge_files")
        assert row["status"] == "completed"
    finally:
        await bot.close()


async def test_knowledge_add_without_files_or_with_only_unsupported_ones(bot: Harness) -> None:
    assert "Attach the files" in await command(bot, "knowledge add")
    refusal = await command(bot, "knowledge add", files=(file("data.xlsx", b"PK"),))
    assert "spreadsheets or CSV" in refusal
    assert "cannot read .exe files" in await command(
        bot, "knowledge add", files=(file("setup.exe", b"MZ"),)
    )
    assert await audit_rows(bot) == []


async def test_knowledge_uploads_survive_a_shutdown_during_the_wait(
    fake: FakeOpenAI, tmp_path: Path
) -> None:
    import asyncio

    from bot.backends.files import KnowledgeFiles
    from bot.backends.retry import retry_policy
    from bot.features.assistant.editor import ConfigEditor
    from bot.features.assistant.knowledge import Knowledge

    bot = await start(fake, tmp_path, SWITCHBOARD_KNOWLEDGE_WAIT=600)
    try:
        app = bot.app
        files = KnowledgeFiles(app.client, retry_policy(app.settings))
        kb = Knowledge(app.db, app.settings, files, ConfigEditor(app.db))
        fake.knowledge.stuck.add("slow.md")
        call = CommandCall(
            KEY, ADMIN, "assistant", "cmd-x", "knowledge add", attachments=(file("slow.md", b"x"),)
        )
        task = asyncio.create_task(kb.add(call))
        for _ in range(1000):
            polled = [r for r in fake.requests if r.method == "GET" and "/files/" in r.path]
            if polled:  # the wait for processing has begun
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        (row,) = await app.db.fetch_all("SELECT name, status FROM knowledge_files")
        assert (row["name"], row["status"]) == ("slow.md", "in_progress")
    finally:
        await bot.close()


async def test_a_knowledge_store_gone_at_openai_is_replaced(bot: Harness, fake: FakeOpenAI) -> None:
    await command(bot, "knowledge add", files=(file("a.md", b"alpha"),))
    (old_store,) = fake.knowledge.stores
    del fake.knowledge.stores[old_store]  # expired or deleted at OpenAI
    reply = await command(bot, "knowledge add", files=(file("b.md", b"beta"),))
    assert "previous knowledge store is gone" in reply and "Add these again: a.md" in reply
    assert "✓ b.md" in reply
    (new_store,) = fake.knowledge.stores
    listing = await command(bot, "knowledge list")
    assert "b.md" in listing and "a.md" not in listing
    config = await bot.app.dispatcher._check_quota(bot.message("x"))
    assert config.vector_store_id == new_store != old_store
