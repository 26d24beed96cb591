"""The package's layering (see docs/library-design.md), checked over every import statement of every module,
including imports inside functions."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "perceiver"

# modules of the model layer that are plain PyTorch: the backend models and the core building blocks
FRAMEWORK_FREE = [
    *sorted(PACKAGE.glob("model/*/*/backend.py")),
    *[PACKAGE / "model" / "core" / f"{name}.py" for name in ("adapter", "attention", "config", "modules")],
    *[PACKAGE / "model" / "core" / f"{name}.py" for name in ("position", "utils", "loss", "weights")],
    PACKAGE / "model" / "core" / "perceiver_ar" / "__init__.py",  # its backend.py is matched above
]


def imports(path: Path) -> set:
    """Absolute module names imported by `path`, anywhere in it."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def modules_of(layer: str) -> list:
    return sorted((PACKAGE / layer).rglob("*.py"))


def relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


@pytest.mark.parametrize("path", FRAMEWORK_FREE, ids=relative)
def test_backend_models_import_neither_lightning_nor_transformers(path):
    assert path.is_file()
    bad = {m for m in imports(path) if m.split(".")[0] in ("lightning", "pytorch_lightning", "transformers")}
    assert not bad, f"{relative(path)} imports {sorted(bad)}"


def test_processing_imports_neither_data_nor_model():
    for path in modules_of("processing"):
        bad = {m for m in imports(path) if m.startswith(("perceiver.data", "perceiver.model"))}
        assert not bad, f"{relative(path)} imports {sorted(bad)}"


def test_model_does_not_import_data():
    for path in modules_of("model"):
        bad = {m for m in imports(path) if m.startswith("perceiver.data")}
        assert not bad, f"{relative(path)} imports {sorted(bad)}"


def test_data_does_not_import_model():
    for path in modules_of("data"):
        bad = {m for m in imports(path) if m.startswith("perceiver.model")}
        assert not bad, f"{relative(path)} imports {sorted(bad)}"


def test_backend_packages_load_without_lightning_or_transformers():
    """Importing the Perceiver AR package (its backend) or the core loads neither framework: the package's 🤗 and
    Lightning submodules are imported only when named."""
    code = (
        "import sys; import perceiver.model.core; import perceiver.model.core.perceiver_ar; "
        "frameworks = ('lightning', 'pytorch_lightning', 'transformers'); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in frameworks); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})


def test_common_imports_no_other_layer():
    # the bottom layer (safe checkpoint reading), which data, model, processing and scripts all build on
    assert modules_of("common")
    for path in modules_of("common"):
        bad = {m for m in imports(path) if m.startswith("perceiver.") and not m.startswith("perceiver.common")}
        assert not bad, f"{relative(path)} imports {sorted(bad)}"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(path: Path, known: set) -> set:
    """Modules of `known` that `path` imports when it is imported: imports outside functions and outside
    `if TYPE_CHECKING:` blocks; `from pkg import name` imports `pkg.name` where that is a module, else `pkg`."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()

    def visit(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found & known


def test_no_import_cycles():
    paths = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(p) for p in paths}
    graph = {module_name(p): module_level_imports(p, known) for p in paths}
    assert graph["perceiver.data.common"] >= {"perceiver.common.checkpoint"}  # the graph sees imports

    # depth-first search; a back edge to a module on the current path closes a cycle
    state, stack, cycles = {}, [], []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
