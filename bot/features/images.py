"""/imagine, /edit and /variation on the configured image model (settings.image_model).

`/variation` is an edit with a variation prompt: the old `/images/variations` endpoint is
retired. Prompts are screened by moderation first when it is on for the channel."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.backends.images import ImageBatch, Upload
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
        options: dict[str, Any] = {
            name: values[name] for name in ("size", "quality", "background") if name in values
        }
        if values.get("background") == "transparent":
            options["output_format"] = "png"

        async def work() -> tuple[ImageBatch, Usage]:
            batch = await self._media.images.generate(
                model=self._model, prompt=parsed.text, n=int(values.get("count", 1)), **options
            )
            return batch, batch.usage

        batch = await self._media.metered(
            call.key,
            user_id=call.actor.id,
            event_id=call.event_id,
            kind="image",
            model=self._model,
            work=work,
        )
        files = _files(batch, "image")
        text = _caption(batch, f"“{_short(parsed.text)}”", len(files))
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
        mask_file: Upload | None = None
        if mask_att is not None:
            mask_bytes = await fetch_checked(mask_att, "image", limits)
            mask = await asyncio.to_thread(
                pictures.prepare_mask, mask_bytes, mask_att.name, (source.width, source.height)
            )
            mask_file = (mask.name, mask.data, mask.mime)
        image = (source.name, source.data, source.mime)
        batch = await self._edit(call, prompt, image, 1, mask_file, kind="edit")
        files = _files(batch, "edited")
        text = _caption(batch, f"“{_short(prompt)}”", len(files))
        return Reply(call.key, text=text, files=files, actor_id=call.actor.id)

    async def variation(self, call: CommandCall) -> Reply:
        parsed = parse(call.text, call.options, (self._count,))
        count = int(parsed.values.get("count", 1))
        source_att, _mask = _image_and_mask(call)
        source_bytes = await fetch_checked(source_att, "image", self._media.limits)
        source = await asyncio.to_thread(pictures.prepare_for_edit, source_bytes, source_att.name)
        image = (source.name, source.data, source.mime)
        batch = await self._edit(call, VARIATION_PROMPT, image, count, None, kind="variation")
        files = _files(batch, "variation")
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

    async def _edit(
        self,
        call: CommandCall,
        prompt: str,
        image: Upload,
        n: int,
        mask: Upload | None,
        *,
        kind: str,
    ) -> ImageBatch:
        async def work() -> tuple[ImageBatch, Usage]:
            batch = await self._media.images.edit(
                model=self._model, prompt=prompt, image=image, n=n, mask=mask
            )
            return batch, batch.usage

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


def _files(batch: ImageBatch, stem: str) -> tuple[OutFile, ...]:
    if batch.undecodable:
        raise UserError("OpenAI sent back an image I could not decode.")
    files = tuple(
        OutFile(f"{stem}-{picture.number}.{picture.extension}", picture.mime, picture.data)
        for picture in batch.pictures
    )
    if not files:
        raise UserError("OpenAI returned no image for this request. Please try again.")
    return files


def _caption(batch: ImageBatch, what: str, count: int) -> str:
    noun = "image" if count == 1 else "images"
    text = f"{count} {noun} for {what}."
    if batch.revised_prompts:
        text += f"\nRevised prompt: {batch.revised_prompts[0]}"
    return text


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
