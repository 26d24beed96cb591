"""Helpers shared by the demos."""

import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

from transformers.generation.streamers import BaseStreamer


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


class TokenProgress(BaseStreamer):
    """A `streamer` for 🤗 `generate()` (and generation pipelines) that shows a tqdm progress bar of the generated
    tokens (on stderr; `disable=True` turns it off)."""

    def __init__(self, max_new_tokens: int, desc: str = "generating", disable: bool = False):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=max_new_tokens, desc=desc, unit="token", disable=disable)
        self.prompt_seen = False

    def put(self, value) -> None:
        if not self.prompt_seen:  # generate() first puts the prompt
            self.prompt_seen = True
            return
        self.bar.update(1)  # one token per sequence and step

    def end(self) -> None:
        self.bar.close()
