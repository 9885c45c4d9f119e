"""The package's layers (tbotan/__init__.py): who may import whom, read from the source and checked in a fresh process.

- ``tbotan.md`` (OpenMM physics) imports neither torch nor dask;
- ``tbotan.learn`` (PyTorch) imports neither openmm nor dask;
- ``tbotan.hpc`` (cluster glue) imports no torch;
- ``tbotan.analysis`` (the report) imports no torch and no ``tbotan.learn`` module;
- ``tbotan.core`` and ``tbotan.errors`` import nothing heavier than NumPy;
- module-level imports inside the package form no cycle;
- ``tbotan energy``, ``quench`` and ``validate`` start without loading torch or dask, and the report's module
  loads neither torch nor the learning stack.

The source check follows every import statement, the lazy ones inside functions included, through the
package's own modules (a function that imports torch counts even if no test calls it). The process check
catches what the source cannot see: a third-party package that imports torch by itself (vesin does, when
torch is installed).
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "tbotan"
DASK = {"dask", "distributed", "dask_jobqueue", "dask_mpi"}
FORBIDDEN = {
    "tbotan.md": {"torch"} | DASK,
    "tbotan.learn": {"openmm"} | DASK,
    "tbotan.hpc": {"torch"},
    "tbotan.analysis": {"torch"},
    "tbotan.core": {"torch", "openmm", "zarr", "scipy", "vesin"} | DASK,
    "tbotan.errors": {"torch", "openmm", "zarr", "scipy", "vesin", "numpy"} | DASK,
}


def _modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path, top_level_only: bool = False) -> tuple[set[str], set[str]]:
    """(package modules, top-level external packages) that ``name`` imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    internal, external = set(), set()

    def add(dotted: str) -> None:
        if dotted.split(".")[0] == "tbotan":
            while dotted not in MODULES:  # an attribute of a module (a function, a constant)
                dotted = dotted.rpartition(".")[0]
            internal.add(dotted)
        else:
            external.add(dotted.split(".")[0])

    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            if module == "__future__":
                continue
            for alias in node.names:
                full = f"{module}.{alias.name}"
                add(full if full in MODULES else module)
    return internal, external


def _parents(name: str) -> list[str]:
    """The packages whose __init__ runs before ``name``: tbotan, tbotan.md, ..."""
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def reachable(name: str) -> set[str]:
    """Every external top-level package that importing ``name`` can load, lazily imported ones included."""
    seen, todo, external = set(), [name], set()
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        internal, ext = _imports(m, MODULES[m])
        external |= ext
        todo += [*internal, *_parents(m)]
    return external


def reachable_modules(name: str) -> set[str]:
    """Every package module that importing ``name`` can load (lazily imported ones included), ``name`` too."""
    seen, todo = set(), [name]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += [*_imports(m, MODULES[m])[0], *_parents(m)]
    return seen


def _in_layer(layer: str) -> list[str]:
    return sorted(m for m in MODULES if m == layer or m.startswith(layer + "."))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_what_it_must_not_in_its_source(layer):
    assert _in_layer(layer), f"no module in {layer}"
    bad = {m: sorted(reachable(m) & FORBIDDEN[layer]) for m in _in_layer(layer)}
    assert not {m: b for m, b in bad.items() if b}, f"{layer} may not import {sorted(FORBIDDEN[layer])}: {bad}"


def test_no_analysis_module_imports_a_learn_module_in_its_source():
    assert _in_layer("tbotan.analysis")
    bad = {
        m: sorted(n for n in reachable_modules(m) if n.startswith("tbotan.learn")) for m in _in_layer("tbotan.analysis")
    }
    assert not {m: b for m, b in bad.items() if b}, f"tbotan.analysis may not import tbotan.learn: {bad}"


def test_the_source_check_sees_lazy_and_transitive_imports():
    """The analysis finds what it must: torch behind the learning stack, distributed behind the pipeline (a
    module-level import), the SLURM glue behind the pipeline (a lazy one), openmm behind the store's readers, the
    report's module behind the command line (a lazy one)."""
    assert "torch" in reachable("tbotan.learn.train")
    assert {"distributed", "dask_jobqueue", "openmm", "vesin"} <= reachable("tbotan.data.pipeline")
    assert "torch" in reachable("tbotan.cli.main")  # through its lazily imported subcommands
    assert "openmm" not in reachable("tbotan.data.store")  # the learning stack reads the store
    assert "tbotan.analysis.report" in reachable_modules("tbotan.cli.main")  # imported inside cmd_report


def _loaded_by(statement: str) -> set[str]:
    """Top-level packages in sys.modules after ``statement`` runs in a fresh interpreter."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize("layer", ["tbotan.md", "tbotan.learn", "tbotan.hpc", "tbotan.core", "tbotan.analysis"])
def test_no_layer_loads_what_it_must_not_in_a_fresh_process(layer):
    loaded = _loaded_by("\n".join(f"import {m}" for m in _in_layer(layer)))
    assert not loaded & FORBIDDEN[layer], f"importing {layer} loaded {sorted(loaded & FORBIDDEN[layer])}"


def test_the_report_module_loads_neither_torch_nor_the_learning_stack_in_a_fresh_process():
    code = (
        "import sys\nimport tbotan.analysis.report\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith('tbotan.learn')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"importing tbotan.analysis.report loaded {out.stdout.strip()}"


def test_module_level_imports_have_no_cycle():
    graph = {m: _imports(m, p, top_level_only=True)[0] - {m} for m, p in MODULES.items()}
    state = {}

    def visit(m, path):
        state[m] = "open"
        for n in graph[m]:
            if state.get(n) == "open":
                raise AssertionError("import cycle: " + " -> ".join([*path, m, n]))
            if n not in state:
                visit(n, [*path, m])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [])


def _imported_at_start(*args) -> set[str]:
    """Top-level packages that ``tbotan ARGS`` imports (``python -X importtime``)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tbotan", *map(str, args)], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in out.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_physics_tools_and_validate_start_without_torch_or_dask(liquid_500, tmp_path):
    from tbotan.md import xyz

    types, x, box = liquid_500
    conf = tmp_path / "liquid.xyz"
    xyz.write(conf, types, x, box)
    commands = {
        "energy": ("energy", conf, "--json"),
        "quench": ("quench", conf, tmp_path / "is.xyz", "--tolerance", "1e-3", "--json"),
        "validate": ("validate", ROOT / "jobs" / "quickstart.yaml"),
    }
    for name, args in commands.items():
        loaded = _imported_at_start(*args)
        assert "openmm" in loaded or name == "validate", f"{name}: the check did not see the imports: {loaded}"
        assert not loaded & ({"torch"} | DASK), f"tbotan {name} imported {sorted(loaded & ({'torch'} | DASK))}"
