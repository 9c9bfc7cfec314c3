"""/imagine, /edit and /variation on the configured image model (settings.image_model).

`/variation` is an edit with a variation prompt: the old `/images/variations` endpoint is
retired. Prompts are screened by moderation first when it is on for the channel."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from bot.core.errors import UserError
from bot.core.types import Attachment, CommandCall, OutFile, Reply, Usage
from bot.features.media import MediaContext
from bot.features.media_options import Option, parse
from bot.files import pictures
from bot.files.supported import fetch_checked

SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536")
QUALITIES = ("auto", "low", "medium", "high")
BACKGROUNDS = ("auto", "transparent", "opaque")
VARIATION_PROMPT = (
    "Create a variation of this image: keep its subject, composition and style, and change "
    "the details, as a fresh take by the same artist."
)
MIMES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}
IMAGINE_USAGE = (
    "Tell me what to draw, e.g. `/imagine a red fox in the snow size=1536x1024 quality=high "
    "count=2` (size: {sizes}; quality: {qualities}; background: {backgrounds}; count: 1-{most})."
)


class ImageCommands:
    def __init__(self, media: MediaContext) -> None:
        self._media = media
        most = media.settings.max_image_count
        self._count = Option("count", low=1, high=most)
        self._imagine_options = (
            Option("size", SIZES),
            Option("quality", QUALITIES),
            Option("background", BACKGROUNDS),
            self._count,
        )

    @property
    def _model(self) -> str:
        return self._media.settings.image_model

    async def imagine(self, call: CommandCall) -> Reply:
        parsed = parse(call.text, call.options, self._imagine_options, text_option="prompt")
        if not parsed.text:
            raise UserError(
                IMAGINE_USAGE.format(
                    sizes=", ".join(SIZES),
                    qualities=", ".join(QUALITIES),
                    backgrounds=", ".join(BACKGROUNDS),
                    most=self._media.settings.max_image_count,
                )
            )
        await self._screen(call, parsed.text)
        values = parsed.values
        params: dict[str, Any] = {
            "model": self._model,
            "prompt": parsed.text,
            "n": int(values.get("count", 1)),
        }
        for name in ("size", "quality", "background"):
            if name in values:
                params[name] = values[name]
        if values.get("background") == "transparent":
            params["output_format"] = "png"

        async def work() -> tuple[Any, Usage]:
            response = await self._media.retry.call(
                lambda: self._media.client.images.generate(**params)
            )
            return response, _usage(response, self._model, params["n"])

        response = await self._media.metered(
            call.key,
            user_id=call.actor.id,
            event_id=call.event_id,
            kind="image",
            model=self._model,
            work=work,
        )
        files = _files(response, "image")
        text = _caption(response, f"“{_short(parsed.text)}”", len(files))
        return Reply(call.key, text=text, files=files, actor_id=call.actor.id)

    async def edit(self, call: CommandCall) -> Reply:
        prompt = parse(call.text, call.options, (), text_option="prompt").text
        if not prompt:
            raise UserError(
                "Say what should change, e.g. `/edit add a red hat` with the image attached "
                "(and optionally a mask: transparent or white = the area to change)."
            )
        source_att, mask_att = _image_and_mask(call)
        await self._screen(call, prompt)
        limits = self._media.limits
        source_bytes = await fetch_checked(source_att, "image", limits)
        source = await asyncio.to_thread(pictures.prepare_for_edit, source_bytes, source_att.name)
        params: dict[str, Any] = {
            "model": self._model,
            "prompt": prompt,
            "image": (source.name, source.data, source.mime),
            "n": 1,
        }
        if mask_att is not None:
            mask_bytes = await fetch_checked(mask_att, "image", limits)
            mask = await asyncio.to_thread(
                pictures.prepare_mask, mask_bytes, mask_att.name, (source.width, source.height)
            )
            params["mask"] = (mask.name, mask.data, mask.mime)
        response = await self._edit(call, params, kind="edit")
        files = _files(response, "edited")
        text = _caption(response, f"“{_short(prompt)}”", len(files))
        return Reply(call.key, text=text, files=files, actor_id=call.actor.id)

    async def variation(self, call: CommandCall) -> Reply:
        parsed = parse(call.text, call.options, (self._count,))
        count = int(parsed.values.get("count", 1))
        source_att, _mask = _image_and_mask(call)
        source_bytes = await fetch_checked(source_att, "image", self._media.limits)
        source = await asyncio.to_thread(pictures.prepare_for_edit, source_bytes, source_att.name)
        params = {
            "model": self._model,
            "prompt": VARIATION_PROMPT,
            "image": (source.name, source.data, source.mime),
            "n": count,
        }
        response = await self._edit(call, params, kind="variation")
        files = _files(response, "variation")
        noun = "variation" if len(files) == 1 else "variations"
        text = f"{len(files)} {noun} of “{source_att.name}”."
        return Reply(call.key, text=text, files=files, actor_id=call.actor.id)

    async def _screen(self, call: CommandCall, prompt: str) -> None:
        await self._media.screen(
            call.key,
            prompt,
            user_id=call.actor.id,
            event_id=call.event_id,
            what="This prompt",
            withheld="was not sent to the image model",
        )

    async def _edit(self, call: CommandCall, params: dict[str, Any], *, kind: str) -> Any:
        async def work() -> tuple[Any, Usage]:
            response = await self._media.retry.call(
                lambda: self._media.client.images.edit(**params)
            )
            return response, _usage(response, self._model, params["n"])

        return await self._media.metered(
            call.key,
            user_id=call.actor.id,
            event_id=call.event_id,
            kind=kind,
            model=self._model,
            work=work,
        )


def _image_and_mask(call: CommandCall) -> tuple[Attachment, Attachment | None]:
    """The source image and the optional mask of a command. Discord names them in `options`;
    elsewhere (the Slack shortcut) the mask is the second file."""
    attachments = list(call.attachments)
    if not attachments:
        raise UserError(
            f"/{call.name} needs an image: attach one to the command. (On Slack: mention me "
            f"with `/{call.name} …` and attach the image to that message, or use the "
            "“Edit image” shortcut.)"
        )
    mask_name = call.options.get("mask")
    image_name = call.options.get("image")
    mask = None
    if mask_name:
        mask = next((a for a in attachments if a.name == mask_name), None)
    elif len(attachments) > 1 and call.name == "edit":
        mask = attachments[1]
    rest = [a for a in attachments if a is not mask]
    source = next((a for a in rest if a.name == image_name), rest[0] if rest else attachments[0])
    return source, mask


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


def _files(response: Any, stem: str) -> tuple[OutFile, ...]:
    fmt = getattr(response, "output_format", None) or "png"
    ext = "jpg" if fmt == "jpeg" else fmt
    files = []
    for index, item in enumerate(response.data or []):
        if not item.b64_json:
            continue
        try:
            data = base64.b64decode(item.b64_json, validate=True)
        except (binascii.Error, ValueError):
            raise UserError("OpenAI sent back an image I could not decode.") from None
        files.append(OutFile(f"{stem}-{index + 1}.{ext}", MIMES.get(fmt, "image/png"), data))
    if not files:
        raise UserError("OpenAI returned no image for this request. Please try again.")
    return tuple(files)


def _caption(response: Any, what: str, count: int) -> str:
    revised = [item.revised_prompt for item in response.data or [] if item.revised_prompt]
    noun = "image" if count == 1 else "images"
    text = f"{count} {noun} for {what}."
    if revised:
        text += f"\nRevised prompt: {revised[0]}"
    return text


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
