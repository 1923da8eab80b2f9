"""The abstract export config and the fixed export pipeline every modality runs.

A config knows how to load one family of models, convert it and judge the result; the
pipeline decides the order of work, owns every manifest (the temporary one the app's
engine needs to load a pack under validation, and the final one) and carries what the
steps return from one step to the next: steps return results, configs keep no state
between them. ``run_export`` is a generator of Progress events so the CLI prints them and
the app can show and cancel them.
"""

from __future__ import annotations

import contextlib
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

from .errors import UnsupportedPrecisionError

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
    """One model family. Subclasses set the class attributes and implement the steps.

    Steps: ``convert`` -> ``reference`` (once) -> ``validate`` -> ``quantize`` ->
    ``validate`` -> ``measure`` -> ``manifest``. What a step returns is handed on by the
    pipeline; ``quantize`` and ``measure`` return *facts*, merged into one dict that
    ``manifest`` receives.
    """

    modality: str = ""
    runtime: str = "onnxruntime"
    precisions: tuple[str, ...] = ("fp32", "fp16", "int8", "int4")
    #: keyword options ``load_source`` accepts (``exporters.export(..., lora=...)``)
    options: tuple[str, ...] = ()
    #: validation and measurement run the app's own engine, which loads only manifested
    #: packs: the pipeline writes a temporary manifest for them
    engine_checks: bool = False

    def __init__(self, source: Source):
        self.source = source

    @classmethod
    def load_source(cls, location: str, architecture: str, **options: Any) -> Source:
        """Load the PyTorch model behind ``location`` (already known to be ``architecture``)."""
        raise NotImplementedError

    def convert(self, workdir: Path) -> Path:
        """Write an fp32 ONNX pack folder (without manifest) under workdir; return it."""
        raise NotImplementedError

    def reference(self, fp32_dir: Path) -> Any:
        """What every validation compares with (PyTorch outputs), computed once per export."""
        return None

    def validate(self, pack_dir: Path, reference: Any) -> dict[str, Any]:
        """Compare pack_dir's outputs with the PyTorch source; return a report."""
        raise NotImplementedError

    def quantize(self, fp32_dir: Path, precision: str, out_dir: Path) -> dict[str, Any] | None:
        """Write the ``precision`` variant of fp32_dir into out_dir; return facts for the manifest."""
        raise NotImplementedError

    def passes_floor(self, report: dict[str, Any], precision: str) -> tuple[bool, str]:
        return True, ""

    def measure(self, pack_dir: Path, precision: str) -> dict[str, Any] | None:
        """Facts measured on the finished pack (quality figures, a model card)."""
        return None

    def draft_manifest(self, pack_dir: Path, precision: str) -> dict[str, Any]:
        """The fields the engine needs to load pack_dir while it is being checked."""
        return self.manifest(pack_dir, precision, {})

    def manifest(self, pack_dir: Path, precision: str, facts: dict[str, Any]) -> dict[str, Any]:
        """Modality-specific manifest fields (architecture, io, config, context...)."""
        raise NotImplementedError

    def roles(self, pack_dir: Path) -> dict[str, str]:
        return {}


def run_export(config: ExportConfig, out: Path, precision: str, force: bool = False, name: str | None = None) -> Iterator[Progress | Done]:
    """convert -> validate -> quantize -> re-validate -> manifest, into ``out``.

    Work happens in a temporary folder next to ``out`` and is moved into place only when
    everything passed, so an interrupted or failed export never leaves half a pack.
    """
    check_precision(config, precision)
    out = Path(out)
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # a locked work folder: if this process is killed, the next start of the library
    # sees the lock released and removes it (an unlocked folder could be a live export)
    with staging_folder(out.parent) as work:
        yield Progress("Converting to ONNX", 0.05)
        fp32_dir = _step("conversion to ONNX", config.convert, work)
        yield Progress("Validating the fp32 graph against PyTorch", 0.35)
        reference = _step("PyTorch reference run", config.reference, fp32_dir)
        reports = {"fp32": _checked(config, fp32_dir, "fp32", "validation of the fp32 graph", config.validate, fp32_dir, reference)}
        facts: dict[str, Any] = {}
        final_dir = fp32_dir
        if precision != "fp32":
            yield Progress(f"Quantizing to {precision}", 0.6)
            final_dir = work / precision
            final_dir.mkdir()
            facts.update(_step(f"quantization to {precision}", config.quantize, fp32_dir, precision, final_dir) or {})
            yield Progress(f"Validating the {precision} graph against PyTorch", 0.75)
            reports[precision] = _checked(config, final_dir, precision, f"validation of the {precision} graph", config.validate, final_dir, reference)
        ok, why = config.passes_floor(reports[precision], precision)
        if not ok and not force:
            raise QualityFloorError(f"The {precision} export is below the quality floor: {why}. Use --force to keep it anyway.")
        yield Progress("Writing the manifest", 0.95)
        if type(config).measure is not ExportConfig.measure:  # only then is a draft manifest worth its hashing
            facts.update(_checked(config, final_dir, precision, "measurement of the pack", config.measure, final_dir, precision) or {})
        src = config.source
        fields = config.manifest(final_dir, precision, facts)
        fields.setdefault("name", name or f"{Path(src.location).stem}-{precision}")
        fields.update(
            modality=config.modality,
            runtime=fields.get("runtime", config.runtime),
            precision=precision,
            exporter=EXPORTER_NAME,
            source={"location": str(src.location), "kind": src.kind, "sha256": src.sha256, "architecture": src.architecture},
            license=src.license or {"id": "unknown"},
            model_card=facts.get("model_card", src.model_card),
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


def check_precision(config: ExportConfig | type[ExportConfig], precision: str) -> None:
    if precision not in config.precisions:
        raise UnsupportedPrecisionError(precision, config.precisions)


def check_out(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"Output folder '{out}' already exists and is not empty; choose another or remove it.")


def _checked(config: ExportConfig, pack_dir: Path, precision: str, what: str, func, *args):
    """A step that may load pack_dir with the app's engine, under a temporary manifest."""
    draft = draft_manifest(config, pack_dir, precision) if config.engine_checks else contextlib.nullcontext()
    with draft:
        return _step(what, func, *args)


@contextlib.contextmanager
def draft_manifest(config: ExportConfig, pack_dir: Path, precision: str) -> Iterator[Any]:
    """A manifest that exists just long enough for the engine to load the folder; the
    final one is written only once every check has passed."""
    fields = _step("draft manifest", config.draft_manifest, pack_dir, precision)
    fields.setdefault("name", f"validation-{config.source.architecture}")
    fields.update(modality=config.modality, precision=precision)
    fields.setdefault("runtime", config.runtime)
    fields.setdefault("license", config.source.license or {"id": "unknown"})
    try:
        yield write_manifest(pack_dir, fields, config.roles(pack_dir))
    finally:
        (pack_dir / "manifest.json").unlink(missing_ok=True)


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
