"""Provenance in PNG files: text chunks written with the image, read back safely.

Written chunks (before the image data, so any viewer sees them):
* ``atelier:provenance`` (iTXt): the full JSON record of :mod:`desktop.outputs.provenance`;
* ``Software``, ``Source``, ``Disclaimer``, ``Creation Time`` (tEXt, the PNG standard's
  keywords) so ordinary tools show who made it, with which pack, and "AI-generated";
* ``XML:com.adobe.xmp``: IPTC's DigitalSourceType "trainedAlgorithmicMedia", the
  marker photo tools and platforms read for AI-generated images.

Reading walks the chunk list itself with bounds on every length, skips the image data
without decoding it, and parses the record as JSON with known keys only: a hostile PNG
can neither exhaust memory nor run anything.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from desktop.engines.errors import ProvenanceError
from desktop.outputs.provenance import dumps, loads

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RECORD_KEY = "atelier:provenance"
TEXT_TYPES = (b"tEXt", b"zTXt", b"iTXt")
MAX_TEXT_CHUNK = 1 << 20  # a provenance chunk is a few KB
MAX_CHUNKS = 100_000
XMP_KEY = "XML:com.adobe.xmp"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _xmp(record: dict[str, Any]) -> str:
    from xml.sax.saxutils import escape

    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
        f"<Iptc4xmpExt:DigitalSourceType>{DIGITAL_SOURCE_TYPE}</Iptc4xmpExt:DigitalSourceType>"
        f"<xmp:CreatorTool>{escape('Atelier ' + str(record.get('app_version', '')))}</xmp:CreatorTool>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )


def png_info(record: dict[str, Any]):
    """The PngInfo carrying ``record`` (for callers that save with Pillow themselves)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_itxt(RECORD_KEY, dumps(record))
    info.add_text("Software", f"Atelier {record.get('app_version', '')}".strip())
    if record.get("pack"):
        info.add_itxt("Source", f"{record['pack']} (pack SHA-256 {record.get('pack_sha256', '')})")
    info.add_itxt("Disclaimer", str(record.get("note", "AI-generated")))
    if record.get("created"):
        info.add_text("Creation Time", str(record["created"]))
    info.add_itxt(XMP_KEY, _xmp(record))
    return info


def save_png(path: str | Path, image, record: dict[str, Any], watermark: bool = True, overwrite: bool = False) -> Path:
    """Write ``image`` (HxWx3 uint8 array or PIL image) as a PNG carrying ``record``;
    with ``watermark`` the invisible watermark naming the pack is embedded first.
    Atomic (desktop/engines/atomic_write.py): a crash never leaves half a file under
    ``path``, and an existing file is replaced only with ``overwrite``."""
    from PIL import Image

    path = Path(path)
    array = np.asarray(image.convert("RGB")) if isinstance(image, Image.Image) else np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ProvenanceError(f"Expected an RGB uint8 image, got shape {array.shape} and type {array.dtype}.")
    if watermark and record.get("pack_sha256"):
        from desktop.outputs.watermark import embed

        array = embed(array, record["pack_sha256"])
    from desktop.engines.atomic_write import write_atomic

    picture, info = Image.fromarray(array, "RGB"), png_info(record)
    return write_atomic(path, lambda fh: picture.save(fh, "PNG", pnginfo=info), overwrite=overwrite)


def read_png_text(path: str | Path) -> dict[str, str]:
    """Every text chunk of a PNG (keyword -> text). Raises ProvenanceError for a file
    that is not a well-formed PNG."""
    path = Path(path)
    out: dict[str, str] = {}
    try:
        with open(path, "rb") as fh:
            if fh.read(8) != PNG_SIGNATURE:
                raise ProvenanceError(f"'{path.name}' is not a PNG file.")
            size = os.fstat(fh.fileno()).st_size
            for _ in range(MAX_CHUNKS):
                header = fh.read(8)
                if len(header) < 8:
                    raise ProvenanceError(f"'{path.name}' is a truncated PNG (it ends before its IEND chunk).")
                length, kind = struct.unpack(">I4s", header)
                if length > 0x7FFFFFFF or length + 4 > size - fh.tell():
                    raise ProvenanceError(f"'{path.name}' is a damaged PNG: a chunk claims {length} bytes past the end of the file.")
                if kind == b"IEND":
                    return out
                if kind in TEXT_TYPES and length <= MAX_TEXT_CHUNK:
                    body = fh.read(length)
                    crc = fh.read(4)
                    if len(crc) < 4 or struct.unpack(">I", crc)[0] != zlib.crc32(kind + body) & 0xFFFFFFFF:
                        raise ProvenanceError(f"'{path.name}' is a damaged PNG: a text chunk fails its checksum.")
                    key, text = _decode_text(kind, body, path)
                    if key:
                        out[key] = text
                else:
                    fh.seek(length + 4, os.SEEK_CUR)  # image data: skipped, never decoded
            raise ProvenanceError(f"'{path.name}' has an implausible number of PNG chunks.")
    except OSError as exc:
        raise ProvenanceError(f"Cannot read '{path.name}': {exc.strerror or exc}.") from None


def _decode_text(kind: bytes, body: bytes, path: Path) -> tuple[str, str]:
    try:
        key_raw, _, rest = body.partition(b"\0")
        key = key_raw.decode("latin-1")
        if kind == b"tEXt":
            return key, rest.decode("latin-1")
        if kind == b"zTXt":
            return key, _inflate(rest[1:]).decode("latin-1")
        compressed, rest = rest[0], rest[2:]
        _lang, _, rest = rest.partition(b"\0")
        _translated, _, text = rest.partition(b"\0")
        return key, (_inflate(text) if compressed else text).decode("utf-8")
    except (IndexError, UnicodeDecodeError, zlib.error):
        raise ProvenanceError(f"'{path.name}' has a malformed PNG text chunk.") from None


def _inflate(data: bytes) -> bytes:
    """zlib with a cap: a tiny compressed chunk may not expand into gigabytes."""
    d = zlib.decompressobj()
    out = d.decompress(data, MAX_TEXT_CHUNK)
    if d.unconsumed_tail:
        raise zlib.error("text chunk expands beyond the limit")
    return out


def read_png_provenance(path: str | Path) -> dict[str, Any] | None:
    """The Atelier record of a PNG, or None when it carries none."""
    text = read_png_text(path).get(RECORD_KEY)
    if text is None:
        return None
    try:
        return loads(text)
    except ValueError as exc:
        raise ProvenanceError(f"'{Path(path).name}' carries a malformed Atelier record ({exc}).") from None
