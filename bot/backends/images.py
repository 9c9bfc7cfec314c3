"""Image generation and editing (`/v1/images/...`): pictures and their usage come back as
values; the commands keep their options, captions and messages."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from openai import AsyncOpenAI

from bot.backends.common import Upload
from bot.backends.retry import RetryPolicy
from bot.core.types import Usage

MIMES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}


@dataclass(frozen=True, slots=True)
class Picture:
    data: bytes = field(repr=False)
    extension: str
    mime: str
    number: int  # its place in the response, from 1


@dataclass(frozen=True, slots=True)
class ImageBatch:
    """The pictures of one call (those that came with data), in order; `undecodable` when one
    came with data that is not base64; `revised_prompts` as the model rewrote the prompt."""

    pictures: tuple[Picture, ...]
    usage: Usage
    revised_prompts: tuple[str, ...] = ()
    undecodable: bool = False


class ImageBackend:
    def __init__(self, client: AsyncOpenAI, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry

    async def generate(self, *, model: str, prompt: str, n: int, **options: Any) -> ImageBatch:
        """`options`: size, quality, background, output_format (left out: the model's default)."""
        params: dict[str, Any] = {"model": model, "prompt": prompt, "n": n, **options}
        response = await self._retry.call(lambda: self._client.images.generate(**params))
        return _batch(response, _usage(response, model, n))

    async def edit(
        self, *, model: str, prompt: str, image: Upload, n: int, mask: Upload | None = None
    ) -> ImageBatch:
        params: dict[str, Any] = {"model": model, "prompt": prompt, "image": image, "n": n}
        if mask is not None:
            params["mask"] = mask
        response = await self._retry.call(lambda: self._client.images.edit(**params))
        return _batch(response, _usage(response, model, n))


def _batch(response: Any, usage: Usage) -> ImageBatch:
    fmt = getattr(response, "output_format", None) or "png"
    extension = "jpg" if fmt == "jpeg" else fmt
    mime = MIMES.get(fmt, "image/png")
    pictures, undecodable = [], False
    for number, item in enumerate(response.data or [], 1):
        if not item.b64_json:
            continue
        try:
            data = base64.b64decode(item.b64_json, validate=True)
        except (binascii.Error, ValueError):
            undecodable = True
            break
        pictures.append(Picture(data, extension, mime, number))
    revised = tuple(item.revised_prompt for item in response.data or [] if item.revised_prompt)
    return ImageBatch(tuple(pictures), usage, revised, undecodable)


def _usage(response: Any, model: str, n: int) -> Usage:
    usage = getattr(response, "usage", None)
    images = len(response.data or []) or n
    if usage is None:
        return Usage(model=model, images=images)
    details = usage.input_tokens_details
    image_in = details.image_tokens if details else 0
    text_in = details.text_tokens if details else usage.input_tokens - image_in
    out_details = usage.output_tokens_details
    image_out = out_details.image_tokens if out_details else usage.output_tokens
    text_out = out_details.text_tokens if out_details else 0
    return Usage(
        model=model,
        input_tokens=text_in,
        output_tokens=text_out,
        image_input_tokens=image_in,
        image_output_tokens=image_out,
        images=images,
    )
