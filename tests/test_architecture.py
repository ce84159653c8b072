"""The package's shape (issue 24): its import graph has no cycle and no import from a lower
layer to a higher one (data flows config -> data -> models -> md -> exafs -> scoring ->
figures), the model kind is dispatched only by the backend registry, and no module passes
500 lines.  The graph is read from the source with Python's own parser (every import,
function-local ones included; ``if TYPE_CHECKING:`` imports never run and are left out)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Layers, lowest first: a module may import its own layer and the ones below it.
LAYERS = [
    {"io", "stats", "structure", "fetch", "schema", "runstatus"},  # shared utilities, the schema
    {"data"},  # DFT frames
    {"models", "training", "finetune", "metrics"},  # model backends, fine-tuning, DFT arm
    {"md", "diagnostics", "label"},  # MD, its diagnostics, DFT labelling of MD frames
    {"exafs"},  # simulated EXAFS
    {"scoring"},  # the measurement, its fit, the scores, the convergence decision
    {"summary", "plots", "plot_answer", "plot_leaderboard", "plot_layout",
     "leaderboard_page"},  # tables, figures
    # the study
    {"config", "config_checks", "config_materials", "cli", "workflow", "__main__", "__init__"},
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "dualbench").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(child) for child in ast.walk(node))
    return skip


def _targets(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        return [module] + [f"{module}.{alias.name}" for alias in node.names]
    return []


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skip = _type_checking_nodes(tree)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            for target in _targets(node, package):
                while target and target not in modules:
                    target = target.rsplit(".", 1)[0] if "." in target else ""
                if target.startswith("dualbench") and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def layer_of(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for level, names in enumerate(LAYERS):
        if top in names:
            return level
    raise AssertionError(f"{module}: no layer (add dualbench.{top} to LAYERS)")


def test_no_import_cycle():
    assert _cycles(import_graph()) == []


def test_no_import_from_a_lower_layer_to_a_higher_one():
    upward = [
        f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
        for a, targets in import_graph().items() for b in sorted(targets)
        if layer_of(b) > layer_of(a)
    ]
    assert upward == []


def test_the_checks_see_a_planted_cycle_and_an_upward_import():
    """The oracle works: a hand-made cycle and an import of scoring from md are found."""
    graph = {"dualbench.a": {"dualbench.b"}, "dualbench.b": {"dualbench.a"}, "dualbench.c": set()}
    assert _cycles(graph) == [["dualbench.a", "dualbench.b"]]
    assert layer_of("dualbench.scoring.convergence") > layer_of("dualbench.md.driver")


def test_model_kind_dispatched_only_by_the_registry():
    """No `kind == ...` / `kind in (...)` outside dualbench.models (the backends and their
    registry): a new kind is one module and one registry line."""
    pattern = re.compile(r"\bkind\s*(==|!=)\s*['\"]|\bkind\s+(not\s+)?in\s*[(\[{]")
    offenders = []
    for path in sorted((SRC / "dualbench").rglob("*.py")):
        if "models" in path.relative_to(SRC).parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    workflow = SRC.parent / "workflow"
    for path in sorted(workflow.rglob("*.smk")) + sorted(workflow.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(SRC.parent)}:{number}: {line.strip()}")
    assert offenders == []


@pytest.mark.parametrize("limit", [500])
def test_no_module_over_500_lines(limit):
    long = {str(p.relative_to(SRC)): n for p in (SRC / "dualbench").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > limit}
    assert long == {}
