"""Every Python example in the README and docs/ runs as written (in a temporary working directory)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(path: Path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("path", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.name)
def test_doc_examples_run(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope = {"__name__": "__doc_example__"}
    for block in python_blocks(path):  # the blocks of a page run in order, in one namespace, as in a notebook
        exec(compile(block, f"{path.name}", "exec"), scope)


def test_convert_demo_runs(tmp_path, capsys):
    from perceiver.demos import convert_mlm

    convert_mlm.main(tmp_path)
    output = capsys.readouterr().out
    assert "max abs difference of the logits" in output
    difference = float(re.search(r"official vs converted: ([0-9.e+-]+)", output).group(1))
    assert difference <= 1e-4


@pytest.mark.slow
def test_digits_demo_runs(tmp_path, capsys):
    """The README's demo end to end, with fewer epochs (the full demo reaches about 98% test accuracy)."""
    from PIL import Image

    from perceiver.demos import digits

    accuracy = digits.main(tmp_path, max_epochs=6)
    output = capsys.readouterr().out
    assert f"held-out test images: accuracy {accuracy:.1%}" in output
    assert accuracy > 0.4  # far above chance (0.1) after 6 epochs (of which 100 steps warm-up)
    assert Image.open(tmp_path / "predictions.png").size == (8 * 72, 6 * 88)
    assert (tmp_path / "digits-perceiver" / "preprocessor_config.json").is_file()


@pytest.mark.slow
def test_pydoc_clm_demo_runs(tmp_path):
    from perceiver.demos import pydoc_clm

    text = pydoc_clm.main(tmp_path, max_time="00:00:00:15", prompt="The ")
    assert text.startswith("The ") and len(text) > len("The ")
    assert (tmp_path / "pydoc-perceiver-ar" / "model.safetensors").is_file()
