"""The package's import graph: layers that only point down, no cycles, no import of the root.

Nodes are the modules of ``risc_tf`` and its sub-packages taken whole (``fast``,
``explain``, ``experiments``, ``commands``). Every ``import`` counts, at module
level or inside a function (a lazy import is still a dependency); only imports under
``if TYPE_CHECKING:`` are left out. The floors follow the method:
data -> rotation -> input -> models -> training -> pipeline -> evaluation ->
experiments / explain -> command line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "risc_tf"
SUBPACKAGES = ("fast", "explain", "experiments", "commands")

#: node -> floor; a node may import its own floor or below, never above.
FLOORS: dict[str, int] = {
    # foundations: validation, writing files, the version, lazy exports, saving figures
    "_version": 0, "lazy": 0, "validation": 0, "atomic": 0, "figures": 0, "tf_logs": 0,
    "staging": 0, "progress": 0, "determinism": 0,
    # data: MedMNIST and a user's own image files
    "catalog": 1, "download": 1, "data": 1, "imagefiles": 1, "pillow_io": 1, "dicom": 1,
    "io": 1, "thumbnails": 1, "straighten": 1,
    # rotation, RotNet heads and input normalisation
    "angles": 2, "paper": 2, "rotation": 2, "resample": 2, "heads": 2, "preprocessing": 2,
    "augment": 2,
    # measures: metrics and statistics of arrays (no model)
    "metrics": 3, "statistics": 3, "verdicts": 3,
    # tf.data pipelines and batching
    "datasets": 4, "inputs": 4,
    # models
    "backbones": 5, "fast": 5, "models": 5, "archive": 5, "saving": 5, "features": 5,
    # training
    "distribute": 6, "recalibration": 6, "training_options": 6, "training": 6, "stages": 6,
    # the pipeline, its corrections, what it is trusted with, its files and its exports
    "corrections": 7, "calibration": 7, "thresholds": 7, "ood": 7, "ood_layers": 7,
    "pipeline_files": 7,
    "export_onnx": 7, "export": 7, "fused": 7, "pipeline": 7,
    # evaluation and what is made of a pipeline's answers
    "evaluation": 8, "sweep": 8, "trust": 8, "scans": 8, "review": 8, "decisions": 8, "rowfiles": 8,
    "shards": 8, "prediction_run": 8,
    # experiments and explanations
    "experiments": 9, "explain": 9,
    # the command line
    "commands": 10, "cli": 10, "__main__": 10,
}


def _node(module: str) -> str | None:
    """``risc_tf.a.b`` -> its node name (``None`` for the package root)."""
    parts = module.split(".")
    if parts[0] != "risc_tf" or len(parts) == 1:
        return None
    return parts[1]


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(path: Path) -> set[str]:
    """Every risc_tf module ``path`` imports (outside ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    here = _module_name(path)
    found = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("risc_tf"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = here.split(".")
                base = base[: len(base) - node.level + (path.name == "__init__.py")]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module == "risc_tf":  # from risc_tf import x: the root, or a sub-module x
                found.update(f"risc_tf.{a.name}" if (PACKAGE / f"{a.name}.py").exists()
                             or (PACKAGE / a.name).is_dir() else "risc_tf" for a in node.names)
            elif module.startswith("risc_tf"):
                found.add(module)
    return found


def _graph() -> dict[str, dict[str, set[str]]]:
    """importing node -> imported node -> the files that make the edge."""
    edges: dict[str, dict[str, set[str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _node(_module_name(path))
        for module in _imports(path):
            target = _node(module)
            if target is None:
                edges.setdefault(source or "risc_tf", {}).setdefault("risc_tf", set()).add(
                    str(path.relative_to(PACKAGE.parent)))
            elif target != source:
                edges.setdefault(source, {}).setdefault(target, set()).add(
                    str(path.relative_to(PACKAGE.parent)))
    return edges


def test_every_module_has_a_floor():
    nodes = {_node(_module_name(p)) for p in PACKAGE.rglob("*.py")} - {None}
    assert nodes - set(FLOORS) == set(), "give each new module a floor in FLOORS"
    assert set(FLOORS) - nodes == set(), "FLOORS names modules that no longer exist"
    assert set(SUBPACKAGES) <= nodes


def test_nothing_inside_the_package_imports_its_root():
    offenders = {files for node, targets in _graph().items() if node != "risc_tf"
                 for target, files in targets.items() if target == "risc_tf"}
    assert not offenders, offenders


def test_imports_only_point_down():
    upward = [f"{node} (floor {FLOORS[node]}) imports {target} (floor {FLOORS[target]}) in "
              f"{', '.join(sorted(files))}"
              for node, targets in _graph().items() if node in FLOORS
              for target, files in targets.items()
              if target in FLOORS and FLOORS[target] > FLOORS[node]]
    assert not upward, "\n".join(upward)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


@pytest.mark.parametrize("level", ["nodes", "files"])
def test_no_import_cycles(level):
    if level == "nodes":
        edges = {n: set(t) for n, t in _graph().items()}
    else:  # every file, sub-packages included
        edges = {}
        for path in PACKAGE.rglob("*.py"):
            name = _module_name(path)
            edges[name] = {m for m in _imports(path) if m != name and m != "risc_tf"}
    assert _cycles(edges) == []
