"""What the model library shows about a pack, computed without Qt and without loading it.

The library page, the welcome screen and the CLI read packs through here: facts from the
manifest (never from the model files, so a listing stays instant), a readable summary of
the exporter's validation report, and an integrity check that re-hashes every file as a
generator of Progress events so the UI can show it and cancel between two chunks.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from desktop.engines.errors import PackError, PackNotFoundError
from desktop.engines.events import Progress
from desktop.engines.packs.library import PackEntry
from desktop.engines.packs.pack import MANIFEST_NAME, Pack, PackFile, confined_path, read_manifest, stray_files

HASH_CHUNK = 4 << 20  # one Progress event (and one cancel point) per 4 MiB hashed
MAX_SAMPLE_ANSWERS = 3
MAX_ANSWER_CHARS = 240


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def folder_bytes(root: Path) -> int:
    """Bytes the folder really takes on disk (what removing it frees)."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue  # a file vanishing mid-walk is not worth an error here
    return total


def pack_from_manifest(root: Path, manifest: dict[str, Any]) -> Pack:
    """A Pack built from an already-read manifest, without touching the model files."""
    files = [PackFile(f["path"], f["sha256"], f["bytes"], f.get("role", "")) for f in manifest["files"]]
    return Pack(root=Path(root), manifest=manifest, files=files)


@dataclass
class PackFacts:
    name: str
    modality: str
    architecture: str
    precision: str
    runtime: str
    size_on_disk: int
    estimated_ram: int
    licence: str
    context_length: int | None
    source: str
    created: str

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs in the order a person reads them."""
        rows = [
            ("Modality", self.modality),
            ("Architecture", self.architecture),
            ("Precision", self.precision),
            ("Runtime", self.runtime),
            ("Size on disk", human_bytes(self.size_on_disk)),
            ("Estimated RAM", human_bytes(self.estimated_ram)),
            ("Licence", self.licence),
        ]
        if self.context_length:
            rows.append(("Context window", f"{self.context_length:,} tokens"))
        rows += [("Source", self.source), ("Created", self.created)]
        return rows


def facts(entry: PackEntry) -> PackFacts:
    m = entry.manifest or {}
    pack = pack_from_manifest(entry.root, m)
    licence = m.get("license") or {}
    source = m.get("source") or {}
    return PackFacts(
        name=m.get("name", entry.name),
        modality=m.get("modality", "?"),
        architecture=m.get("architecture", "?"),
        precision=m.get("precision", "?"),
        runtime=m.get("runtime", "?"),
        size_on_disk=folder_bytes(entry.root),
        estimated_ram=pack.estimated_ram_bytes(),
        licence=str(licence.get("id") or "unknown"),
        context_length=m.get("context_length"),
        source=" ".join(str(x) for x in (source.get("kind", ""), source.get("location", "")) if x) or "unknown",
        created=str(m.get("created", "")),
    )


# -- validation report --------------------------------------------------------------------

# report key -> (label, format). Text packs' keys come from exporters/text/validate.py; other
# modalities' scalar figures are listed generically below these.
_KNOWN_FIGURES = {
    "teacher_forced_agreement": ("Greedy agreement with the reference (teacher-forced)", "{:.1%}"),
    "greedy_prefix_match": ("Free-running greedy match", "{:.1%}"),
    "perplexity_ratio": ("Perplexity ratio (pack / reference)", "{:.3f}"),
    "perplexity": ("Perplexity", "{:.2f}"),
    "reference_perplexity": ("Reference perplexity", "{:.2f}"),
    "max_abs_logit_diff": ("Max |logit difference|", "{:.4g}"),
    "mean_abs_logit_diff": ("Mean |logit difference|", "{:.4g}"),
}


def import_notice(pack: Pack) -> str | None:
    """What an import changed that the person should hear at once (e.g. a GGUF's IQ/Q2_K
    tensors stored at 8 bits); the CLI and the Library both say it, not only the manifest."""
    return (pack.config.get("quantization") or {}).get("notice")


def validation_summary(manifest: dict[str, Any]) -> str:
    """Markdown a person can read: verdict, key figures per precision, sample answers."""
    report = manifest.get("validation")
    if not isinstance(report, dict) or not report:
        return "_This pack carries no validation report (it was imported, not exported by Atelier)._"
    lines: list[str] = []
    precision = manifest.get("precision", "")
    reference = report.get("reference", "the source model")
    if "passed_floor" in report:
        if report.get("forced"):
            verdict = f"**Below the quality floor, kept with --force** ({report.get('floor_note', '')})"
        elif report["passed_floor"]:
            verdict = f"**Passed** the {precision} quality floor: {report.get('floor_note', '')}"
        else:
            verdict = f"**Did not pass** the quality floor: {report.get('floor_note', '')}"
        lines.append(f"{verdict}. Compared against {reference}.")
    else:
        lines.append(f"Compared against {reference}.")
    reports = report.get("reports") if isinstance(report.get("reports"), dict) else {"": report}
    # the shipped precision first: that is what the user runs
    for prec in sorted(reports, key=lambda p: (p != precision, p)):
        figures = reports[prec]
        if not isinstance(figures, dict):
            continue
        lines.append("")
        lines.append(f"#### {prec or 'Figures'}" + (" (this pack)" if prec == precision else ""))
        lines.extend(f"- {label}: {text}" for label, text in _figure_rows(figures))
    answers = _sample_answers(reports.get(precision) or next(iter(reports.values()), {}))
    if answers:
        lines += ["", "#### Sample answers"]
        lines += answers
    if report.get("seconds") is not None:
        lines += ["", f"_Export and validation took {report['seconds']} s._"]
    return "\n".join(lines)


def _figure_rows(figures: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, (label, fmt) in _KNOWN_FIGURES.items():
        if isinstance(figures.get(key), (int, float)) and not isinstance(figures.get(key), bool):
            rows.append((label, fmt.format(figures[key])))
    for key, value in figures.items():
        if key in _KNOWN_FIGURES or key == "answers":
            continue
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            rows.append((key.replace("_", " ").capitalize(), f"{value:.4g}" if isinstance(value, float) else str(value)))
    return rows


def _sample_answers(figures: Any) -> list[str]:
    answers = figures.get("answers") if isinstance(figures, dict) else None
    if not isinstance(answers, list):
        return []
    out = []
    for item in answers[:MAX_SAMPLE_ANSWERS]:
        if not isinstance(item, dict):
            continue
        answer = _clip(str(item.get("answer", "")))
        out.append(f"- **{_clip(str(item.get('prompt', '')))}** → {answer or '_(empty)_'} _({item.get('finish', '?')})_")
    return out


def _clip(text: str) -> str:
    text = " ".join(text.split())
    text = text.replace("*", "\\*").replace("_", "\\_").replace("`", "\\`").replace("<", "&lt;")
    return text if len(text) <= MAX_ANSWER_CHARS else text[: MAX_ANSWER_CHARS - 1] + "…"


# -- integrity ----------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    name: str
    ok: bool
    files: int
    problem: str = ""


def verify_pack(root: Path) -> Iterator[Progress | VerifyResult]:
    """Re-hash every file of the pack at ``root`` against its manifest.

    Yields Progress by bytes hashed, then one VerifyResult. A damaged pack is a result
    (ok=False, with the file named), not an exception; a pack that disappeared is.
    """
    root = Path(root)
    if not (root / MANIFEST_NAME).is_file():
        raise PackNotFoundError(f"The pack folder '{root}' is no longer on disk; it was removed or moved.")
    manifest = read_manifest(root)
    name = manifest["name"]
    total = sum(f["bytes"] for f in manifest["files"]) or 1
    done = 0
    for entry in manifest["files"]:
        try:
            path = confined_path(root, entry["path"])
        except PackError as exc:
            yield VerifyResult(name, False, len(manifest["files"]), str(exc))
            return
        if not path.is_file():
            yield VerifyResult(name, False, len(manifest["files"]), f"file '{entry['path']}' is missing.")
            return
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(HASH_CHUNK):
                digest.update(block)
                done += len(block)
                yield Progress(f"Verifying {name}: {entry['path']}", min(done / total, 1.0))
        if digest.hexdigest() != entry["sha256"]:
            yield VerifyResult(name, False, len(manifest["files"]), f"file '{entry['path']}' does not match its SHA-256 (modified or corrupted).")
            return
    strays = stray_files(root, manifest)
    if strays:  # a pack is exactly its listed files: anything else is a problem, not "OK"
        yield VerifyResult(name, False, len(manifest["files"]), f"'{strays[0]}' is in the folder but not listed in the manifest (or is a link).")
        return
    yield VerifyResult(name, True, len(manifest["files"]))


def check_still_there(entry: PackEntry) -> None:
    """Raise a clear error when a pack the user selected was deleted behind our back."""
    if not (entry.root / MANIFEST_NAME).is_file():
        raise PackNotFoundError(
            f"The model '{entry.name}' is no longer on disk (its folder {entry.root} was removed or moved). "
            "The list has been refreshed."
        )

