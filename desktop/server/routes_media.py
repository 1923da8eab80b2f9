"""``/v1/images/generations`` and ``/v1/audio/speech`` over the image and speech engines.

Files are made exactly as the studio and the CLI make them - the same provenance record,
the same watermark, the same atomic writers - into a private temporary folder, read back
as bytes and deleted: a client never names a path, and nothing it sends is written
anywhere it chose.
"""

from __future__ import annotations

import base64
import tempfile
import time
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response

from desktop.engines.errors import RequestError
from desktop.engines.events import AudioChunk, Done, ImageResult

from .schemas import ImageBody, SpeechBody

MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac"}


def _image_job(body: ImageBody):
    from desktop.commands.image import parse_size
    from desktop.engines.image.engine import ImageRequest
    from desktop.outputs.saving import save_image_result

    width, height = parse_size(body.size)
    request = ImageRequest(
        prompt=body.prompt, negative_prompt=body.negative_prompt or "", width=width, height=height,
        prompt_2=body.prompt_2 or "", negative_prompt_2=body.negative_prompt_2 or "",
        steps=body.steps, guidance=body.guidance, scheduler=body.scheduler or "", seed=body.seed, batch_count=body.n,
    )
    request.validate()  # before queueing for the model

    def make(engine, slot):
        with tempfile.TemporaryDirectory(prefix="atelier-api-") as tmp:
            made = 0
            for event in engine.generate(request):
                if isinstance(event, ImageResult):
                    made += 1  # one file per image of the batch: writes never replace a file
                    path = Path(tmp) / f"image-{made}.png"
                    png = save_image_result(event.image, event.metadata, engine.pack, engine.provider.used, path=path).read_bytes()
                    yield {"b64_json": base64.b64encode(png).decode("ascii"), "revised_prompt": None, "seed": event.seed}

    return make


def _speech_job(body: SpeechBody):
    import numpy as np

    from desktop.engines.speech.engine import SpeechRequest
    from desktop.outputs.saving import save_speech_result
    from desktop.engines.speech.synthesis import SynthesisSettings

    request = SpeechRequest(body.input, SynthesisSettings(speed=body.speed, seed=body.seed))
    request.validate()

    def make(engine, slot):
        if body.voice is not None and body.voice in engine.speakers:
            request.synthesis = replace(request.synthesis, speaker=body.voice)  # OpenAI's voice names ("alloy"...) are not ours: ignored
        chunks, stats = [], {}
        for event in engine.generate(request):
            if isinstance(event, AudioChunk):
                chunks.append(event.samples)
            elif isinstance(event, Done):
                stats = event.stats
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        with tempfile.TemporaryDirectory(prefix="atelier-api-") as tmp:
            path = Path(tmp) / f"speech.{body.response_format}"
            clip = save_speech_result(samples, engine.sample_rate, engine.pack, request, stats, engine.provider.used, path=path, audio_format=body.response_format)
            data = clip.path.read_bytes()
        yield data

    return make


async def _collect(request: Request, model: str, make) -> list:
    request.state.model = model
    out = []
    async with aclosing(request.app.state.jobs.events(model, make)) as events:
        async for item in events:
            out.append(item)
    return out


def register(app: FastAPI) -> None:
    @app.post("/v1/images/generations")
    async def images(body: ImageBody, request: Request):
        request.app.state.catalog.entry(body.model, "image")
        data = await _collect(request, body.model, _image_job(body))
        return {"created": int(time.time()), "data": data}

    @app.post("/v1/audio/speech")
    async def speech(body: SpeechBody, request: Request):
        request.app.state.catalog.entry(body.model, "speech")
        if not body.input.strip():
            raise RequestError("Nothing to say: input is empty.")
        (data,) = await _collect(request, body.model, _speech_job(body))
        return Response(content=data, media_type=MEDIA_TYPES[body.response_format])
