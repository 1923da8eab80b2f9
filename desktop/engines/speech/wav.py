"""16-bit PCM WAV files with a LIST/INFO chunk carrying provenance (stdlib + numpy).

INFO fields: ``ICMT`` holds the Atelier provenance record (JSON), ``ISFT`` the software,
``INAM`` the spoken text (trimmed), ``IGNR`` "AI-generated". Players ignore chunks they
do not know, so the file plays everywhere; :func:`read_wav` gives the record back.
Writes go through :func:`desktop.engines.atomic_write.write_atomic`: an exclusive temporary file
published atomically, so a crash never leaves half a clip and an existing file is only
replaced when the caller asks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from desktop.engines.atomic_write import write_atomic

MAX_INFO_CHARS = 60_000


@dataclass
class WavData:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    info: dict[str, str] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.samples.size / self.sample_rate if self.sample_rate else 0.0


def to_pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def _info_chunk(info: dict[str, str]) -> bytes:
    body = b"INFO"
    for key, value in info.items():
        if len(key) != 4 or not value:
            continue
        data = value[:MAX_INFO_CHARS].encode("utf-8") + b"\0"
        body += key.encode("ascii") + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")
    return b"LIST" + struct.pack("<I", len(body)) + body


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int, info: dict[str, str] | None = None, overwrite: bool = False) -> Path:
    path = Path(path)
    pcm = to_pcm16(samples)
    fmt = struct.pack("<HHIIHH", 1, 1, sample_rate, sample_rate * 2, 2, 16)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if info:
        chunks += _info_chunk(info)
    chunks += b"data" + struct.pack("<I", len(pcm)) + pcm + (b"\0" if len(pcm) % 2 else b"")
    return write_atomic(path, b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks, overwrite=overwrite)


def read_wav(path: str | Path) -> WavData:
    """Read a mono/stereo 16-bit PCM WAV and its INFO fields. Raises ValueError if the file
    is not one (the callers turn that into a message)."""
    raw = Path(path).read_bytes()
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{Path(path).name} is not a WAV file")
    pos, fmt, data, info = 12, None, None, {}
    while pos + 8 <= len(raw):
        cid, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        body = raw[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            data = body
        elif cid == b"LIST" and body[:4] == b"INFO":
            info.update(_parse_info(body[4:]))
        pos += 8 + size + (size % 2)
    if fmt is None or data is None:
        raise ValueError(f"{Path(path).name} has no fmt or data chunk")
    audio_format, channels, rate, _, _, bits = fmt
    if audio_format != 1 or bits != 16:
        raise ValueError(f"{Path(path).name} is not 16-bit PCM")
    samples = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.float32) / 32767.0
    if channels > 1:
        samples = samples[: samples.size // channels * channels].reshape(-1, channels).mean(axis=1)
    return WavData(samples, rate, info)


def _parse_info(body: bytes) -> dict[str, str]:
    out, pos = {}, 0
    while pos + 8 <= len(body):
        key, size = body[pos : pos + 4], struct.unpack("<I", body[pos + 4 : pos + 8])[0]
        out[key.decode("ascii", "replace")] = body[pos + 8 : pos + 8 + size].rstrip(b"\0").decode("utf-8", "replace")
        pos += 8 + size + (size % 2)
    return out
