"""Issue 19, item 10: files code interpreter made are streamed with a size cap, and the user is
told when one is too big to post. Through slack-bolt against the Slack fake, the container and
its files served by the OpenAI fake."""

from __future__ import annotations

from pathlib import Path

from bot.backends.containers import FILE_MAX_BYTES
from storage import configs
from testing.fakes import slack_payloads as P
from testing.fakes.openai_fake import CodeRun, ModelOutput
from tests.test_slack_adapter import start_env, stop_env, until


async def test_a_huge_container_file_is_not_downloaded_whole_and_the_user_is_told(
    tmp_path: Path,
) -> None:
    env = await start_env(tmp_path)
    try:
        key = configs.ConversationKey("slack", "T1", P.DM_CHANNEL_ID)
        await configs.save_overrides(
            env.app.db, key, {"tools": ["code_interpreter"]}, updated_by="test"
        )
        huge = b"x" * (FILE_MAX_BYTES + 1)
        env.openai.answer = lambda turn: ModelOutput(
            text="Here are your files.",
            hosted=[
                CodeRun(
                    "make()",
                    logs="done",
                    files=(("dump.csv", huge), ("summary.csv", b"a,b\n1,2\n")),
                )
            ],
        )
        await env.slack.send_event(P.im_message("export everything"))
        await env.settle(1)
        await until(lambda: len(env.slack.uploads) == 1)
        assert [u.filename for u in env.slack.uploads] == ["summary.csv"]
        text = env.bot_texts(P.DM_CHANNEL_ID)[0]  # then the upload's own message
        assert "Here are your files." in text
        assert "dump.csv is larger than the 25 MB I post here" in text
    finally:
        await stop_env(env)
