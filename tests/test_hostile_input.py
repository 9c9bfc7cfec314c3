"""Property tests: malformed payloads never crash the normalisers or the command parsers.

Payloads start from the real builders (`testing/fakes/slack_payloads.py`, `discord_payloads.py`)
and get 1-4 mutations anywhere in their tree: a field deleted, or replaced with a wrong type,
a huge value, a huge string or odd Unicode (RTL overrides, zero-width, lone surrogates, NUL,
path tricks). Each result must be either nothing (None) or a well-formed value; command parsers
may also answer with a `UserError` (short, printable, encodable). Discord payloads go through
discord.py's own parsers first (a `Message`, an `Interaction` with its option `Namespace`), as
on the wire; when discord.py itself refuses a payload it never reaches us, so the example ends.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable, Iterator
from types import SimpleNamespace as NS
from typing import Any

import discord
import pytest
from discord import app_commands
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.discord import normalise as dn
from adapters.slack import normalise as sn
from bot.backends.speech import VOICES
from bot.core.addressing import YES, verdict
from bot.core.commands import message_command
from bot.core.errors import UserError
from bot.core.types import Actor, Attachment, CommandCall, ConversationKey, Inbound
from bot.features.assistant.args import (
    FIELDS,
    Inherit,
    SetField,
    ValueContext,
    parse_command,
    parse_schema,
    parse_value,
)
from bot.features.images import BACKGROUNDS, QUALITIES, SIZES
from bot.features.media_options import Option, parse
from bot.features.usage import parse_budget, parse_usage_args
from bot.text.sanitise import clean_text, safe_filename
from testing.fakes import discord_payloads as DP
from testing.fakes import slack_payloads as SP

PROPS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

HUGE = "A" * 200_000
ODD_STRINGS = [
    "",
    " ",
    "\u202egnp.exe",  # right-to-left override: "exe.png" on screen
    "\u200b\u200c\u200d\ufeff",
    "\ud800",  # a lone surrogate (what invalid UTF-8 decodes to with surrogateescape)
    "name\udcff\udcfe.png",
    "\x00",
    "a\x00b.png",
    "\x1b[31mred\x1b[0m\r\n",
    "../../etc/passwd",
    "/etc/shadow",
    "C:\\Windows\\system32\\cmd.exe",
    "..\\..\\boot.ini",
    "CON",
    "nul.txt",
    "COM1.png",
    "<@UBOT> <!channel> <@&1>",
    "@everyone",
    "%2e%2e%2f",
    "🙂" * 500,
    "ي" * 50 + "\u202b",
    "\u0301\u0301\u0301",
    "x" * 5000,
    HUGE,
]
odd_text = st.one_of(st.sampled_from(ODD_STRINGS), st.text(max_size=30))
wrong_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.just(10**400),
    st.floats(),
    st.just([]),
    st.just({}),
    st.lists(st.one_of(st.none(), st.integers(), odd_text), max_size=3),
    st.dictionaries(st.text(max_size=4), st.one_of(st.none(), odd_text), max_size=3),
    odd_text,
)

Path = tuple[Any, ...]


def paths(node: Any, prefix: Path = ()) -> Iterator[Path]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))


def mutate(payload: Any, path: Path, delete: bool, value: Any) -> Any:
    """`payload` with the node at `path` deleted or replaced (the root itself can be replaced)."""
    if not path:
        return value
    parent = payload
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return payload  # an earlier mutation removed this branch
    last = path[-1]
    if isinstance(parent, dict) or (isinstance(parent, list) and isinstance(last, int)):
        try:
            if delete:
                del parent[last]
            else:
                parent[last] = value
        except (KeyError, IndexError):
            pass
    return payload


def mutated(base: Any) -> st.SearchStrategy[Any]:
    """Copies of `base` with 1-4 mutations."""
    all_paths = list(paths(base))

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        payload = copy.deepcopy(base)
        for _ in range(draw(st.integers(1, 4))):
            path = draw(st.sampled_from(all_paths))
            payload = mutate(payload, path, draw(st.booleans()), draw(wrong_value))
        return payload

    return build()


# --------------------------------------------------------------------------- checks

_SLACK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,99}")


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def check_attachment(attachment: Attachment) -> None:
    assert attachment.name == safe_filename(attachment.name)
    assert not re.search(r"[/\\\x00-\x1f\u202e\u200b]", attachment.name)
    assert attachment.name not in ("", ".", "..")
    assert encodable(attachment.mime) and attachment.mime.isascii()
    assert 0 <= attachment.size <= 2**53


def check_event(event: Inbound | CommandCall, platform: str) -> None:
    key = event.key
    assert key.platform == platform
    for part in (key.workspace, key.channel, key.thread, event.actor.id, event.event_id):
        assert isinstance(part, str) and encodable(part) and len(part) <= 400
    if platform == "slack":
        assert _SLACK_ID.fullmatch(key.channel) and _SLACK_ID.fullmatch(event.actor.id)
        assert key.thread == "" or _SLACK_ID.fullmatch(key.thread)
    else:
        assert key.channel.isdigit() and event.actor.id.isdigit()
    assert encodable(event.actor.name)
    assert encodable(event.text)
    for attachment in event.attachments:
        check_attachment(attachment)
    if isinstance(event, CommandCall):
        assert re.fullmatch(r"[a-z0-9_\-]{1,32}", event.name)
        assert all(encodable(k) and encodable(v) for k, v in event.options.items())


def check_user_error(error: UserError) -> None:
    assert error.message and encodable(error.message)
    assert len(error.message) <= 600  # quotes of user input are shortened


# --------------------------------------------------------------------------- Slack

BOT = sn.BotIdentity(user_id=SP.BOT_USER_ID, bot_id=SP.BOT_ID, team_id=SP.TEAM_ID)
BASE = "https://files.slack.com"


def slack_file(name: str = "fox.png", mime: str = "image/png") -> dict[str, Any]:
    return SP.file_object(
        file_id="F0000000001",
        name=name,
        mimetype=mime,
        filetype=name.rsplit(".", 1)[-1],
        size=1234,
        base_url=BASE,
        created=1_700_000_000,
    )


def fetcher(file: Any, kind: Any) -> Callable[[], Any]:
    async def fetch() -> bytes:
        raise AssertionError("never fetched here")

    return fetch


TS = "1700000000.000100"
SLACK_EVENTS = [
    SP.event_callback(SP.app_mention("what is this?", ts=TS, files=[slack_file()]), event_id="Ev1"),
    SP.event_callback(
        SP.im_message("hi", ts=TS, files=[slack_file("memo.m4a", "audio/mp4")]), event_id="Ev2"
    ),
    SP.event_callback(SP.thread_reply("and then?", ts=TS, thread_ts=TS), event_id="Ev3"),
    SP.event_callback(SP.assistant_thread_started(thread_ts=TS), event_id="Ev4"),
]
SLASH = SP.slash_command("/imagine", "a cat size=1024x1024 count=2", trigger_id="1.2.abc")
IMAGE_MESSAGE = SP.message("look", ts=TS, files=[slack_file()])
SHORTCUT = SP.message_shortcut(sn.EDIT_SHORTCUT, IMAGE_MESSAGE, trigger_id="1.2.abc")
SUBMISSION = SP.view_submission(
    sn.EDIT_MODAL,
    {
        sn.PROMPT_BLOCK: {sn.INPUT_ACTION: {"type": "plain_text_input", "value": "add a hat"}},
        sn.MASK_BLOCK: {sn.INPUT_ACTION: {"type": "file_input", "files": [slack_file("m.png")]}},
    },
    private_metadata=sn.edit_modal_metadata(SHORTCUT) or "",
    view_id="V1",
    trigger_id="1.2.abc",
)


def test_the_unmutated_slack_payloads_are_understood() -> None:
    """The property tests below start from payloads the normalisers accept."""
    assert all(sn.message_event(body, BOT, fetcher) for body in SLACK_EVENTS[:3])
    assert sn.assistant_thread(SLACK_EVENTS[3]) is not None
    assert sn.command_call(SLASH) is not None
    assert sn.edit_modal_metadata(SHORTCUT) is not None
    call = sn.edit_call(SUBMISSION, fetcher)
    assert call is not None and len(call.attachments) == 2


@PROPS
@given(st.sampled_from(range(len(SLACK_EVENTS))).flatmap(lambda i: mutated(SLACK_EVENTS[i])))
def test_slack_events_never_raise(body: Any) -> None:
    event = sn.message_event(body, BOT, fetcher)
    assert event is None or isinstance(event, Inbound)
    if event is not None:
        check_event(event, "slack")
    thread = sn.assistant_thread(body)
    assert thread is None or _SLACK_ID.fullmatch(thread.channel)
    assert isinstance(sn.team_of(body), str)


@PROPS
@given(mutated(SLASH))
def test_slack_slash_commands_never_raise(payload: Any) -> None:
    call = sn.command_call(payload)
    assert call is None or isinstance(call, CommandCall)
    if call is not None:
        check_event(call, "slack")


@PROPS
@given(mutated(SHORTCUT), mutated(SUBMISSION))
def test_slack_edit_shortcut_and_form_never_raise(shortcut: Any, submission: Any) -> None:
    meta = sn.edit_modal_metadata(shortcut)
    assert meta is None or isinstance(meta, str)
    call = sn.edit_call(submission, fetcher)
    assert call is None or call.name == "edit"
    if call is not None:
        check_event(call, "slack")
    assert isinstance(sn.edit_prompt(submission), str)


SLACK_KEYS = st.sampled_from(
    ["event", "type", "user", "channel", "ts", "text", "files", "command", "channel_id",
     "user_id", "view", "message", "team_id", "assistant_thread", "private_metadata"]
)  # fmt: skip
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | odd_text,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(SLACK_KEYS | st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=15,
)


@PROPS
@given(any_json)
def test_slack_normalisers_take_any_json_at_all(value: Any) -> None:
    event = sn.message_event(value, BOT, fetcher)
    calls = [sn.command_call(value), sn.edit_call(value, fetcher)]
    for result in [event, *calls]:
        if result is not None:
            check_event(result, "slack")
    assert sn.edit_modal_metadata(value) is None or isinstance(value, dict)
    sn.assistant_thread(value)
    assert encodable(sn.plain_text(value if isinstance(value, str) else "", "UBOT"))


# --------------------------------------------------------------------------- Discord


def discord_state() -> Any:
    client = discord.Client(intents=discord.Intents.default())
    state = client._connection
    me = DP.current_user(DP.user("1100000000000000001", "switchboard", bot=True))
    state.user = discord.ClientUser(state=state, data=me)
    return state


STATE = discord_state()
GUILD_ID, CHANNEL_ID, USER_ID = "2200000000000000002", "3300000000000000003", "7700000000000000007"
GUILD = discord.Guild(data=DP.guild(GUILD_ID, "g", owner_id=USER_ID), state=STATE)
CHANNEL = discord.TextChannel(
    state=STATE, guild=GUILD, data=DP.text_channel(CHANNEL_ID, GUILD_ID, "general")
)
AUTHOR = DP.user(USER_ID, "ann", global_name="Ann")
ATTACHMENT = DP.attachment(
    "4400000000000000004",
    "fox.png",
    size=1234,
    url="https://cdn.discordapp.com/attachments/3/4/fox.png?ex=1&is=2&hm=3",
    proxy_url="https://media.discordapp.net/attachments/3/4/fox.png",
    content_type="image/png",
    width=10,
    height=10,
)
MESSAGE = {
    **DP.message(
        "5500000000000000005",
        CHANNEL_ID,
        AUTHOR,
        "<@1100000000000000001> what is this?",
        mentions=[DP.user("1100000000000000001", "switchboard", bot=True)],
        attachments=[ATTACHMENT],
    ),
    "guild_id": GUILD_ID,
    "member": DP.member(None, []),
}
COMMAND_DATA = {
    "id": "6600000000000000006",
    "name": "edit",
    "type": 1,
    "options": [
        {"name": "prompt", "type": 3, "value": "add a hat"},
        {"name": "image", "type": 11, "value": ATTACHMENT["id"]},
        {"name": "count", "type": 4, "value": 2},
    ],
    "resolved": {"attachments": {ATTACHMENT["id"]: ATTACHMENT}},
}
INTERACTION = DP.interaction(
    "8800000000000000008",
    application_id="1100000000000000001",
    type=2,
    token="interaction-token",
    data=COMMAND_DATA,
    channel=DP.text_channel(CHANNEL_ID, GUILD_ID, "general"),
    guild_id=GUILD_ID,
    member_obj=DP.member(AUTHOR, []),
    user_obj=None,
    app_permissions=0,
    attachment_size_limit=25 * 1024 * 1024,
)
BOT_ID = 1100000000000000001


def wire_message(data: Any) -> discord.Message | None:
    try:
        return discord.Message(state=STATE, channel=CHANNEL, data=data)
    except Exception:  # discord.py refuses it before any listener runs
        return None


def wire_interaction(data: Any) -> discord.Interaction | None:
    try:
        interaction = discord.Interaction(data=data, state=STATE)
        command = data["data"]
        namespace = app_commands.Namespace(
            interaction, command.get("resolved", {}), command.get("options", [])
        )
    except Exception:
        return None
    interaction._cs_namespace = namespace  # what CommandTree sets before calling a command
    return interaction


def test_the_unmutated_discord_payloads_are_understood() -> None:
    message = wire_message(copy.deepcopy(MESSAGE))
    event = dn.inbound_from_message(message, BOT_ID)
    assert event is not None and verdict(event) == YES and event.attachments[0].name == "fox.png"
    call = dn.command_from_interaction(
        wire_interaction(copy.deepcopy(INTERACTION)), "edit", text_options=("prompt",)
    )
    assert call is not None and call.text == "add a hat" and call.options["image"] == "fox.png"
    assert call.attachments[0].kind == "image"


@PROPS
@given(mutated(MESSAGE))
def test_discord_messages_never_raise(data: Any) -> None:
    message = wire_message(data)
    if message is None:
        return
    event = dn.inbound_from_message(message, BOT_ID, bot_role_id=None)
    assert event is None or isinstance(event, Inbound)
    if event is not None:
        check_event(event, "discord")


@PROPS
@given(mutated(INTERACTION))
def test_discord_commands_never_raise(data: Any) -> None:
    interaction = wire_interaction(data)
    if interaction is None:
        return
    call = dn.command_from_interaction(interaction, "edit", text_options=("prompt",))
    assert call is None or isinstance(call, CommandCall)
    if call is not None:
        check_event(call, "discord")


@PROPS
@given(
    st.dictionaries(
        st.sampled_from(["id", "type", "channel", "author", "content", "attachments", "flags"]),
        wrong_value,
        max_size=4,
    )
)
def test_discord_normaliser_takes_objects_missing_anything(attributes: dict[str, Any]) -> None:
    """Stand-ins with missing or wrong-typed attributes (what discord.py would not build)."""
    base = {
        "id": 5_500,
        "type": discord.MessageType.default,
        "channel": CHANNEL,
        "author": NS(id=7_700, display_name="Ann", bot=False),
        "content": "hi",
        "attachments": [],
        "flags": discord.MessageFlags(),
    }
    event = dn.inbound_from_message(NS(**{**base, **attributes}), BOT_ID)
    if event is not None:
        check_event(event, "discord")
    call = dn.command_from_interaction(
        NS(**{**base, "namespace": attributes, "user": base["author"]}), "usage"
    )
    if call is not None:
        check_event(call, "discord")


# --------------------------------------------------------------------------- command parsers

KEY = ConversationKey("slack", "T1", "C1")
ACTOR = Actor("U1")
option_maps = st.dictionaries(
    st.sampled_from(["scope", "period", "amount", "value", "prompt", "size", "count", "voice"])
    | st.text(max_size=5),
    odd_text | st.sampled_from(["me", "7d", "budget", "4", "1536x1024", "nova", "off"]),
    max_size=4,
)
command_text = st.one_of(
    odd_text,
    st.lists(
        st.sampled_from(
            ["me", "channel", "7d", "all", "budget", "moderation", "size=", "count=99",
             "count=-1", "count=१", "size=1536x1024", "quality=HIGH", "voice=nova", "=",
             "background=transparent", "$5", "nan", "inf", "1e309", "-3", "off", "x" * 300]
        )
        | odd_text,
        max_size=6,
    ).map(" ".join),
)  # fmt: skip

IMAGINE = (
    Option("size", SIZES),
    Option("quality", QUALITIES),
    Option("background", BACKGROUNDS),
    Option("count", low=1, high=4),
)
SPEC_SETS = [IMAGINE, (Option("count", low=1, high=4),), (Option("language"),), ()]
SPEC_SETS.append((Option("voice", VOICES),))


def outcome(run: Callable[[], Any]) -> Any:
    """The parser's result, or its `UserError` checked; anything else escapes and fails."""
    try:
        return run()
    except UserError as error:
        check_user_error(error)
        return error


@PROPS
@given(command_text, option_maps)
def test_usage_arguments(text: str, options: dict[str, str]) -> None:
    call = CommandCall(KEY, ACTOR, "usage", "cmd-1", text=text, options=options)
    result = outcome(lambda: parse_usage_args(call))
    if not isinstance(result, UserError):
        scope, period = result
        assert scope in ("me", "channel", "workspace") and period in ("today", "7d", "30d", "all")
    budget = outcome(lambda: parse_budget(text))
    assert budget is None or isinstance(budget, UserError) or 0 < budget < 1_000_000


@PROPS
@given(command_text, option_maps, st.sampled_from(range(len(SPEC_SETS))), st.booleans())
def test_media_options(text: str, options: dict[str, str], which: int, free: bool) -> None:
    specs = SPEC_SETS[which]
    result = outcome(lambda: parse(text, options, specs, text_option="prompt" if free else ""))
    if not isinstance(result, UserError):
        assert encodable(result.text)
        names = {spec.name for spec in specs}
        assert set(result.values) <= names
        count = result.values.get("count")
        assert count is None or 1 <= int(count) <= 4


@PROPS
@given(st.one_of(command_text, command_text.map(lambda t: "/" + t)))
def test_message_commands(text: str) -> None:
    event = Inbound(KEY, ACTOR, text, "Ev1")
    call = message_command(event)
    assert call is None or (call.name in {"imagine", "edit", "variation", "speak",
                                          "transcribe", "translate"})  # fmt: skip


@pytest.mark.parametrize("name", ODD_STRINGS)
def test_safe_filename_never_escapes(name: str) -> None:
    safe = safe_filename(name)
    assert safe and safe not in (".", "..") and encodable(safe)
    assert not re.search(r"[/\\\x00-\x1f<>:\"|?*\u202e\u200b]", safe)
    assert len(safe.encode("utf-8")) <= 200
    assert safe.split(".")[0].lower() not in ("con", "nul", "com1")
    assert safe_filename(safe) == safe


def test_a_malformed_payload_is_dropped_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    body = copy.deepcopy(SLACK_EVENTS[0])
    body["event"]["user"] = {"id": "UALICE"}
    data = copy.deepcopy(MESSAGE)
    data["author"]["id"] = "not a snowflake"
    with caplog.at_level(logging.DEBUG):
        assert sn.message_event(body, BOT, fetcher) is None
        assert dn.inbound_from_message(wire_message(data), BOT_ID) is None
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("adapters.")]
    assert len(lines) == 2, lines
    assert "slack: dropped" in lines[0] and "discord: dropped" in lines[1]


# --------------------------------------------------------------------------- /assistant

assistant_words = st.sampled_from(
    ["", "show", "set", "workspace", "reset", "history", "knowledge", "add", "list", "remove",
     "help", "name", "instructions", "model", "temperature", "tools", "format", "seed", "voice",
     "voice_replies", "reply_mode", "vision_detail", "max_output_tokens", "budget",
     "moderation", "default", "off", "on", "2", "-1", "1e309", "nan", "gpt-5-mini",
     "functions:a,b", "code_interpreter", '{"type": "object"}', '{"type": ', "`", '"', "“x”",
     "json", "text", "9" * 40, "mention", "all"]
)  # fmt: skip
assistant_text = st.one_of(
    odd_text, st.lists(assistant_words | odd_text, max_size=5).map(" ".join)
).map(clean_text)  # what the normalisers hand over


@PROPS
@given(assistant_text, st.sampled_from(sorted(FIELDS)), assistant_text, st.booleans())
def test_assistant_arguments(text: str, field: str, raw: str, chat_backend: bool) -> None:
    command = outcome(lambda: parse_command(text))
    if isinstance(command, SetField):
        assert command.field.name in FIELDS
    context = ValueContext(frozenset({"a", "b"}), "chat_completions" if chat_backend else "")
    value = outcome(lambda: parse_value(FIELDS[field], raw, context))
    if not isinstance(value, UserError | Inherit):
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # storable as an override
    schema = outcome(lambda: parse_schema(raw))
    assert isinstance(schema, str | UserError)
