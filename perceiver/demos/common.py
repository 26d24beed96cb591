"""Helpers shared by the demos."""

import subprocess
import sys
from pathlib import Path
from typing import List, Sequence


def run_script(module: str, args: Sequence[str], cwd: Path) -> None:
    """Runs `python -m <module> <args>` in `cwd`, showing its output (progress bar included) as it goes."""
    cmd: List[str] = [sys.executable, "-m", module, *args]
    print("$ " + " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def latest_run_dir(log_dir: Path) -> Path:
    """The newest `version_<n>` directory under `log_dir`."""
    runs = sorted(log_dir.glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    if not runs:
        raise FileNotFoundError(f"no training run found in {log_dir}")
    return runs[-1]
