"""Bounded rendering of untrusted Jinja templates: a time limit and size limits.

The sandbox stops a pack's chat template from reaching Python objects, but not from
working forever (two nested ``range(99999)`` loops) or from building a 10 GB string
(``'x' * 10**10``, a string doubled forty times). Rendering happens before the first
token, so the Stop button cannot help; the limits here must.

* Time: while a template renders, a trace function on the rendering thread checks a
  deadline on every line the template's code runs, so a pure-Python loop ends within
  milliseconds of the deadline (a watchdog thread cannot interrupt it safely).
* Size, before allocating: every operation that can multiply memory (``*``, ``**``,
  ``%``, ``+``, ``~``, ``str.ljust/center/zfill/expandtabs/replace/join/format``, the
  ``center/indent/join/replace/format/tojson/...`` filters, buffered blocks) is checked
  against its result's size before it runs.
* Size, overall: every value the template produces is charged to a budget, so many
  moderate strings (a loop printing a 1 MB string 99999 times) also stop early, and the
  streamed output has its own limit.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterable

from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

MAX_SECONDS = 2.0
MAX_VALUE_CHARS = 4_000_000  # any one string or container a template builds
MAX_OUTPUT_CHARS = 4_000_000  # the rendered prompt (the request limit is 200k chars of content)
MAX_WORK_CHARS = 200_000_000  # everything produced during one render, garbage included
MAX_INT_BITS = 100_000  # ints beyond ~30,000 digits serve no chat template
_WALK_STEPS = 200_000  # measuring a container gives up (counts as too big) past this


class TemplateLimitExceeded(BaseException):
    """Raised inside a render that broke a limit. A BaseException, so that no
    ``except Exception`` in template-called code swallows it; :func:`render_bounded`
    turns it into the caller's typed error."""


def size_of(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """About how many characters ``str(value)`` would take; stops counting past ``limit``
    (returns a number above it), so measuring a huge or self-multiplying structure is cheap."""
    total, steps, stack = 0, 0, [value]
    while stack:
        v = stack.pop()
        steps += 1
        if steps > _WALK_STEPS:
            return limit + 1
        if isinstance(v, str):
            total += len(v)
        elif isinstance(v, (bytes, bytearray)):
            total += 4 * len(v)
        elif isinstance(v, bool) or v is None:
            total += 5
        elif isinstance(v, int):
            total += v.bit_length() // 3 + 2
        elif isinstance(v, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(v)
            stack.extend(v)
        elif isinstance(v, dict):
            total += 2 + 4 * len(v)
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, Namespace):
            stack.append(getattr(v, "_Namespace__attrs", {}))
        else:
            total += 32
        if total > limit:
            return total
    return total


class _Budget(threading.local):
    active = False
    deadline = 0.0
    work = 0


_budget = _Budget()


def _too_big(what: str, size: int | None = None) -> TemplateLimitExceeded:
    got = f" ({size:,} characters)" if size is not None and size < 10**15 else ""
    return TemplateLimitExceeded(f"it builds {what} larger than {MAX_VALUE_CHARS:,} characters{got}")


def _charge(value: Any, what: str = "a value") -> Any:
    """Check a produced value against the per-value limit and charge it to the render's budget."""
    if not _budget.active:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise TemplateLimitExceeded(f"it computes a number with more than {MAX_INT_BITS:,} bits")
    size = size_of(value) if isinstance(value, (str, list, tuple, dict, set, frozenset, Namespace)) else 0
    if size > MAX_VALUE_CHARS:
        raise _too_big(what, size)
    _budget.work += size
    if _budget.work > MAX_WORK_CHARS:
        raise TemplateLimitExceeded(f"it produces more than {MAX_WORK_CHARS:,} characters of text in total")
    return value


def _ensure_fits(size: int, what: str) -> None:
    if _budget.active and size > MAX_VALUE_CHARS:
        raise _too_big(what, size)


def _int_arg(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_VALUE_CHARS:
        raise _too_big(what, abs(value))


# widths and precisions in printf-style ("%0999999999d") and str.format ("{:>999999999}") specs
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\d*|\*)(?:\.(\d*|\*))?")
_FORMAT_SPEC = re.compile(r"\{[^{}]*:([^{}]*)\}")


def _check_format(fmt: str, args: Iterable[Any]) -> None:
    numbers: list[str] = []
    for m in _PRINTF_SPEC.finditer(fmt):
        numbers += [g for g in m.groups() if g and g != "*"]
    for m in _FORMAT_SPEC.finditer(fmt):
        numbers += re.findall(r"\d+", m.group(1))
    for digits in numbers:
        if len(digits) > 7 or int(digits) > MAX_VALUE_CHARS:
            raise _too_big("a formatted string")
    biggest = 0
    for a in args:  # '*' widths and nested '{:{}}' specs take numbers from the arguments
        _int_arg(a, "a formatted string")
        biggest = max(biggest, size_of(a))
    # each field may repeat any argument ('{0}{0}{0}...'): the worst case is fields x biggest
    fields = fmt.count("{") + fmt.count("%")
    _ensure_fits(len(fmt) + fields * biggest, "a formatted string")


def _check_repeat(seq: Any, times: Any) -> None:
    if isinstance(times, int) and isinstance(seq, (str, list, tuple, bytes)):
        _ensure_fits(size_of(seq) * max(times, 0) if times > 0 else 0, "a repeated string or list")


def _check_binop(op: str, left: Any, right: Any) -> None:
    if op == "*":
        _check_repeat(left, right)
        _check_repeat(right, left)
        if isinstance(left, int) and isinstance(right, int):
            if abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
                raise TemplateLimitExceeded(f"it computes a number with more than {MAX_INT_BITS:,} bits")
    elif op == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            if abs(left).bit_length() * right > MAX_INT_BITS:
                raise TemplateLimitExceeded(f"it computes a number with more than {MAX_INT_BITS:,} bits")
    elif op == "%":
        if isinstance(left, str):
            _check_format(left, right if isinstance(right, tuple) else (right,))
    elif op == "+":
        if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            _ensure_fits(size_of(left) + size_of(right), "a joined string or list")


def _check_str_method(name: str, s: str, args: tuple, kwargs: dict) -> None:
    values = list(args) + list(kwargs.values())
    if name in ("ljust", "rjust", "center", "zfill"):
        for a in values:
            _int_arg(a, "a padded string")
    elif name == "expandtabs":
        size = values[0] if values and isinstance(values[0], int) else 8
        _ensure_fits(len(s) + s.count("\t") * max(size, 0), "a string with expanded tabs")
    elif name == "replace" and len(values) >= 2 and isinstance(values[0], str) and isinstance(values[1], str):
        hits = s.count(values[0]) if values[0] else len(s) + 1
        if len(values) > 2 and isinstance(values[2], int) and values[2] >= 0:
            hits = min(hits, values[2])
        _ensure_fits(len(s) + hits * len(values[1]), "a string with replacements")
    elif name in ("format", "format_map"):
        _check_format(s, values)


def _check_join(sep: Any, items: Any) -> list | None:
    """Measure what a join would build; returns the items as a list when it had to read
    them from an iterator (which can be read only once)."""
    if isinstance(items, (str, list, tuple, dict, set, frozenset)):
        seq = items
        listed = None
    else:
        try:
            seq = listed = list(items)
        except TypeError:
            return None
    n = len(seq)
    _ensure_fits(size_of(seq) + n * size_of(sep), "a joined string")
    return listed


# filters that can multiply their input: check their arguments before they run
def _filter_precheck(name: str, args: tuple, kwargs: dict) -> tuple:
    value, rest = (args[0] if args else None), list(args[1:]) + list(kwargs.values())
    if name == "join":
        rest = list(args[1:2])  # join(value, d="", attribute=None): only the separator is text
    for a in rest:
        _int_arg(a, f"the result of the '{name}' filter")
    if name == "join":
        listed = _check_join(rest[0] if rest else "", value)
        if listed is not None:
            args = (listed, *args[1:])
    elif name == "replace" and isinstance(value, str):
        _check_str_method("replace", value, tuple(rest), {})
    elif name == "format" and isinstance(value, str):
        _check_format(value, rest)
    elif name == "indent" and isinstance(value, str):
        width = rest[0] if rest and isinstance(rest[0], int) else 4
        width = len(width) if isinstance(rest[0] if rest else None, str) else width
        _ensure_fits(len(value) + (value.count("\n") + 1) * max(width, 0), "an indented string")
    elif name in ("tojson", "pprint", "string", "list", "wordwrap", "center", "urlize"):
        indent = kwargs.get("indent", rest[0] if name == "tojson" and rest else 0)
        indent = indent if isinstance(indent, int) else 8
        _ensure_fits(size_of(value) * (1 + max(indent, 0)), f"the result of the '{name}' filter")
    return args


def _bounded_filter(name: str, func):
    from jinja2.utils import _PassArg

    skip = 1 if _PassArg.from_obj(func) is not None else 0  # Jinja passes a context/environment first

    def run(*args, **kwargs):
        if _budget.active:
            args = args[:skip] + _filter_precheck(name, args[skip:], kwargs)
        return _charge(func(*args, **kwargs), f"the result of the '{name}' filter")

    # keep the markers Jinja reads to pass the context / environment first
    for marker in ("jinja_pass_arg",):
        if hasattr(func, marker):
            setattr(run, marker, getattr(func, marker))
    run.__name__ = getattr(func, "__name__", name)
    return run


class BoundedSandboxEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus checks on every operation that can multiply memory."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, *args, **kwargs):
        # optimized=False: Jinja's optimizer folds constant filter calls at compile time,
        # outside every check here ('%0999999999d'|format(1) took 30 s in from_string)
        super().__init__(*args, finalize=self._finalize, optimized=False, **kwargs)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.concat = self._concat  # joins buffered blocks ({% set %}...{% endset %}, macros, filter blocks)

    def call_binop(self, context, op, left, right):
        if _budget.active:
            _check_binop(op, left, right)
        return _charge(super().call_binop(context, op, left, right), f"the result of '{op}'")

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - mirrors Jinja's signature
        if _budget.active:
            target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
            owner = getattr(target, "__self__", None)
            name = getattr(target, "__name__", "")
            if isinstance(owner, str):
                if name == "join" and args:
                    listed = _check_join(owner, args[0])
                    if listed is not None:
                        args = (listed, *args[1:])
                else:
                    _check_str_method(name, owner, args, kwargs)
        return _charge(super().call(__context, __obj, *args, **kwargs), "the result of a call")

    def _finalize(self, value):
        _charge(value, "a printed value")
        return value

    def _concat(self, parts) -> str:
        parts = list(parts)
        _ensure_fits(sum(size_of(p) for p in parts), "a block of text")
        return _charge("".join(parts), "a block of text")

    def checked_str_join(self, parts) -> str:
        parts = tuple(parts)
        _ensure_fits(sum(size_of(p) for p in parts), "a string joined with '~'")
        return _charge("".join(map(str, parts)), "a string joined with '~'")


def _install_concat_hook() -> None:
    """Route ``a ~ b`` through :meth:`checked_str_join`; Jinja compiles it to a plain
    module-level join that no sandbox hook sees."""
    from jinja2 import nodes
    from jinja2.compiler import CodeGenerator

    class BoundedCodeGenerator(CodeGenerator):
        def _output_child_to_const(self, node, frame, finalize):
            # Jinja evaluates constant {{ ... }} while compiling, even with the optimizer
            # off: '%0999999999d'|format(1) built 1 GB inside from_string. Only literal
            # text may be folded; everything else runs at render time, under the limits.
            if not isinstance(node, nodes.TemplateData):
                raise nodes.Impossible()
            return super()._output_child_to_const(node, frame, finalize)

        def visit_Concat(self, node, frame):
            self.write("environment.checked_str_join((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

    BoundedSandboxEnvironment.code_generator_class = BoundedCodeGenerator


_install_concat_hook()


@contextmanager
def _limits():
    """Apply the time and size limits to the code run inside, on this thread."""
    if _budget.active:  # nested (a template compiled while rendering): the outer limits hold
        yield
        return
    deadline = time.monotonic() + MAX_SECONDS

    def trace(frame, event, arg):
        if time.monotonic() > deadline:
            raise TemplateLimitExceeded(f"it did not finish within {MAX_SECONDS:g} s")
        # Line events only in the template's own compiled code, where its loops run; every
        # other Python frame is still checked when it is entered (a loop in Jinja's runtime
        # calls a Python function per item), and this module's checks loop only over
        # bounded data. Tracing every line everywhere made rendering ~20x slower.
        return trace if frame.f_code.co_filename == "<template>" else None

    previous = sys.gettrace()
    _budget.active, _budget.work = True, 0
    sys.settrace(trace)
    try:
        yield
    finally:
        sys.settrace(previous)
        _budget.active = False


def compile_bounded(env: BoundedSandboxEnvironment, source: str):
    """``env.from_string(source)`` within the limits (compiling a huge template is slow too)."""
    with _limits():
        return env.from_string(source)


def render_bounded(template, **variables) -> str:
    """Render ``template`` (from a :class:`BoundedSandboxEnvironment`) within the limits;
    raises :class:`TemplateLimitExceeded` with the reason when one is broken."""
    out: list[str] = []
    size = 0
    with _limits():
        for chunk in template.generate(**variables):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateLimitExceeded(f"its output is longer than {MAX_OUTPUT_CHARS:,} characters")
            out.append(chunk)
    return "".join(out)

