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
    for block in python_blocks(path):  # blocks of one page run in order, later ones use what earlier ones saved
        exec(compile(block, f"{path.name}", "exec"), {"__name__": "__doc_example__"})


def test_demo_runs(tmp_path, capsys):
    from perceiver import demo

    demo.main(tmp_path)
    output = capsys.readouterr().out
    assert "max abs difference of the logits" in output
    difference = float(re.search(r"official vs converted: ([0-9.e+-]+)", output).group(1))
    assert difference <= 1e-4
