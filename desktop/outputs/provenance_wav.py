"""Provenance in audio files: WAV (and FLAC) written with it, WAV read back safely.

:func:`save_wav` writes 16-bit PCM through :mod:`desktop.engines.speech.wav` with a RIFF
``LIST``/``INFO`` chunk whose ``ICMT`` holds the JSON record of
:mod:`desktop.outputs.provenance` (``ISFT`` software, ``IGNR`` "AI-generated", ``INAM`` the
text spoken). :func:`save_flac` puts the same record in FLAC's comment tag.

The reader is for files of unknown origin (``python main.py verify``): it walks the
RIFF chunk list with a bound on every size, seeks over the audio instead of loading it,
and parses the record as JSON with known keys only.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from desktop.engines.errors import ProvenanceError
from desktop.outputs.provenance import AI_NOTE, dumps, loads

MAX_INFO_BYTES = 1 << 20
MAX_CHUNKS = 10_000


def save_wav(path: str | Path, samples, sample_rate: int, record: dict[str, Any], text: str = "", overwrite: bool = False) -> Path:
    """16-bit PCM WAV at the voice's rate with the provenance record in LIST/INFO; atomic,
    and an existing file is replaced only with ``overwrite``."""
    from desktop.engines.speech.wav import write_wav

    info = {"ICMT": dumps(record), "ISFT": f"Atelier {record.get('app_version', '')}".strip(), "IGNR": AI_NOTE, "INAM": text[:200]}
    return write_wav(path, samples, sample_rate, info, overwrite=overwrite)


def save_flac(path: str | Path, samples, sample_rate: int, record: dict[str, Any]) -> Path:
    """FLAC via soundfile with the record in its comment tag. Only ever written into a
    fresh private folder (the API server's), so it is not claimed exclusively."""
    import soundfile as sf

    path = Path(path)
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=1, format="FLAC", subtype="PCM_16") as fh:
        fh.comment = dumps(record)
        fh.genre = AI_NOTE
        fh.software = f"Atelier {record.get('app_version', '')}".strip()
        fh.write(samples)
    return path


def _chunks(fh, path: Path, size: int):
    """Yield (id, offset of body, length) for each top-level chunk of a RIFF/WAVE file."""
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ProvenanceError(f"'{path.name}' is not a WAV file.")
    pos = 12
    for _ in range(MAX_CHUNKS):
        if pos + 8 > size:
            return
        fh.seek(pos)
        cid, length = struct.unpack("<4sI", fh.read(8))
        if pos + 8 + length > size:
            if cid == b"data":  # streamed files often leave the data size unfinished
                return
            raise ProvenanceError(f"'{path.name}' is a damaged WAV file: chunk {cid!r} runs past the end of the file.")
        yield cid, pos + 8, length
        pos += 8 + length + (length & 1)
    raise ProvenanceError(f"'{path.name}' has an implausible number of RIFF chunks.")


def _is_info(fh, off: int, n: int) -> bool:
    fh.seek(off)
    return n >= 4 and fh.read(4) == b"INFO"


def read_wav_info(path: str | Path) -> dict[str, str]:
    """The INFO tags of a WAV file (id -> text). ProvenanceError if it is not a WAV."""
    path = Path(path)
    out: dict[str, str] = {}
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            for cid, off, n in _chunks(fh, path, size):
                if cid != b"LIST" or not _is_info(fh, off, n):
                    continue
                if n > MAX_INFO_BYTES:
                    raise ProvenanceError(f"'{path.name}' has an implausibly large INFO chunk.")
                fh.seek(off + 4)
                body, pos = fh.read(n - 4), 0
                while pos + 8 <= len(body):
                    sid, sn = struct.unpack("<4sI", body[pos : pos + 8])
                    if pos + 8 + sn > len(body):
                        raise ProvenanceError(f"'{path.name}' has a damaged INFO chunk.")
                    text = body[pos + 8 : pos + 8 + sn].split(b"\0", 1)[0]
                    out[sid.decode("latin-1")] = text.decode("utf-8", errors="replace")
                    pos += 8 + sn + (sn & 1)
    except OSError as exc:
        raise ProvenanceError(f"Cannot read '{path.name}': {exc.strerror or exc}.") from None
    except struct.error:
        raise ProvenanceError(f"'{path.name}' is a damaged WAV file.") from None
    return out


def read_wav_provenance(path: str | Path) -> dict[str, Any] | None:
    """The Atelier record of a WAV file, or None when it carries none."""
    comment = read_wav_info(path).get("ICMT")
    if not comment or not comment.lstrip().startswith("{"):
        return None
    try:
        return loads(comment)
    except ValueError:
        return None  # a comment written by another tool, not ours
