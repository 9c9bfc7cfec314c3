"""Pure layer of the Slack adapter: normalisers on recorded-shape payloads, message splitting,
the file-host allow-list and the manifest."""

from __future__ import annotations

import json
import random

import pytest

from adapters.slack import normalise as N
from adapters.slack.files import SlackHost
from adapters.slack.manifest import BOT_SCOPES, manifest, render_manifest
from adapters.slack.stream import display_parts
from bot.core.addressing import YES, Verdict, verdict
from bot.core.commands import COMMANDS
from bot.core.config import load_settings
from bot.core.types import Addressing, ConversationKey
from bot.text.split import SLACK
from testing.fakes import slack_payloads as P

BOT = N.BotIdentity(user_id=P.BOT_USER_ID, bot_id=P.BOT_ID, team_id=P.TEAM_ID)


def body(event: dict, **kwargs) -> dict:
    return P.event_callback(event, **kwargs)


def a_file(name: str = "cat.png", mimetype: str = "image/png", **extra) -> dict:
    return P.file_object(
        file_id=P.new_file_id(),
        name=name,
        mimetype=mimetype,
        filetype=name.rsplit(".", 1)[-1],
        size=123,
        base_url="https://files.slack.com",
        **extra,
    )


# --------------------------------------------------------------------------- messages


def test_channel_mention_is_a_threaded_conversation() -> None:
    event = P.app_mention("what is <https://example.com|this> &amp; <@UBOB>?")
    inbound = N.message_event(body(event, event_id="Ev1"), BOT)
    assert inbound is not None
    assert inbound.key == ConversationKey("slack", "T1", P.CHANNEL_ID, event["ts"])
    assert inbound.text == "what is this (https://example.com) & <@UBOB>?"
    assert (inbound.event_id, inbound.message_id) == ("Ev1", event["ts"])
    assert inbound.addressing == Addressing(mentioned=True) and verdict(inbound) == YES
    assert inbound.actor.id == P.USER_ID and not inbound.actor.is_bot

    in_thread = P.app_mention("and this?", thread_ts="1700000000.000001")
    inbound = N.message_event(body(in_thread), BOT)
    assert inbound is not None and inbound.key.thread == "1700000000.000001"


def test_a_channel_mention_is_answered_once() -> None:
    """Slack sends a mention as `app_mention` AND as `message`: only the first is answered."""
    mention = P.app_mention("hello")
    twin = P.message(mention["text"], ts=mention["ts"])
    assert N.message_event(body(mention), BOT) is not None
    assert N.message_event(body(twin), BOT) is None


def test_dms_and_dm_threads() -> None:
    dm = N.message_event(body(P.im_message("hi there")), BOT)
    assert dm is not None and dm.key == ConversationKey("slack", "T1", P.DM_CHANNEL_ID, "")
    assert dm.addressing == Addressing(direct=True) and verdict(dm) == YES
    in_thread = N.message_event(body(P.im_message("more", thread_ts="1700000000.000009")), BOT)
    assert in_thread is not None and in_thread.key.thread == "1700000000.000009"
    # a mention inside a DM arrives only as a message: answered, the mention stripped
    mentioned = N.message_event(body(P.im_message(f"<@{P.BOT_USER_ID}> hey")), BOT)
    assert mentioned is not None and mentioned.text == "hey"
    # app_mention in a DM (not sent by Slack today) would be a duplicate: dropped
    assert N.message_event(body(P.app_mention("x", channel=P.DM_CHANNEL_ID)), BOT) is None


def test_thread_replies_and_plain_channel_messages_are_left_to_the_core() -> None:
    reply = N.message_event(body(P.thread_reply("go on", thread_ts="1700000000.000005")), BOT)
    assert reply is not None and reply.key.thread == "1700000000.000005"
    assert reply.addressing == Addressing(in_thread=True, reply_to="1700000000.000005")
    # answered where the bot takes part in the thread, or with reply_mode `all`
    assert verdict(reply) == Verdict(if_taking_part=True, if_reply_mode_all=True)
    # top level, no mention: answered only where reply_mode is `all`
    top = N.message_event(body(P.message("just chatting")), BOT)
    assert top is not None and top.key.thread == top.message_id
    assert top.addressing == Addressing() and verdict(top) == Verdict(if_reply_mode_all=True)


@pytest.mark.parametrize(
    "event",
    [
        P.bot_message("beep"),
        P.bot_message("beep", classic=False),
        P.message("mine", user=P.BOT_USER_ID),
        P.message_changed(channel=P.CHANNEL_ID, new_text="edited", original=P.app_mention("x")),
        P.message_deleted(channel=P.CHANNEL_ID, original=P.app_mention("x")),
        {**P.app_mention("edited mention"), "edited": {"user": "UALICE", "ts": "1.2"}},
        {**P.im_message("joined"), "subtype": "channel_join"},
        {"type": "reaction_added", "user": "UALICE", "item": {"channel": "C1", "ts": "1.1"}},
    ],
    ids=["bot", "modern-bot", "self", "edit", "delete", "edited-mention", "join", "reaction"],
)
def test_ignored_events(event: dict) -> None:
    assert N.message_event(body(event), BOT) is None


def test_unfurl_is_ignored() -> None:
    original = P.message("look https://example.com", thread_ts="1700000000.000005")
    unfurled = P.message_changed(channel=P.CHANNEL_ID, new_text=original["text"], original=original)
    unfurled["message"]["attachments"] = [{"from_url": "https://example.com", "title": "x"}]
    assert N.message_event(body(unfurled), BOT) is None


def test_files_become_attachments_with_kinds() -> None:
    files = [
        a_file("cat.png", "image/png"),
        a_file("clip.webm", "video/webm", subtype="slack_audio", media_display_type="audio"),
        a_file("voice.m4a", "audio/mp4"),
        a_file("data.csv", "text/csv"),
        a_file("report.pdf", "application/pdf"),
        a_file("blob.bin", "application/octet-stream"),
        {**a_file("gone.png"), "mode": "tombstone"},
        {"id": "F0NOURL", "name": "x.png", "mimetype": "image/png"},
    ]
    made: list[tuple[str, str]] = []

    def factory(file, kind):
        made.append((file["name"], kind))

        async def fetch() -> bytes:
            return b""

        return fetch

    inbound = N.message_event(body(P.file_share_message("", files=files, channel_type="im",
                                                        channel=P.DM_CHANNEL_ID)), BOT, factory)  # fmt: skip
    assert inbound is not None
    kinds = [(a.name, a.kind) for a in inbound.attachments]
    assert kinds == [
        ("cat.png", "image"),
        ("clip.webm", "audio"),
        ("voice.m4a", "audio"),
        ("data.csv", "document"),
        ("report.pdf", "document"),
        ("blob.bin", "other"),
    ]
    assert made == kinds
    assert inbound.attachments[0].size == 123 and inbound.attachments[0].mime == "image/png"


def test_normalisers_never_raise_on_garbage() -> None:
    rng = random.Random(7)
    samples: list = [None, 1, "x", [], {}, {"event": None}, {"event": []}, {"event": "x"}]
    good = [
        body(P.app_mention("hi")),
        body(P.im_message("hi", files=[a_file()])),
        P.slash_command("/reset"),
        P.message_shortcut("edit_image", P.message("x", files=[a_file()])),
        P.view_submission(N.EDIT_MODAL, {}),
        body(P.assistant_thread_started()),
    ]
    junk = [None, 0, -1, "", "x", [], [1], {}, {"a": 1}, True, 1.5]

    def mutate(value, depth=0):
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                roll = rng.random()
                if roll < 0.15:
                    continue
                out[k] = rng.choice(junk) if roll < 0.3 else mutate(v, depth + 1)
            return out
        if isinstance(value, list):
            return [mutate(v, depth + 1) for v in value if rng.random() > 0.1]
        return value

    for _ in range(300):
        samples.append(mutate(rng.choice(good)))
    for sample in samples:
        N.message_event(sample, BOT)
        N.command_call(sample)
        N.edit_modal_metadata(sample)
        N.edit_call(sample, None)
        N.assistant_thread(sample)
        N.team_of(sample)
        N.plain_text(sample)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- commands


def test_slash_command_to_call() -> None:
    payload = P.slash_command("/imagine", "  a red fox  ", trigger_id="13345.738.abc")
    call = N.command_call(payload, is_admin=True)
    assert call is not None
    assert call.key == ConversationKey("slack", "T1", P.CHANNEL_ID, "")
    assert (call.name, call.text, call.event_id) == ("imagine", "a red fox", "cmd-13345.738.abc")
    assert call.actor.is_admin and call.actor.name == P.USER_NAME
    threaded = N.command_call({**payload, "thread_ts": "1700000000.000042"})
    assert threaded is not None and threaded.key.thread == "1700000000.000042"
    assert N.command_call({**payload, "channel_id": ""}) is None


def test_edit_shortcut_modal_and_submission() -> None:
    image = a_file("sky.png")
    message = P.message("look", files=[a_file("notes.txt", "text/plain"), image])
    shortcut = P.message_shortcut(N.EDIT_SHORTCUT, message)
    meta = N.edit_modal_metadata(shortcut)
    assert meta is not None and len(meta) < 3000
    assert json.loads(meta)["image"]["id"] == image["id"]
    assert json.loads(meta)["thread"] == message["ts"]
    view = N.edit_modal_view(meta)
    assert [b["block_id"] for b in view["blocks"]] == [N.PROMPT_BLOCK, N.MASK_BLOCK]
    assert view["blocks"][1]["element"]["type"] == "file_input"
    no_image = P.message_shortcut(N.EDIT_SHORTCUT, P.message("no image here"))
    assert N.edit_modal_metadata(no_image) is None

    mask = a_file("mask.png")
    values = {
        N.PROMPT_BLOCK: {N.INPUT_ACTION: {"type": "plain_text_input", "value": " a sunset "}},
        N.MASK_BLOCK: {N.INPUT_ACTION: {"type": "file_input", "files": [mask]}},
    }
    submission = P.view_submission(N.EDIT_MODAL, values, private_metadata=meta)
    call = N.edit_call(submission, None)
    assert call is not None
    assert (call.name, call.text) == ("edit", "a sunset")
    assert [a.name for a in call.attachments] == ["sky.png", "mask.png"]
    assert call.key == ConversationKey("slack", "T1", P.CHANNEL_ID, message["ts"])
    assert call.event_id.startswith("cmd-")
    assert N.edit_prompt(P.view_submission(N.EDIT_MODAL, {}, private_metadata=meta)) == ""


def test_admin_flags() -> None:
    assert not N.user_is_admin({"is_admin": False})
    assert N.user_is_admin({"is_owner": True}) and N.user_is_admin({"is_primary_owner": True})
    assert not N.user_is_admin(None)


# --------------------------------------------------------------------------- splitting


def test_split_keeps_everything_in_order_on_boundaries() -> None:
    paragraphs = [f"Paragraph {i}: " + " ".join(f"word{j}" for j in range(60)) for i in range(40)]
    text = "\n\n".join(paragraphs)
    parts = SLACK.split(text)
    assert len(parts) > 3
    assert "".join(parts) == text
    assert all(len(p) <= SLACK.limit for p in parts)
    assert all(p.endswith("\n\n") for p in parts[:-1])  # cut at paragraph boundaries
    assert SLACK.split("short") == ["short"] and SLACK.split("") == []


def test_split_without_boundaries_and_with_long_lines() -> None:
    blob = "x" * 10_000
    parts = SLACK.split(blob)
    assert "".join(parts) == blob and all(len(p) <= SLACK.limit for p in parts)
    words = " ".join("w" * 7 for _ in range(2_000))
    parts = SLACK.split(words)
    assert "".join(parts) == words
    assert all(p.endswith(" ") for p in parts[:-1])


def test_split_closes_and_reopens_code_blocks() -> None:
    code = "\n".join(f"    print({i})  # line {i}" for i in range(400))
    text = "Here is the code:\n\n```python\n" + code + "\n```\n\nThat's all."
    parts = SLACK.split(text)
    assert len(parts) >= 3
    for part in parts:
        assert len(part) <= SLACK.limit
        fences = [ln for ln in part.split("\n") if ln.startswith("```")]
        assert len(fences) % 2 == 0, part[-200:]  # every message's code blocks are closed
    assert parts[1].startswith("```python\n")
    # Undo the added fences: each cut fell on a line end, so a part gained a closing "```"
    # and the next one an opening "```python\n"; without them the text is whole.
    rebuilt = ""
    for index, part in enumerate(parts):
        if index > 0 and part.startswith("```python\n") and parts[index - 1].endswith("\n```"):
            part = part[len("```python\n") :]
        if index < len(parts) - 1 and parts[index + 1].startswith("```python\n"):
            part = part[: -len("```")]
        rebuilt += part
    assert rebuilt == text


def test_split_is_stable_as_text_grows() -> None:
    """Parts that are complete never change when more text arrives, and what is shown of the
    growing part is always a prefix of what it finally becomes (chat streaming can't undo)."""
    rng = random.Random(3)
    words = []
    for _ in range(3_000):
        words.append(rng.choice(["alpha", "beta", "gamma", "delta", "x" * 30]))
        words.append(rng.choice([" ", " ", " ", "\n", "\n\n"]))
    text = "".join(words)
    final = SLACK.split(text)
    for cut in range(0, len(text), 97):
        shown = display_parts(text[:cut], final=False)
        for index, part in enumerate(shown):
            assert final[index].startswith(part)
        assert all(len(p) <= SLACK.safe_prefix for p in shown[-1:])


# --------------------------------------------------------------------------- hosts, manifest


def test_file_host_allow_list() -> None:
    slack = SlackHost("https://slack.com/api/")
    assert slack.allows("https://files.slack.com/files-pri/T1-F1/x.png")
    assert slack.allows("https://slack.com/files-pri/T1-F1/x.png")
    assert not slack.allows("http://files.slack.com/files-pri/T1-F1/x.png")
    assert not slack.allows("https://files.slack.com.evil.example/x.png")
    assert not slack.allows("https://evilslack.com/x.png")
    assert not slack.allows("https://files.slack.com:8443/x.png")
    assert not slack.allows("not a url")
    gov = SlackHost("https://slack-gov.com/api/")
    assert gov.allows("https://files.slack-gov.com/x") and not gov.allows(
        "https://files.slack.com/x"
    )
    local = SlackHost("http://127.0.0.1:5555/api/")
    assert local.allows("http://127.0.0.1:5555/files-pri/x")
    assert not local.allows("http://localhost:5555/files-pri/x")
    assert not local.allows("http://127.0.0.1:5556/files-pri/x")


def test_manifest_lists_every_command_and_the_shortcut() -> None:
    yaml = pytest.importorskip("yaml")
    settings = load_settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1")
    text = render_manifest(settings)
    parsed = yaml.safe_load(text)
    assert parsed == manifest(settings)
    commands = [c["command"] for c in parsed["features"]["slash_commands"]]
    assert commands == [f"/{c.name}" for c in COMMANDS]
    assert parsed["features"]["shortcuts"][0]["callback_id"] == N.EDIT_SHORTCUT
    assert parsed["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in parsed["settings"]["event_subscriptions"]
    assert set(BOT_SCOPES) >= {"app_mentions:read", "chat:write", "files:read", "files:write",
                               "commands", "assistant:write", "users:read"}  # fmt: skip
    assert "assistant_view" in parsed["features"]
    assert "message.im" in parsed["settings"]["event_subscriptions"]["bot_events"]

    http = load_settings(SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s")
    parsed = yaml.safe_load(render_manifest(http))
    assert parsed["settings"]["socket_mode_enabled"] is False
    assert parsed["settings"]["event_subscriptions"]["request_url"].endswith("/slack/events")
    assert all(c["url"].endswith("/slack/events") for c in parsed["features"]["slash_commands"])
    assert "xoxb-1" not in text and "xapp-1" not in text


def test_file_limits_come_from_the_environment_or_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from adapters.slack.files import MB, FileLimits
    from bot.core.config import ConfigError

    defaults = FileLimits.load()
    assert (defaults.max_bytes, defaults.max_audio_bytes) == (20 * MB, 25 * MB)
    (tmp_path / ".env").write_text("SWITCHBOARD_SLACK_MAX_AUDIO_MB=5\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SWITCHBOARD_SLACK_MAX_FILE_MB", "1.5")
    limits = FileLimits.load()
    assert (limits.max_bytes, limits.max_audio_bytes) == (int(1.5 * MB), 5 * MB)
    monkeypatch.setenv("SWITCHBOARD_SLACK_MAX_FILE_MB", "lots")
    with pytest.raises(ConfigError, match="SWITCHBOARD_SLACK_MAX_FILE_MB"):
        FileLimits.load()
