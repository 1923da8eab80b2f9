"""A single-file image checkpoint imported from the Library, as a stream of events for a
generator worker: the stage it is in, and a Cancel that kills the export and leaves nothing.

A checkpoint holds PyTorch weights, so importing one runs the image exporter in a child process
(the app never loads torch). The file is first recognised from its header here, so a LoRA, a VAE
or an unknown model is refused in one line before anything starts. The child's stage lines
(``[export] 35% Validating…``) become Progress events; while it converts, the parts it has
finished (one ONNX graph per component) are read from its work folder, so a long conversion
shows which part it is on. Everything the child writes, temporary files included (``TMPDIR``),
lives in one staging folder of the library that goes away with the import, whatever ends it.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Iterator

from desktop.defaults import export_command, export_failure, export_stage
from desktop.engines.errors import PackError
from desktop.engines.events import Progress
from desktop.engines.image.checkpoint import CHECKPOINT_SUFFIXES, PICKLE_SUFFIXES, detect
from desktop.engines.staging import staging_folder

POLL_S = 0.2  # how often the job looks at the child; also how soon a Cancel takes effect
STOP_GRACE_S = 3.0  # an interrupted child may clean up this long before it is killed
# the exporter's component graphs, in the order it writes them, as a person names them
PARTS = {"text_encoder": "text encoder", "text_encoder_2": "second text encoder", "unet": "UNet",
         "vae_decoder": "VAE decoder", "vae_encoder": "VAE encoder"}
ORDER = ("text_encoder", "text_encoder_2", "unet", "vae_decoder", "vae_encoder")


def is_checkpoint(path: Path) -> bool:
    return Path(path).suffix.lower() in CHECKPOINT_SUFFIXES


def is_pickle(path: Path) -> bool:
    return Path(path).suffix.lower() in PICKLE_SUFFIXES


def checkpoint_import_events(path: Path, library, name: str | None = None, convert_pickle: bool = False,
                             precision: str = "fp32") -> Iterator:
    """Yields Progress events, then the imported Pack; raises a typed error with one line."""
    path = Path(path)
    name = name or path.stem
    yield Progress(f"Reading {path.name}…", 0.0)
    loading = f"Loading {path.name} with PyTorch (converting the pickle's tensors)"
    if not (convert_pickle and is_pickle(path)):
        found = detect(path)  # refuses pickles, LoRAs, VAEs and unknown models by name
        what = found.family.label + (" Turbo" if found.turbo else "")
        yield Progress(f"Reading {path.name}: {what}…", 0.01)
        loading = f"Loading {path.name} ({what}) with PyTorch"
    _check_name_free(library, name)
    options = ("--convert-pickle",) if convert_pickle else ()
    with staging_folder(library.root) as work:
        out = work / "pack"
        (work / "tmp").mkdir()
        cmd, env = export_command("image", path, out, precision, name, *options)
        env["TMPDIR"] = str(work / "tmp")
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace",
                                 env=env, start_new_session=True)  # its own group: a pickle conversion's child goes too
        try:
            last = yield from _relay(child, work, loading)
        finally:
            _stop(child)  # Cancel (GeneratorExit), an error, or already exited: never left running
        if child.returncode != 0:
            raise export_failure("image", path, last)
        yield Progress("Verifying the new pack and adding it to the library…", 0.97)
        from desktop.engines.packs.importers import import_path

        pack = import_path(out, library, name=name)
    try:
        yield pack
    except GeneratorExit:  # finished just as Cancel came: the person still said no
        shutil.rmtree(pack.root, ignore_errors=True)
        raise


def _check_name_free(library, name: str) -> None:
    # the import checks this too, but only after a conversion that may take many minutes
    if library.name_clash(name) or library.destination(name).exists():
        raise PackError(f"A model named '{name}' is already installed. Remove it first, or rename the file.")


def _relay(child: subprocess.Popen, work: Path, loading: str) -> Iterator[Progress]:
    """Progress from the child's stage lines until it exits; returns its last other line."""
    lines: queue.Queue = queue.Queue()

    def read() -> None:  # on its own thread: a read blocks until the child writes a line
        for line in child.stderr:
            lines.put(line)

    reader = threading.Thread(target=read, name="checkpoint-export-stderr", daemon=True)
    reader.start()
    stage, fraction, last = loading, 0.02, ""
    while True:
        try:
            line = lines.get(timeout=POLL_S).strip()
        except queue.Empty:
            if not reader.is_alive() and lines.empty():
                child.wait()
                return last
            # also the heartbeat: the worker sees a Cancel only between two events
            yield _progress(stage, fraction, work)
            continue
        if (text := export_stage(line)) is not None:
            stage, fraction = _parse(text, fraction)
            yield _progress(stage, fraction, work)
        elif line:
            last = line


def _parse(text: str, fraction: float) -> tuple[str, float]:
    head, _, rest = text.partition("% ")
    if rest and head.strip().isdigit():
        return rest, min(int(head) / 100, 0.95)
    if text.startswith("done in "):  # "done in 12.3 s -> <work folder>": the folder is ours, not news
        return f"Exported in {text.removeprefix('done in ').partition(' -> ')[0]}", 0.96
    return text, fraction


def _progress(stage: str, fraction: float, work: Path) -> Progress:
    if not stage.startswith("Converting"):
        return Progress(stage + "…", fraction)
    done = [r for r in ORDER if any(work.glob(f"*/fp32/{r}/model.onnx"))]
    if not done:
        return Progress("Converting to ONNX: text encoder…", fraction)
    left = [PARTS[r] for r in ORDER if r not in done and r != "text_encoder_2"]  # only SDXL has a second one
    # the conversion is the stretch up to validation (35%): each finished part moves the bar on
    fraction = max(fraction, 0.05 + 0.3 * len(done) / (len(done) + len(left)))
    return Progress(f"Converting to ONNX: {left[0] if left else 'finishing'}… (done: {', '.join(PARTS[r] for r in done)})", fraction)


def _stop(child: subprocess.Popen) -> None:
    """Interrupt the child's process group (its cleanup runs), then kill what is left."""
    if child.poll() is not None:
        return
    try:
        os.killpg(child.pid, signal.SIGINT)
    except ProcessLookupError:
        return
    try:
        child.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(child.pid, signal.SIGKILL)  # the group: a grandchild may outlive the child
    except ProcessLookupError:
        pass
    child.wait()
