"""The architecture, enforced: the layers' import rules, no import cycles, small files.

Engines are the bottom layer: Qt-free and torch-free (the app runs on onnxruntime + numpy
alone) and they import nothing else from desktop/. The app side never imports the export
side except to delegate ``python main.py export``; no package has import cycles (a cycle
hides which layer is on top); no source file outgrows one reading. docs/ARCHITECTURE.md
describes the layers these rules keep.
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("torch", "PySide6", "transformers", "diffusers", "exporters")
# Packages whose import graph must have no cycle (training/ joins when it exists).
GRAPH_PACKAGES = ("desktop", "exporters", "training")
# The one app module that may import exporters: the CLI command that delegates to it.
EXPORT_COMMAND = "desktop.commands.export"
MAX_LINES = 450
SOURCE_FOLDERS = ("desktop", "exporters", "training", "tests", "bench", "scripts", "packaging")


def test_engines_import_without_qt_or_torch():
    engines = sorted(
        ".".join(p.relative_to(ROOT / "desktop" / "engines").with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "desktop" / "engines").rglob("*.py")
        if p.stem != "__init__" or p.parent.name != "engines"
    )
    code = (
        "import sys, importlib\n"
        f"for m in {engines!r}: importlib.import_module('desktop.engines.' + m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"engines pulled in forbidden modules: {out.stdout}"


def test_engine_sources_do_not_mention_forbidden_imports():
    for path in (ROOT / "desktop" / "engines").rglob("*.py"):
        text = path.read_text()
        for name in FORBIDDEN:
            assert f"import {name}" not in text and f"from {name}" not in text, f"{path.name} imports {name}"


# -- the module import graph, read with ast ------------------------------------------------------
def module_files(packages=GRAPH_PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``packages`` (a package is its __init__)."""
    found = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_names(path: Path, module: str) -> list[tuple[str, int]]:
    """(absolute dotted name, line) of every import in the file, function-level ones included
    (a lazy import is still a dependency; it only hides a cycle until the function runs).
    ``if TYPE_CHECKING:`` blocks are left out: they never run. ``from a import b`` yields
    ``a.b``; :func:`import_graph` walks up to the nearest module (``a`` when ``b`` is a name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names += [(f"{base}.{alias.name}" if alias.name != "*" else base, node.lineno) for alias in node.names]
    return names


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ``modules`` it imports (the named module itself, not its parents:
    a package's __init__ that re-exports its submodules is not a cycle with them)."""
    graph = {}
    for module, path in modules.items():
        targets = set()
        for name, _line in imported_names(path, module):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One concrete cycle (a -> b -> ... -> a) per strongly connected group of modules
    (Tarjan's algorithm, iterative: the graph is hundreds of modules deep)."""
    index, low, on_stack, stack, groups = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root), on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child), on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
    return [_cycle_in(group, graph) for group in groups]


def _cycle_in(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """The shortest way back to the group's first module (breadth-first inside the group)."""
    start = min(group)
    came_from = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & group):
            if child == start:
                path = [node]
                while came_from[path[-1]] is not None:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, node, start]
            if child not in came_from:
                came_from[child] = node
                queue.append(child)
    return sorted(group)


def test_the_cycle_finder_finds_a_lazy_cycle_and_ignores_type_checking(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pkg.a import thing\n")  # re-export: not a cycle
    (package / "a.py").write_text("from . import b\nthing = 1\n")
    (package / "b.py").write_text("def later():\n    from pkg.c import x\n")
    (package / "c.py").write_text("from pkg import a\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.d import y\n")
    (package / "d.py").write_text("import pkg.c\n")
    modules = {"pkg": package / "__init__.py", **{f"pkg.{n}": package / f"{n}.py" for n in "abcd"}}
    assert find_cycles(import_graph(modules)) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]


def test_no_import_cycles_in_desktop_or_exporters():
    cycles = find_cycles(import_graph(module_files()))
    assert not cycles, "import cycles (each group's shortest loop):\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_engines_import_nothing_above_them():
    modules = module_files()
    above = [
        f"{module} imports {target}"
        for module, targets in import_graph(modules).items()
        if module.startswith("desktop.engines")
        for target in targets
        if not target.startswith("desktop.engines") and target != "desktop"
    ]
    assert not above, "engines are the bottom layer:\n" + "\n".join(sorted(above))


# (importing package, packages it must not import, why): the layers of docs/ARCHITECTURE.md.
LAYER_RULES = (
    ("desktop.ui", ("desktop.commands", "desktop.cli"), "the GUI never imports the CLI; shared code lives below both"),
    ("desktop.outputs", ("desktop.ui", "desktop.commands", "desktop.server"), "studios, commands and the server all save through outputs"),
    ("desktop.offline", ("desktop.ui", "desktop.commands", "desktop.server", "desktop.outputs"), "the guard and the telemetry switch load before anything else"),
)


def test_layers_import_only_downwards():
    graph = import_graph(module_files())
    broken = sorted(
        f"{module} imports {target}: {why}"
        for package, banned, why in LAYER_RULES
        for module, targets in graph.items()
        if module == package or module.startswith(package + ".")
        for target in targets
        if any(target == b or target.startswith(b + ".") for b in banned)
    )
    assert not broken, "\n".join(broken)


def test_only_the_export_command_imports_exporters():
    app = {**module_files(("desktop",)), "main": ROOT / "main.py"}
    offenders = sorted(
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for module, path in app.items()
        if module != EXPORT_COMMAND
        for name, line in imported_names(path, module)
        if name == "exporters" or name.startswith("exporters.")
    )
    assert not offenders, f"only {EXPORT_COMMAND} may import exporters (the app runs without them):\n" + "\n".join(offenders)


def test_no_source_file_is_over_450_lines():
    sources = [ROOT / "main.py", *(p for folder in SOURCE_FOLDERS for p in sorted((ROOT / folder).rglob("*.py")))]
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in sources if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, f"split by responsibility (over {MAX_LINES} lines):\n" + "\n".join(long)
