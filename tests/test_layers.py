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
# the one exception of "data never imports model": Lightning data modules restore their state from checkpoints
# through the single safe checkpoint reader (perceiver.model.core.checkpoint, which holds no model code)
DATA_TO_MODEL_ALLOWED = {("perceiver/data/common.py", "perceiver.model.core.checkpoint")}


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
        bad -= {m for p, m in DATA_TO_MODEL_ALLOWED if p == relative(path)}
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
