"""Execution-provider choice and fallback, shared by every engine.

Users complain most that "the GPU was silently unused". So the choice is explicit: we
pick the best provider onnxruntime offers (CUDA > DirectML > CPU) unless the user chose
one, and when the chosen one fails to create a session we fall back to CPU and *say so*
in a :class:`ProviderReport` that the UI shows.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from desktop.engines.errors import ProviderError

log = logging.getLogger(__name__)

# user-facing name -> onnxruntime provider name, in order of preference for "auto"
PROVIDERS: dict[str, str] = {
    "cuda": "CUDAExecutionProvider",
    "directml": "DmlExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
CHOICES = ("auto", *PROVIDERS)
# Each intra-op thread is a real OS thread with its own stack: 500 hang a small container
# and 100,000 crash onnxruntime outright. More threads than 4 per core only adds contention.
MAX_THREADS = 256
MAX_CONTEXT_WINDOW = 1 << 20  # tokens; far beyond any model a desktop runs
THREADS_PER_CORE = 4


def max_threads() -> int:
    return max(1, min(MAX_THREADS, THREADS_PER_CORE * (os.cpu_count() or 1)))


def check_threads(threads: object) -> int:
    """``threads`` if it is a usable thread count (0 = onnxruntime's default), else a
    :class:`ProviderError` saying the allowed range."""
    limit = max_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= limit:
        raise ProviderError(f"The thread count must be between 1 and {limit} (4 per CPU core, at most {MAX_THREADS}), or 0 for the default; got {threads!r}.")
    return threads


@dataclass(frozen=True)
class RuntimeSettings:
    """How sessions are created. ``threads`` 0 means onnxruntime's default."""

    provider: str = "auto"
    threads: int = 0
    graph_optimization: str = "all"  # disabled | basic | extended | all
    # tokens of KV cache a text engine reserves (Settings > Chat context window); a pack's
    # own limit still caps it
    context_window: int = 4096

    def __post_init__(self) -> None:
        if self.provider not in CHOICES:
            raise ProviderError(f"Unknown execution provider '{self.provider}'. Choose one of: {', '.join(CHOICES)}.")
        if self.graph_optimization not in ("disabled", "basic", "extended", "all"):
            raise ProviderError(f"Unknown graph optimisation level '{self.graph_optimization}'.")
        check_threads(self.threads)
        if isinstance(self.context_window, bool) or not isinstance(self.context_window, int) or not 8 <= self.context_window <= MAX_CONTEXT_WINDOW:
            raise ProviderError(f"The context window must hold from 8 to {MAX_CONTEXT_WINDOW:,} tokens.")

    @staticmethod
    def from_env() -> "RuntimeSettings":
        """Environment overrides let tests and benchmarks pin threads without the UI."""
        raw = os.environ.get("ATELIER_THREADS", "0").strip() or "0"
        try:
            threads = int(raw)
        except ValueError:
            raise ProviderError(f"ATELIER_THREADS must be a whole number (got '{raw[:40]}').") from None
        return RuntimeSettings(provider=os.environ.get("ATELIER_PROVIDER", "auto"), threads=threads)


@dataclass
class ProviderReport:
    requested: str
    used: str
    fallback_reason: str = ""
    available: list[str] = field(default_factory=list)

    @property
    def fell_back(self) -> bool:
        return bool(self.fallback_reason)

    def message(self) -> str:
        if self.fell_back:
            return f"Running on {self.used.upper()} instead of {self.requested.upper()}: {self.fallback_reason}"
        return f"Running on {self.used.upper()}."


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def resolve_order(requested: str, available: Sequence[str]) -> tuple[list[str], str]:
    """Return (user-facing provider names to try, in order; reason if the request can't
    be honoured). CPU is always last so a session can always be made."""
    offered = [name for name, ort_name in PROVIDERS.items() if ort_name in available]
    if "cpu" not in offered:
        offered.append("cpu")  # onnxruntime always has the CPU provider
    if requested == "auto":
        return offered, ""
    if requested not in offered:
        return ["cpu"], f"{requested.upper()} is not available in this onnxruntime build (offered: {', '.join(offered)})."
    return ([requested] + (["cpu"] if requested != "cpu" else [])), ""


def create_with_fallback(
    factory: Callable[[str], Any],
    settings: RuntimeSettings,
    available: Sequence[str] | None = None,
) -> tuple[Any, ProviderReport]:
    """Call ``factory(provider_name)`` for each provider in order until one succeeds.

    ``factory`` builds the runtime object (an InferenceSession, an onnxruntime-genai
    Model...). Exceptions from a non-CPU provider are logged and turned into a fallback
    reason; a CPU failure is the model's fault and propagates.
    """
    available = list(available if available is not None else available_providers())
    order, reason = resolve_order(settings.provider, available)
    last_error: Exception | None = None
    for name in order:
        try:
            obj = factory(name)
        except Exception as exc:  # noqa: BLE001 - any provider failure means "try the next"
            if name == "cpu":
                raise
            log.warning("provider %s failed: %s", name, exc)
            reason = f"{name.upper()} failed to start ({_first_line(exc)})."
            last_error = exc
            continue
        requested = settings.provider if settings.provider != "auto" else order[0]
        return obj, ProviderReport(requested=requested, used=name, fallback_reason=reason if name != requested else "", available=available)
    raise ProviderError(f"No execution provider could run this model: {last_error}")


def session_options(settings: RuntimeSettings):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    levels = {
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    opts.graph_optimization_level = levels[settings.graph_optimization]
    if settings.threads:
        opts.intra_op_num_threads = settings.threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # warnings from ORT go to our log, not the user's terminal
    ort.set_default_logger_severity(3)  # the process-wide logger too (it prints straight to stderr)
    return opts


def make_session(path: str, settings: RuntimeSettings, available: Sequence[str] | None = None):
    """An onnxruntime InferenceSession with provider fallback."""
    import onnxruntime as ort

    opts = session_options(settings)

    def factory(name: str):
        return ort.InferenceSession(str(path), sess_options=opts, providers=[PROVIDERS[name]])

    return create_with_fallback(factory, settings, available)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
