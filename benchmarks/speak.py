"""`/speak` for a 60-word text through the whole bot, versus a direct Realtime session producing
the same audio; and the CPU spent encoding the audio.

The loopback fake OpenAI runs in its own process (as OpenAI would) with its Realtime endpoint
paced like a real voice model: `--latency` seconds before each response (default 0.3) and the
audio streamed at `--speed` times real time (default 10). Each round makes, alternately, a
direct session (the SDK's `client.realtime.connect`: `session.update`, then one out-of-band
`response.create` per chunk the engine would send, until the last `response.done`, the PCM
kept) and a `/speak` through dispatcher + lanes + storage + the Realtime engine + PyAV
encoding, timed from `dispatcher.submit` to the reply with the audio file handed to the
platform's outbox. Prints the median ratio (target <= 1.15) and, per format, the CPU seconds
spent encoding per second of audio. Asserts nothing.

    .venv/bin/python -m benchmarks.speak [--rounds 7] [--latency 0.3] [--speed 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from openai import AsyncOpenAI

from benchmarks.common import child_process, machine_line, pct
from bot.app import App
from bot.backends.realtime_speech import READ_ALOUD, split_for_speech
from bot.core.config import MODEL_DEFAULTS, load_settings
from bot.core.types import Actor, CommandCall, ConversationKey, Reply
from bot.files.speech_encoding import ENCODINGS, SAMPLE_RATE, encode_pcm, pcm_seconds
from testing.fakes.openai_fake import FakeOpenAI

TEXT = (
    "Good morning, team. The release went out last night without a hitch, and the first "
    "numbers look good. Sign-ups are up a fifth on last week, support tickets are down, and "
    "the new search is twice as fast. Thank you all for the late hours. Let us meet at ten "
    "in the big room to plan the next steps together."
)
USER = Actor("U1", "bench")
KEY = ConversationKey("bench", "W1", "C1")
_ids = itertools.count()


class FileOutbox:
    """Records when a reply carrying a file is handed over."""

    def __init__(self) -> None:
        self.waiting: asyncio.Future[float] | None = None

    async def send(self, reply: Reply) -> None:
        if not reply.files:
            raise RuntimeError(f"unexpected reply: {reply.text}")
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(time.perf_counter())

    def open_stream(self, *args: object) -> None:
        raise RuntimeError("no streams in this benchmark")


def _serve_fake(latency: float, speed: float, pipe) -> None:  # type: ignore[no-untyped-def]
    async def serve() -> None:
        async with FakeOpenAI(spec_check=False) as fake:
            fake.realtime.delay = latency
            fake.realtime.speed = speed
            pipe.send(fake.base_url)
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    asyncio.run(serve())


async def direct(client: AsyncOpenAI, model: str) -> tuple[float, bytes]:
    """The same audio with nothing around it: seconds taken, and the PCM."""
    pcm = bytearray()
    started = time.perf_counter()
    async with client.realtime.connect(model=model) as connection:
        await connection.session.update(
            session={
                "type": "realtime",
                "output_modalities": ["audio"],
                "audio": {
                    "output": {
                        "format": {"type": "audio/pcm", "rate": SAMPLE_RATE},
                        "voice": "alloy",
                    }
                },
            }
        )
        for chunk in split_for_speech(TEXT):
            await connection.response.create(
                response={
                    "conversation": "none",
                    "output_modalities": ["audio"],
                    "instructions": READ_ALOUD,
                    "input": [
                        {
                            "type": "message",
                            "role": "user",
                            "content": [{"type": "input_text", "text": chunk}],
                        }
                    ],
                }
            )
            async for event in connection:
                if event.type == "response.output_audio.delta":
                    pcm += base64.b64decode(event.delta)
                elif event.type == "response.done":
                    break
    return time.perf_counter() - started, bytes(pcm)


async def through_the_bot(app: App, outbox: FileOutbox) -> float:
    outbox.waiting = asyncio.get_running_loop().create_future()
    call = CommandCall(KEY, USER, "speak", f"speak-{next(_ids)}", text=TEXT)
    started = time.perf_counter()
    assert await app.dispatcher.submit(call)
    finished = await asyncio.wait_for(outbox.waiting, 120)
    await app.dispatcher.wait_idle()
    return finished - started


def encoding_cpu(pcm: bytes, repeats: int = 5) -> dict[str, float]:
    """CPU seconds spent encoding one second of audio, per format (best of `repeats`)."""
    seconds = pcm_seconds(pcm)
    result = {}
    for fmt in ENCODINGS:
        best = float("inf")
        for _ in range(repeats):
            started = time.process_time()
            encode_pcm(pcm, fmt)
            best = min(best, time.process_time() - started)
        result[fmt] = best / seconds
    return result


async def main(rounds: int, latency: float, speed: float) -> None:
    print(machine_line())
    words = len(TEXT.split())
    chunks = split_for_speech(TEXT)
    print(
        f"text: {words} words, {len(TEXT)} characters, {len(chunks)} responses; fake: "
        f"{latency * 1000:.0f} ms before each response, audio at {speed:g}x real time"
    )
    with (
        child_process(_serve_fake, latency, speed) as (base_url, _),
        tempfile.TemporaryDirectory() as tmp,
    ):
        settings = load_settings(
            OPENAI_API_KEY="sk-bench",
            OPENAI_BASE_URL=base_url,
            DATABASE_URL=f"sqlite:///{Path(tmp) / 'bench.db'}",
            SWITCHBOARD_OPENAI_MAX_RETRIES=0,
        )
        app = await App.create(settings)
        outbox = FileOutbox()
        app.dispatcher.register_outbox(KEY.platform, outbox)  # type: ignore[arg-type]
        client = AsyncOpenAI(api_key="sk-bench", base_url=base_url, max_retries=0)
        try:
            await direct(client, MODEL_DEFAULTS["speech"])  # warm both paths once
            await through_the_bot(app, outbox)
            ratios, direct_times, bot_times = [], [], []
            pcm = b""
            for _ in range(rounds):
                plain, pcm = await direct(client, MODEL_DEFAULTS["speech"])
                full = await through_the_bot(app, outbox)
                direct_times.append(plain)
                bot_times.append(full)
                ratios.append(full / plain)
        finally:
            await client.close()
            with contextlib.suppress(Exception):
                await app.shutdown()
    audio = pcm_seconds(pcm)
    print(f"audio: {audio:.1f} s per /speak")
    print(
        f"direct Realtime session: median {statistics.median(direct_times) * 1000:.0f} ms; "
        f"/speak to the posted file: median {statistics.median(bot_times) * 1000:.0f} ms "
        f"(p90 {pct(bot_times, 0.9) * 1000:.0f} ms)"
    )
    print(
        f"/speak ÷ direct: median {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}; target <= 1.15) over {rounds} rounds"
    )
    cpu = encoding_cpu(pcm)
    print(
        "encoding CPU per second of audio: "
        + ", ".join(f"{fmt} {value * 1000:.1f} ms" for fmt, value in cpu.items())
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--speed", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.latency, args.speed))
