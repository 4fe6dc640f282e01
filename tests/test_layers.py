"""The packages' layers, read from the source with `ast`: no import runs up a layer, and no
two modules import each other at import time, however indirectly.

Bottom to top: `feature_extractors` (never imports `pipeline`), then `pipeline.core`, `data`,
`models`, `prepare`, `training`, `apply`, and the command line (`commands`, `cli`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [
    "feature_extractors",
    "core",
    "data",
    "models",
    "prepare",
    "training",
    "apply",
    "commands",
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    module_name(p): p
    for package in ("pipeline", "feature_extractors")
    for p in sorted((ROOT / package).rglob("*.py"))
}


def layer(module: str) -> int:
    """The module's layer; `pipeline` itself, `cli` and `__main__` are the top."""
    parts = module.split(".")
    if parts[0] == "feature_extractors":
        return 0
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else len(LAYERS)


def imports(module: str, top_level_only: bool) -> set[str]:
    """The project modules `module` imports (a name imported from a package counts as its
    submodule when there is one); with `top_level_only`, only those run at import time."""
    tree = ast.parse(MODULES[module].read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                for a in node.names
            ]
        else:
            continue
        found |= {name for name in names if name in MODULES and name != module}
    return found


def test_the_layers_are_found() -> None:
    packages = {m.split(".")[1] for m in MODULES if m.startswith("pipeline.")}
    assert set(LAYERS[1:]) <= packages  # a renamed layer must not pass unseen


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_runs_up_a_layer(module: str) -> None:
    upward = sorted(m for m in imports(module, top_level_only=False) if layer(m) > layer(module))
    assert not upward, f"{module} (layer {layer(module)}) imports {upward}"


def test_no_modules_import_each_other_at_import_time() -> None:
    graph = {m: imports(m, top_level_only=True) for m in MODULES}
    state: dict[str, str] = {}  # module -> "open" while on the path, "done" after

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for other in sorted(graph[module]):
            if state.get(other) == "open":
                cycle = path[path.index(other) :] + [other]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if other not in state:
                visit(other, [*path, other])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
