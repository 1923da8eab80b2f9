"""A job finished: keep what it made. One function per modality.

``save_image_result``, ``save_speech_result`` and ``save_chat_result`` write the file
atomically with its provenance record (images also carry the watermark), then append
the audit record. The studios, the CLI commands and the API server all call these, so a
PNG made in the window, on the command line or over HTTP is the same file with the
same record, and the audit log names each modality one way (``JOB_*``).

A result goes either to an explicit ``path`` (the CLI's ``--out``, the server's private
temporary folder; an existing file is replaced only with ``overwrite``) or into a
``store``, which picks a fresh name. Auditing never raises (desktop.outputs.audit).
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from desktop.outputs import audit, image_meta
from desktop.outputs.clip_store import Clip
from desktop.outputs.provenance import provenance_record
from desktop.outputs.provenance_wav import save_flac, save_wav

# the audit log's job names, one per modality
JOB_IMAGE, JOB_SPEECH, JOB_CHAT = "image", "speech", "chat"


def _one_target(path, store) -> None:
    if (path is None) == (store is None):
        raise TypeError("give exactly one of path= or store=")


def save_image_result(image: np.ndarray, metadata: dict[str, Any], pack, provider: str = "", *, path: Path | None = None, store=None, overwrite: bool = False) -> Path:
    """One generated image (an ImageResult's ``image`` and ``metadata``) as a PNG with its
    record and watermark, audited. Raises OutputExistsError when ``path`` exists (without
    ``overwrite``), OSError when it cannot be written."""
    _one_target(path, store)
    if store is not None:
        written = store.add(image, pack, metadata, provider)
    else:
        record = image_meta.image_record(pack, metadata, provider)
        written = image_meta.save_image(path, image, record, overwrite=overwrite)
    audit.record_job(JOB_IMAGE, pack, metadata, written)
    return written


def speech_settings(request, stats: dict[str, Any] | None, stopped: bool = False) -> dict[str, Any]:
    """The settings a clip records: what was asked (``request``, a SpeechRequest) and what
    the voice resolved (``stats`` of its Done event: scales, speaker)."""
    stats = stats or {}
    return {
        "speed": request.synthesis.speed,
        "variation": request.synthesis.variation,
        "scales": stats.get("scales"),
        "speaker": stats.get("speaker", request.synthesis.speaker),
        "stopped": stopped,
    }


def speech_record(pack, settings: dict[str, Any], stats: dict[str, Any] | None, provider: str = "") -> dict[str, Any]:
    stats = stats or {}
    return provenance_record("speech", pack, settings, provider=str(stats.get("provider") or provider), seed=stats.get("seed"))


def save_speech_result(
    samples: np.ndarray, sample_rate: int, pack, request, stats: dict[str, Any] | None, provider: str = "", *,
    stopped: bool = False, path: Path | None = None, store=None, overwrite: bool = False, audio_format: str = "wav",
) -> Clip:
    """One spoken clip (the samples of every AudioChunk) as a WAV (or, to a ``path`` only,
    FLAC) carrying its record and the text spoken, audited. ``stopped``: the job was
    stopped and this is what arrived before."""
    _one_target(path, store)
    settings = speech_settings(request, stats, stopped)
    record = speech_record(pack, settings, stats, provider)
    samples = np.asarray(samples, dtype=np.float32)
    if store is not None:
        clip = store.add(samples, sample_rate, record, request.text)
    else:
        if audio_format == "flac":
            written = save_flac(path, samples, sample_rate, record)
        else:
            written = save_wav(path, samples, sample_rate, record, request.text, overwrite=overwrite)
        clip = Clip(written, samples, sample_rate, request.text, record)
    audit.record_job(JOB_SPEECH, pack, {**settings, "seed": record["seed"]}, clip.path)
    return clip


def chat_settings(sampling, seed: int | None, max_tokens: int | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a reply records: the sampling settings and the seed used (key ``seed``, as in
    every other record), plus what the caller adds (the API server: endpoint, finish)."""
    values = asdict(sampling) if is_dataclass(sampling) else dict(sampling or {})
    settings: dict[str, Any] = {"sampling": values, "seed": seed}
    if max_tokens is not None:
        settings["max_tokens"] = max_tokens
    return {**settings, **(extra or {})}


def save_chat_result(reply: str, pack, sampling, seed: int | None, *, max_tokens: int | None = None, extra: dict[str, Any] | None = None) -> None:
    """One reply, audited. The reply's text itself is kept by the caller (the chat store's
    database, stdout for the CLI, the HTTP response); an export to a file is
    ``save_chat_export``."""
    audit.record_job(JOB_CHAT, pack, chat_settings(sampling, seed, max_tokens, extra), reply)


def save_chat_export(path: Path | str, markdown_for, pack, sampling, provider: str = "") -> Path:
    """A conversation exported as Markdown whose front matter carries the provenance
    record. ``markdown_for(front)`` renders it (ChatStore.to_markdown with the
    conversation bound). Replaces ``path``: the save dialog already asked."""
    from desktop.engines.atomic_write import write_text_atomic

    values = asdict(sampling) if is_dataclass(sampling) else dict(sampling or {})
    record = provenance_record("chat", pack, values, provider=provider)
    return write_text_atomic(Path(path), markdown_for({"provenance": record}), overwrite=True)
