"""The abstract export config and the fixed export pipeline every modality runs.

A config knows how to convert one family of models and how to judge the result; the
pipeline decides the order of work and writes the manifest. ``run_export`` is a
generator of Progress events so the CLI prints them and the app can show and cancel them.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from desktop import __version__
from desktop.engines.errors import AtelierError, ExportError, QualityFloorError
from desktop.engines.events import Done, Progress
from desktop.engines.packs.pack import write_manifest
from desktop.engines.staging import staging_folder

EXPORTER_NAME = f"atelier-exporters {__version__}"


@dataclass
class Source:
    """What an export starts from: a loaded PyTorch model plus the facts for provenance."""

    architecture: str
    model: Any  # the torch module (or a dict of them for multi-component pipelines)
    location: str  # path or hub id, as given
    kind: str  # gguf | hf-folder | hub | checkpoint | diffusers-folder ...
    sha256: dict[str, str] = field(default_factory=dict)  # source file -> hash
    extras: dict[str, Any] = field(default_factory=dict)  # tokenizer folder, configs, ...
    license: dict[str, Any] = field(default_factory=dict)
    model_card: str = ""


class ExportConfig:
    """One model family. Subclasses set the class attributes and implement the steps."""

    modality: str = ""
    runtime: str = "onnxruntime"
    precisions: tuple[str, ...] = ("fp32", "fp16", "int8", "int4")

    def __init__(self, source: Source):
        self.source = source

    def convert(self, workdir: Path) -> Path:
        """Write an fp32 ONNX pack folder (without manifest) under workdir; return it."""
        raise NotImplementedError

    def quantize(self, fp32_dir: Path, precision: str, out_dir: Path) -> None:
        """Write the ``precision`` variant of fp32_dir into out_dir."""
        raise NotImplementedError

    def validate(self, pack_dir: Path) -> dict[str, Any]:
        """Compare pack_dir's outputs with the PyTorch source; return a report."""
        raise NotImplementedError

    def passes_floor(self, report: dict[str, Any], precision: str) -> tuple[bool, str]:
        return True, ""

    def manifest(self, pack_dir: Path, precision: str) -> dict[str, Any]:
        """Modality-specific manifest fields (architecture, io, config, context...)."""
        raise NotImplementedError

    def roles(self, pack_dir: Path) -> dict[str, str]:
        return {}


def run_export(config: ExportConfig, out: Path, precision: str, force: bool = False, name: str | None = None) -> Iterator[Progress | Done]:
    """convert -> validate -> quantize -> re-validate -> manifest, into ``out``.

    Work happens in a temporary folder next to ``out`` and is moved into place only when
    everything passed, so an interrupted or failed export never leaves half a pack.
    """
    if precision not in config.precisions:
        raise ExportError(f"Precision '{precision}' is not available for this model (choose from {', '.join(config.precisions)}).")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"Output folder '{out}' already exists and is not empty; choose another or remove it.")
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # a locked work folder: if this process is killed, the next start of the library
    # sees the lock released and removes it (an unlocked folder could be a live export)
    with staging_folder(out.parent) as work:
        yield Progress("Converting to ONNX", 0.05)
        fp32_dir = _step("conversion to ONNX", config.convert, work)
        yield Progress("Validating the fp32 graph against PyTorch", 0.35)
        reports = {"fp32": _step("validation of the fp32 graph", config.validate, fp32_dir)}
        final_dir = fp32_dir
        if precision != "fp32":
            yield Progress(f"Quantizing to {precision}", 0.6)
            final_dir = work / precision
            final_dir.mkdir()
            _step(f"quantization to {precision}", config.quantize, fp32_dir, precision, final_dir)
            yield Progress(f"Validating the {precision} graph against PyTorch", 0.75)
            reports[precision] = _step(f"validation of the {precision} graph", config.validate, final_dir)
        ok, why = config.passes_floor(reports[precision], precision)
        if not ok and not force:
            raise QualityFloorError(f"The {precision} export is below the quality floor: {why}. Use --force to keep it anyway.")
        yield Progress("Writing the manifest", 0.95)
        src = config.source
        fields = config.manifest(final_dir, precision)
        fields.setdefault("name", name or f"{Path(src.location).stem}-{precision}")
        fields.update(
            modality=config.modality,
            runtime=fields.get("runtime", config.runtime),
            precision=precision,
            exporter=EXPORTER_NAME,
            source={"location": str(src.location), "kind": src.kind, "sha256": src.sha256, "architecture": src.architecture},
            license=src.license or {"id": "unknown"},
            model_card=src.model_card,
            validation={
                "reference": "PyTorch fp32",
                "reports": reports,
                "passed_floor": ok,
                "floor_note": why,
                "forced": bool(force and not ok),
                "seconds": round(time.perf_counter() - t0, 1),
            },
        )
        write_manifest(final_dir, fields, config.roles(final_dir))
        if out.exists():
            out.rmdir()
        shutil.move(str(final_dir), str(out))
    yield Done(stats={"seconds": round(time.perf_counter() - t0, 1), "out": str(out), "passed_floor": ok})


def _step(what: str, func, *args):
    """Run one pipeline step; a library's raw exception becomes an ExportError naming the
    step, so the CLI and the app report it in one line instead of a traceback."""
    try:
        return func(*args)
    except AtelierError:
        raise
    except MemoryError:
        raise ExportError(f"The {what} ran out of memory.") from None
    except Exception as exc:  # noqa: BLE001 - torch/onnx/onnxruntime raise anything
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ExportError(f"The {what} failed: {type(exc).__name__}: {first}") from exc
