"""The package's layering, read from its source (docs/architecture.md): every module imports only
from its own layer or the layers below it, never upwards, and the imports form no cycle. Imports
inside functions count too: a lazy import is still a dependency."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

from conftest import ROOT

PACKAGE = ROOT / "inception_analyzer"
# lowest first; a module may import from its own layer and the ones before it
LAYERS = [
    ("foundations", ("errors", "numbers", "dtypes", "perf", "output", "version", "untrusted", "spec", "ops",
                     "torch_modules")),
    ("the IR", ("graph", "catalog", "transform")),
    ("analyzers", ("analysis",)),
    ("the pipeline", ("pipeline",)),
    ("sweeps", ("sweep",)),
    ("torch", ("build", "importer", "spec_writer", "torchvision_compat", "bench")),
    ("renderers", ("render",)),
    ("commands", ("commands", "cli", "__main__", "__init__")),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    return next(index for index, (_, tops) in enumerate(LAYERS) if top in tops)


def imported_modules(module: str, path: Path) -> set[str]:
    """The package's modules that `module` imports, wherever in the file the import stands."""
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("inception_analyzer"):
                target = node.module.removeprefix("inception_analyzer").lstrip(".")
            else:
                continue
            # `from . import catalog`: the submodule; `from .ops import OPS`: the module itself
            for alias in node.names:
                candidate = f"{target}.{alias.name}" if target else alias.name
                found.add(candidate if candidate in MODULES else target or "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("inception_analyzer."):
                    found.add(alias.name.removeprefix("inception_analyzer."))
    return {name for name in found if name in MODULES and name != module}


GRAPH = nx.DiGraph()
for _name, _path in MODULES.items():
    GRAPH.add_node(_name)
    for _target in imported_modules(_name, _path):
        GRAPH.add_edge(_name, _target)


def test_every_module_has_a_layer():
    assert [m for m in MODULES if not any(m.split(".")[0] in tops for _, tops in LAYERS)] == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_import(module):
    upward = [f"{target} ({LAYERS[layer_of(target)][0]})" for target in GRAPH.successors(module)
              if layer_of(target) > layer_of(module)]
    assert not upward, f"{module} ({LAYERS[layer_of(module)][0]}) imports {', '.join(upward)}"


def test_no_import_cycle():
    cycles = [" -> ".join(cycle) for cycle in nx.simple_cycles(GRAPH) if len(cycle) > 1]
    assert cycles == []


def test_argparse_lives_in_the_command_layer_only():
    users = [name for name, path in MODULES.items() if "argparse" in path.read_text(encoding="utf-8")
             and layer_of(name) < len(LAYERS) - 1]
    assert users == []
