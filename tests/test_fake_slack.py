"""Wire tests of the Slack fake, driven by the real slack-sdk and slack-bolt clients."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from testing.fakes import slack_payloads as P
from testing.fakes.slack_fake import FakeSlack

BOT = "xoxb-test"
APP = "xapp-test"
SECRET = "s3cret"


@pytest.fixture
async def slack():
    async with FakeSlack(bot_token=BOT, app_token=APP, signing_secret=SECRET) as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=BOT, base_url=slack.api_url)


async def _error(coro) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await coro
    return info.value


# --------------------------------------------------------------------------- Web API


async def test_auth_test_and_token_errors(slack: FakeSlack, client: AsyncWebClient):
    resp = await client.auth_test()
    assert resp["user_id"] == "UBOT"
    assert resp["bot_id"] == "BBOT"
    assert resp["team_id"] == "T1"
    assert {"user", "team", "url"} <= resp.data.keys()

    bad = AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url)
    assert (await _error(bad.auth_test())).response["error"] == "invalid_auth"
    anon = AsyncWebClient(base_url=slack.api_url)
    assert (await _error(anon.auth_test())).response["error"] == "not_authed"
    app_level = AsyncWebClient(token=APP, base_url=slack.api_url)
    err = await _error(app_level.chat_postMessage(channel=P.CHANNEL_ID, text="x"))
    assert err.response["error"] == "not_allowed_token_type"
    err = await _error(client.api_call("chat.nonsense"))
    assert err.response["error"] == "unknown_method"
    err = await _error(client.chat_postMessage(channel="nope", text="x"))
    assert err.response["error"] == "channel_not_found"
    assert [c.method for c in slack.calls][:2] == ["auth.test", "auth.test"]


async def test_post_into_thread_update_replies_delete(slack: FakeSlack, client: AsyncWebClient):
    parent = slack.add_message(P.CHANNEL_ID, "question?", user="UALICE")
    resp = await client.chat_postMessage(
        channel=P.CHANNEL_ID, text="thinking…", thread_ts=parent["ts"]
    )
    assert resp["message"]["thread_ts"] == parent["ts"]
    assert resp["message"]["bot_id"] == "BBOT"
    ts = resp["ts"]
    assert ts > parent["ts"]

    await client.chat_update(channel=P.CHANNEL_ID, ts=ts, text="answer")
    await client.chat_update(channel=P.CHANNEL_ID, ts=ts, text="final answer")
    stored = slack.find_message(P.CHANNEL_ID, ts)
    assert stored is not None
    assert stored["text"] == "final answer"
    assert [e["text"] for e in stored["edits"]] == ["thinking…", "answer"]

    replies = await client.conversations_replies(channel=P.CHANNEL_ID, ts=parent["ts"])
    assert [m["ts"] for m in replies["messages"]] == [parent["ts"], ts]
    assert replies["messages"][0]["reply_count"] == 1

    err = await _error(client.chat_update(channel=P.CHANNEL_ID, ts=parent["ts"], text="x"))
    assert err.response["error"] == "cant_update_message"
    err = await _error(client.chat_postMessage(channel=P.CHANNEL_ID, text="x", thread_ts="1.2"))
    assert err.response["error"] == "invalid_thread_ts"
    err = await _error(
        client.chat_postMessage(channel=P.CHANNEL_ID, text="x", thread_ts="1600000000.000001")
    )
    assert err.response["error"] == "thread_not_found"

    await client.chat_delete(channel=P.CHANNEL_ID, ts=ts)
    assert slack.find_message(P.CHANNEL_ID, ts) is None
    assert slack.deleted_messages[-1]["ts"] == ts
    err = await _error(client.chat_delete(channel=P.CHANNEL_ID, ts=ts))
    assert err.response["error"] == "message_not_found"


async def test_msg_too_long(slack: FakeSlack, client: AsyncWebClient):
    err = await _error(client.chat_postMessage(channel=P.CHANNEL_ID, text="x" * 40_001))
    assert err.response["error"] == "msg_too_long"
    ok = await client.chat_postMessage(channel=P.CHANNEL_ID, text="x" * 40_000)
    assert len(slack.find_message(P.CHANNEL_ID, ok["ts"])["text"]) == 40_000
    with pytest.warns(UserWarning, match="text"):
        err = await _error(client.chat_postMessage(channel=P.CHANNEL_ID))
    assert err.response["error"] == "no_text"


async def test_429_is_retried_by_the_rate_limit_handler(slack: FakeSlack):
    slack.rate_limit_next("chat.postMessage", times=1, retry_after=0)
    plain = AsyncWebClient(token=BOT, base_url=slack.api_url)
    err = await _error(plain.chat_postMessage(channel=P.CHANNEL_ID, text="hi"))
    assert err.response.status_code == 429
    assert err.response["error"] == "ratelimited"
    assert err.response.headers["Retry-After"] == "0"

    slack.rate_limit_next("chat.postMessage", times=1, retry_after=0)
    retrying = AsyncWebClient(
        token=BOT,
        base_url=slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    resp = await retrying.chat_postMessage(channel=P.CHANNEL_ID, text="hi")
    assert resp["ok"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 429, 200]
    assert slack.rate_limited_count == 2


async def test_per_channel_post_limiter(slack: FakeSlack, client: AsyncWebClient):
    slack.enable_rate_limits(post_per_second=1.0)
    await client.chat_postMessage(channel=P.CHANNEL_ID, text="one")
    err = await _error(client.chat_postMessage(channel=P.CHANNEL_ID, text="two"))
    assert err.response.status_code == 429
    assert int(err.response.headers["Retry-After"]) >= 1
    await client.chat_postMessage(channel="C0RANDOMXX", text="other channel is fine")
    assert slack.rate_limited_count == 1


async def test_files_upload_v2_into_a_thread(slack: FakeSlack, client: AsyncWebClient):
    parent = slack.add_message(P.CHANNEL_ID, "draw me a cat")
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    resp = await client.files_upload_v2(
        channel=P.CHANNEL_ID,
        thread_ts=parent["ts"],
        content=png,
        filename="cat.png",
        title="A cat",
        initial_comment="here you go",
    )
    assert resp["file"]["id"] == slack.uploads[0].file_id
    up = slack.uploads[0]
    assert (up.filename, up.data, up.title) == ("cat.png", png, "A cat")
    assert (up.channel, up.thread_ts, up.initial_comment) == (
        P.CHANNEL_ID,
        parent["ts"],
        "here you go",
    )
    posted = slack.thread(P.CHANNEL_ID, parent["ts"])[-1]
    assert posted["files"][0]["mimetype"] == "image/png"
    assert posted["text"] == "here you go"
    async with (
        aiohttp.ClientSession() as http,
        http.get(up.file["url_private"], headers={"Authorization": f"Bearer {BOT}"}) as r,
    ):
        assert r.content_type == "image/png"
        assert await r.read() == png


async def test_chat_stream_helper_accumulates_text(slack: FakeSlack, client: AsyncWebClient):
    parent = slack.add_message(P.DM_CHANNEL_ID, "tell me a story")
    streamer = await client.chat_stream(
        channel=P.DM_CHANNEL_ID, thread_ts=parent["ts"], buffer_size=8
    )
    await streamer.append(markdown_text="Once ")
    await streamer.append(markdown_text="upon a time")
    await streamer.append(markdown_text=", the end")
    await streamer.stop(markdown_text=".")
    stream = slack.streams[streamer.ts]
    assert stream.final_text == "Once upon a time, the end."
    assert stream.calls == ["start", "append", "stop"]
    assert stream.state == "stopped"
    assert slack.find_message(P.DM_CHANNEL_ID, streamer.ts)["text"] == stream.final_text

    err = await _error(
        client.chat_appendStream(channel=P.DM_CHANNEL_ID, ts=streamer.ts, markdown_text="x")
    )
    assert err.response["error"] == "message_not_in_streaming_state"

    chan_parent = slack.add_message(P.CHANNEL_ID, "hi")
    err = await _error(client.chat_startStream(channel=P.CHANNEL_ID, thread_ts=chan_parent["ts"]))
    assert err.response["error"] == "missing_recipient_team_id"
    started = await client.chat_startStream(
        channel=P.CHANNEL_ID,
        thread_ts=chan_parent["ts"],
        recipient_team_id="T1",
        recipient_user_id="UALICE",
        markdown_text="a",
    )
    await client.chat_appendStream(channel=P.CHANNEL_ID, ts=started["ts"], markdown_text="b")
    await client.chat_stopStream(channel=P.CHANNEL_ID, ts=started["ts"], markdown_text="c")
    assert slack.streams[started["ts"]].chunks == ["a", "b", "c"]


async def test_assistant_users_conversations_views_reactions(
    slack: FakeSlack, client: AsyncWebClient
):
    parent = slack.add_message(P.DM_CHANNEL_ID, "hello")
    await client.assistant_threads_setStatus(
        channel_id=P.DM_CHANNEL_ID, thread_ts=parent["ts"], status="is thinking…"
    )
    await client.assistant_threads_setSuggestedPrompts(
        channel_id=P.DM_CHANNEL_ID, prompts=[{"title": "Draw", "message": "Draw a cat"}]
    )
    await client.assistant_threads_setTitle(
        channel_id=P.DM_CHANNEL_ID, thread_ts=parent["ts"], title="Cats"
    )
    assert slack.statuses[0]["status"] == "is thinking…"
    assert slack.suggested_prompts[0]["prompts"][0]["title"] == "Draw"
    assert slack.titles[0]["title"] == "Cats"

    slack.add_user("UBOSS", "boss", is_admin=True, is_owner=True)
    boss = await client.users_info(user="UBOSS")
    assert boss["user"]["is_admin"] and boss["user"]["is_owner"]
    assert not (await client.users_info(user="UALICE"))["user"]["is_admin"]
    assert (await _error(client.users_info(user="UNOPE"))).response["error"] == "user_not_found"
    info = await client.conversations_info(channel=P.DM_CHANNEL_ID)
    assert info["channel"]["is_im"] is True

    await client.reactions_add(channel=P.DM_CHANNEL_ID, timestamp=parent["ts"], name="eyes")
    assert parent["reactions"] == [{"name": "eyes", "users": ["UBOT"], "count": 1}]
    err = await _error(
        client.reactions_add(channel=P.DM_CHANNEL_ID, timestamp=parent["ts"], name="eyes")
    )
    assert err.response["error"] == "already_reacted"

    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Edit"}, "blocks": []}
    err = await _error(client.views_open(trigger_id="123.456.abc", view=modal))
    assert err.response["error"] == "invalid_trigger_id"
    trigger = P.new_trigger_id()
    slack.register_trigger(trigger)
    opened = await client.views_open(trigger_id=trigger, view=modal)
    updated = await client.views_update(
        view_id=opened["view"]["id"], hash=opened["view"]["hash"], view=modal
    )
    assert updated["view"]["id"] == opened["view"]["id"]
    err = await _error(client.views_update(view_id=opened["view"]["id"], hash="stale", view=modal))
    assert err.response["error"] == "hash_conflict"


async def test_responses_match_the_2020_spec_where_it_has_the_method():
    """With spec-shaped ids (the 2020 spec's regexes reject "T1"/"BBOT") every success
    response of a method the spec describes validates, except real fields newer than the
    spec (message ``app_id``, file ``file_access``/``media_display_type``); methods missing
    from the spec (streaming, assistant.*, the external upload flow, apps.connections.open)
    are skipped."""
    fake = FakeSlack(BOT, APP, SECRET, team_id="T0TEAM0001", bot_id="B0BOT00001", check_spec=True)
    async with fake as slack:
        slack.add_user("U0ALICE01", "alice2")
        client = AsyncWebClient(token=BOT, base_url=slack.api_url)
        parent = slack.add_message(P.CHANNEL_ID, "question", user="U0ALICE01")
        await client.auth_test()
        posted = await client.chat_postMessage(
            channel=P.CHANNEL_ID, text="a", thread_ts=parent["ts"]
        )
        await client.chat_update(channel=P.CHANNEL_ID, ts=posted["ts"], text="b")
        await client.chat_postEphemeral(channel=P.CHANNEL_ID, user="U0ALICE01", text="psst")
        await client.users_info(user="U0ALICE01")
        await client.conversations_info(channel=P.CHANNEL_ID)
        await client.conversations_replies(channel=P.CHANNEL_ID, ts=parent["ts"])
        await client.reactions_add(channel=P.CHANNEL_ID, timestamp=parent["ts"], name="eyes")
        trigger = P.new_trigger_id()
        slack.register_trigger(trigger)
        modal = {"type": "modal", "title": {"type": "plain_text", "text": "M"}, "blocks": []}
        await client.views_open(trigger_id=trigger, view=modal)
        await client.chat_getPermalink(channel=P.CHANNEL_ID, message_ts=posted["ts"])
        await client.api_test()
        hosted = slack.add_file("a.png", b"PNG", "image/png", user="U0ALICE01")
        await client.files_info(file=hosted["id"])
        await client.chat_delete(channel=P.CHANNEL_ID, ts=posted["ts"])
        dm = slack.add_message(P.DM_CHANNEL_ID, "hi", user="U0ALICE01")
        await client.chat_startStream(channel=P.DM_CHANNEL_ID, thread_ts=dm["ts"])
    # Real fields newer than the 2020 schemas (additionalProperties: false there).
    stale = (
        "$.message: Additional properties are not allowed ('app_id' was unexpected)",
        "$.file: Additional properties are not allowed "
        "('file_access', 'media_display_type' were unexpected)",
    )
    unexpected = [
        (method, [p for p in problems if not p.endswith(stale)])
        for method, problems in slack.spec_problems
    ]
    assert [u for u in unexpected if u[1]] == []
    assert {"auth.test", "chat.postMessage", "chat.update", "chat.delete"} <= slack.spec_checked
    assert {"chat.startStream", "files.getUploadURLExternal"} & slack.spec_checked == set()
    assert "chat.startStream" in slack.spec_skipped


async def test_payload_builders_and_channel_history(slack: FakeSlack, client: AsyncWebClient):
    a, b = P.app_mention("hi"), P.message("hi")
    assert a["text"] == "<@UBOT> hi" and a["type"] == "app_mention"
    assert b["ts"] > a["ts"]
    assert P.event_callback(a)["event_id"] != P.event_callback(b)["event_id"]
    dm = P.im_message("psst")
    assert (dm["channel"], dm["channel_type"]) == (P.DM_CHANNEL_ID, "im")
    reply = P.thread_reply("more", thread_ts=b["ts"])
    assert reply["thread_ts"] == b["ts"] and reply["parent_user_id"] == "UALICE"
    shared = P.file_share_message("look", files=[{"id": "F1"}])
    assert shared["subtype"] == "file_share" and shared["files"] == [{"id": "F1"}]
    assert P.bot_message("beep")["subtype"] == "bot_message"
    modern = P.bot_message("beep", classic=False)
    assert "subtype" not in modern and modern["bot_profile"]["id"] == modern["bot_id"]
    started = P.assistant_thread_started(context_channel_id=P.CHANNEL_ID)
    assert started["assistant_thread"]["context"]["channel_id"] == P.CHANNEL_ID

    # Events pushed through the fake keep the history that conversations.replies reads.
    slack.add_channel("C0OTHERXX", "other")
    for event in (b, reply):
        event["channel"] = "C0OTHERXX"
        slack.record_event(event)
    slack.record_event(P.message_changed(channel="C0OTHERXX", new_text="more!", original=reply))
    replies = await client.conversations_replies(channel="C0OTHERXX", ts=b["ts"])
    assert [m["text"] for m in replies["messages"]] == ["hi", "more!"]
    slack.record_event(P.message_deleted(channel="C0OTHERXX", original=reply))
    assert [m["ts"] for m in slack.messages["C0OTHERXX"]] == [b["ts"]]


# --------------------------------------------------------------------------- file hosting


async def test_file_download_needs_the_token(slack: FakeSlack):
    f = slack.add_file("voice.m4a", b"AUDIO", "audio/mp4", declared_size=999)
    assert f["size"] == 999
    assert f["url_private"].startswith(slack.url)
    async with aiohttp.ClientSession() as http:
        async with http.get(f["url_private"], headers={"Authorization": f"Bearer {BOT}"}) as r:
            assert (r.status, r.content_type, await r.read()) == (200, "audio/mp4", b"AUDIO")
        async with http.get(f["url_private_download"]) as r:
            assert (r.status, r.content_type) == (200, "text/html")
            assert "Sign in" in await r.text()
        async with http.get(f["url_private"], headers={"Authorization": "Bearer xoxb-no"}) as r:
            assert r.content_type == "text/html"

        moved = slack.add_file("x.png", b"PNG", "image/png", redirect_to=True)
        async with http.get(
            moved["url_private"], headers={"Authorization": f"Bearer {BOT}"}, allow_redirects=False
        ) as r:
            assert r.status == 302
            assert r.headers["Location"].startswith(f"http://localhost:{slack.port}/")
    assert [e["authorized"] for e in slack.file_requests[:3]] == [True, False, False]


# --------------------------------------------------------------------------- Socket Mode


async def test_socket_mode_events_commands_and_reconnect(slack: FakeSlack, client: AsyncWebClient):
    app = AsyncApp(client=client, signing_secret=SECRET)
    mentions: list[dict] = []

    @app.event("app_mention")
    async def on_mention(event, say):
        mentions.append(event)
        await say(text=f"echo: {event['text']}", thread_ts=event["ts"])

    @app.command("/image")
    async def on_image(ack, command, respond, say):
        await ack("working on it")
        await respond(f"ephemeral: {command['text']}")
        await say("in channel")

    handler = AsyncSocketModeHandler(app, APP)
    await handler.connect_async()
    try:
        await slack.wait_connected()
        mention = P.app_mention("hello there")
        env = await slack.send_event(mention)
        assert await slack.wait_ack(env, timeout=3) == {"envelope_id": env}
        assert slack.ack_latency[env] < 3
        await _until(lambda: slack.bot_messages(P.CHANNEL_ID))
        assert mentions[0]["text"] == "<@UBOT> hello there"
        reply = slack.bot_messages(P.CHANNEL_ID)[0]
        assert reply["thread_ts"] == mention["ts"]
        assert reply["text"] == "echo: <@UBOT> hello there"
        assert slack.envelopes[env]["payload"]["authorizations"][0]["user_id"] == "UBOT"

        env = await slack.send_slash_command("/image", "a red fox", channel_id=P.CHANNEL_ID)
        ack = await slack.wait_ack(env, timeout=3)
        assert ack["payload"] == {"text": "working on it"}
        await _until(lambda: len(slack.ephemeral) >= 2 and len(slack.bot_messages()) >= 2)
        by_via = {e["via"]: e["text"] for e in slack.ephemeral}
        assert by_via == {"ack": "working on it", "response_url": "ephemeral: a red fox"}
        assert {e["user"] for e in slack.ephemeral} == {"UALICE"}
        assert slack.response_url_posts[0]["status"] == 200
        assert slack.bot_messages(P.CHANNEL_ID)[-1]["text"] == "in channel"

        await slack.disconnect_socket("refresh_requested")
        await slack.wait_connected(connections=2)
        assert len(slack.calls_to("apps.connections.open")) == 2
        env = await slack.send_event(P.app_mention("still there?"))
        await slack.wait_ack(env, timeout=3)
        await _until(lambda: len(mentions) == 2)
        assert slack.socket_connections == 2

        await slack.disconnect_socket(send_message=False)  # a bare close frame
        await slack.wait_connected(connections=3)
        env = await slack.send_event(P.app_mention("and now?"))
        await slack.wait_ack(env, timeout=3)
        await _until(lambda: len(mentions) == 3)
        assert len(slack.calls_to("apps.connections.open")) == 3
    finally:
        await handler.close_async()


async def test_socket_mode_stream_shortcut_modal_and_file_share(
    slack: FakeSlack, client: AsyncWebClient
):
    app = AsyncApp(client=client, signing_secret=SECRET)
    downloaded: list[bytes] = []

    @app.event("app_mention")
    async def on_mention(event, set_status, say_stream):
        await set_status("is drawing…")
        stream = await say_stream(buffer_size=1)
        await stream.append(markdown_text="Here ")
        await stream.append(markdown_text="it is")
        await stream.stop()

    @app.shortcut("edit_image")
    async def on_shortcut(ack, shortcut, client):
        await ack()
        modal = {
            "type": "modal",
            "callback_id": "edit_modal",
            "title": {"type": "plain_text", "text": "Edit image"},
            "private_metadata": shortcut["message"]["files"][0]["id"],
            "blocks": [],
        }
        await client.views_open(trigger_id=shortcut["trigger_id"], view=modal)

    @app.view("edit_modal")
    async def on_submit(ack, view):
        await ack(response_action="errors", errors={"prompt": "say more"})

    @app.event("message")
    async def on_file(event, client):
        url = event["files"][0]["url_private_download"]
        headers = {"Authorization": f"Bearer {client.token}"}
        async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as r:
            downloaded.append(await r.read())

    handler = AsyncSocketModeHandler(app, APP)
    await handler.connect_async()
    try:
        mention = P.app_mention("draw a fox")
        await slack.wait_ack(await slack.send_event(mention), timeout=3)
        await _until(lambda: any(s.state == "stopped" for s in slack.streams.values()))
        (stream,) = slack.streams.values()
        assert (stream.final_text, stream.thread_ts) == ("Here it is", mention["ts"])
        assert (stream.recipient_user_id, stream.recipient_team_id) == ("UALICE", "T1")
        assert slack.statuses[0]["status"] == "is drawing…"

        image = slack.add_file("fox.png", b"PNG-FOX", "image/png")
        shared = P.file_share_message("", files=[image])
        await slack.wait_ack(await slack.send_event(shared), timeout=3)
        await _until(lambda: downloaded)
        assert downloaded == [b"PNG-FOX"]

        env = await slack.send_interactive(P.message_shortcut("edit_image", shared))
        await slack.wait_ack(env, timeout=3)
        await _until(lambda: slack.views)
        (view,) = slack.views.values()
        assert view["private_metadata"] == image["id"]

        submission = P.view_submission("edit_modal", {"prompt": {"p": {"value": ""}}})
        ack = await slack.wait_ack(await slack.send_interactive(submission), timeout=3)
        assert ack["payload"] == {"response_action": "errors", "errors": {"prompt": "say more"}}
    finally:
        await handler.close_async()


async def _until(predicate, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- HTTP mode


async def test_http_events_signed_bad_signature_and_stale_timestamp(
    slack: FakeSlack, client: AsyncWebClient
):
    app = AsyncApp(client=client, signing_secret=SECRET)
    seen: list[dict] = []

    @app.event("message")
    async def on_message(event, say):
        seen.append(event)
        await say(text="got it", thread_ts=event["ts"])

    @app.command("/ask")
    async def on_ask(ack, respond):
        await ack()
        await respond(response_type="in_channel", text="answered")

    @app.view("modal")
    async def on_view(ack):
        await ack(response_action="clear")

    runner = web.AppRunner(app.web_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/slack/events"
    try:
        status, _ = await slack.deliver_http(url, P.im_message("hi in a DM"))
        assert status == 200
        await _until(lambda: slack.bot_messages(P.DM_CHANNEL_ID))
        assert seen[0]["channel_type"] == "im"

        status, _ = await slack.deliver_http(url, P.message("forged"), bad_signature=True)
        assert status == 401
        status, _ = await slack.deliver_http(url, P.message("old"), timestamp=time.time() - 301)
        assert status == 401
        status, _ = await slack.deliver_http(url, P.message("unsigned"), sign=False)
        assert status == 401
        await asyncio.sleep(0.05)
        assert len(seen) == 1

        status, _ = await slack.deliver_http(
            url, P.message("again"), retry_num=1, retry_reason="http_timeout"
        )
        assert status == 200
        assert slack.http_deliveries[-1]["headers"]["X-Slack-Retry-Num"] == "1"

        status, _ = await slack.deliver_http(url, slack.build_slash_command("/ask", "why?"))
        assert status == 200
        await _until(lambda: any(m["text"] == "answered" for m in slack.bot_messages()))

        status, body = await slack.deliver_http(url, P.view_submission("modal", {}))
        assert (status, json.loads(body)) == (200, {"response_action": "clear"})
        status, body = await slack.deliver_http(url, P.url_verification("abc"))
        assert (status, json.loads(body)) == (200, {"challenge": "abc"})
    finally:
        await runner.cleanup()
