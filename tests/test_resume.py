"""A resumed run equals an uninterrupted one: the clm CLI (random shifts, random truncation, dropout) is killed with
SIGKILL mid-epoch and at an epoch boundary, resumed from `last.ckpt`, and its per-step losses and final weights are
compared with an uninterrupted run's, exactly (CPU)."""

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from transformers import PerceiverTokenizer

from perceiver.data.common import EpochSampler, dataloader
from tests.test_data_text import write_text_splits
from tests.test_scripts_text import ROOT, write_config

MAX_STEPS = 16


class KillAtStep(pl.Callback):
    """Kills the training process with SIGKILL when training step `step` (1-based) ends, before any checkpoint of
    that step is written (checkpoint callbacks run after the other callbacks)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def run_clm(cwd: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    config = {
        "model": {"max_latents": 8, "num_channels": 32, "num_heads": 2, "num_self_attention_layers": 1},
        "data": {
            "class_path": "perceiver.data.text.TextFilesDataModule",
            "init_args": {
                "source": str(data_dir / "text"),
                "tokenizer": str(data_dir / "tokenizer"),
                "max_seq_len": 32,
                "random_train_shift": True,
                "random_train_truncation": True,
                "random_min_seq_len": 12,
                "batch_size": 64,
                "num_workers": 0,
                "dataset_dir": str(data_dir / "datasets"),
            },
        },
        "trainer": {
            "max_steps": MAX_STEPS,
            "val_check_interval": 5,
            "check_val_every_n_epoch": None,
            "limit_val_batches": 2,
            "log_every_n_steps": 1,
            "enable_model_summary": False,
            "enable_progress_bar": False,
        },
        "checkpoint": {"every_n_train_steps": 1},
    }
    cwd.mkdir(parents=True, exist_ok=True)
    config_file = write_config(cwd / "clm.yaml", config)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "perceiver.scripts.text.clm", "fit", "--config", config_file, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def train_rows(run_dir: Path) -> list:
    with open(run_dir / "metrics.csv") as f:
        return [row for row in csv.DictReader(f) if row.get("train_loss")]


def train_losses(run_dir: Path) -> dict:
    """Training loss per step (0-based), as logged (exact decimal strings)."""
    return {int(row["step"]): row["train_loss"] for row in train_rows(run_dir)}


def load_checkpoint(path: Path) -> dict:
    # our own file, written by the run above
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    write_text_splits(data_dir / "text", num_chars=12000)
    PerceiverTokenizer().save_pretrained(data_dir / "tokenizer")
    result = run_clm(data_dir / "uninterrupted", data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = data_dir / "uninterrupted" / "logs" / "clm" / "version_0"
    last = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    steps_per_epoch = min(int(row["step"]) for row in train_rows(run_dir) if int(row["epoch"]) == 1)
    return data_dir, train_losses(run_dir), last, steps_per_epoch


@pytest.mark.slow
def test_last_checkpoint_holds_the_last_state(uninterrupted):
    _, losses, last, _ = uninterrupted
    assert last["global_step"] == MAX_STEPS
    assert sorted(losses) == list(range(MAX_STEPS))


@pytest.mark.slow
def test_run_killed_twice_and_resumed_equals_uninterrupted_run(uninterrupted):
    """Killed when the first step of epoch 1 ends (last.ckpt: end of epoch 0), resumed, killed again in the middle
    of epoch 1, resumed to the end: per-step losses and final weights equal the uninterrupted run's."""
    data_dir, losses, last, steps_per_epoch = uninterrupted
    cwd = data_dir / "killed"
    ckpt_dir = cwd / "logs" / "clm"
    resumed_losses, ckpt_args = {}, []
    for version, kill_at in enumerate([steps_per_epoch + 1, steps_per_epoch + 3]):
        assert kill_at < MAX_STEPS, steps_per_epoch
        kill_args = ["--trainer.callbacks+=tests.test_resume.KillAtStep", f"--trainer.callbacks.step={kill_at}"]
        killed = run_clm(cwd, data_dir, *kill_args, *ckpt_args)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        resumed_losses.update(train_losses(ckpt_dir / f"version_{version}"))
        ckpt = ckpt_dir / f"version_{version}" / "checkpoints" / "last.ckpt"
        assert load_checkpoint(ckpt)["global_step"] == kill_at - 1  # the step before the killed one
        ckpt_args = [f"--ckpt_path={ckpt}"]
    resumed = run_clm(cwd, data_dir, *ckpt_args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    resumed_losses.update(train_losses(ckpt_dir / "version_2"))
    # the killed runs' logs may end before their last step's loss was flushed; every resumed step is logged
    assert set(range(steps_per_epoch + 2, MAX_STEPS)) <= set(resumed_losses)
    assert resumed_losses == {s: losses[s] for s in resumed_losses}
    final = load_checkpoint(ckpt_dir / "version_2" / "checkpoints" / "last.ckpt")
    assert final["global_step"] == MAX_STEPS
    for name, value in last["state_dict"].items():
        assert torch.equal(final["state_dict"][name], value), name


def test_order_depends_on_seed_and_epoch_only():
    dataset = list(range(20))
    loader = dataloader(dataset, batch_size=4, shuffle=True, seed=3)
    assert isinstance(loader.sampler, EpochSampler)
    first = [b.tolist() for b in loader]
    again = [b.tolist() for b in dataloader(dataset, batch_size=4, shuffle=True, seed=3)]
    assert first == again  # a new loader does not reset or advance the order
    loader.sampler.set_epoch(1)
    second = [b.tolist() for b in loader]
    assert second != first and sorted(sum(second, [])) == dataset
    # resumed in epoch 1 after 2 batches: the rest of epoch 1's batches
    resumed = dataloader(dataset, batch_size=4, shuffle=True, seed=3)
    resumed.sampler.resume(1, 2)
    assert [b.tolist() for b in resumed] == second[2:]
    assert [b.tolist() for b in resumed] == second  # the next iteration: all of epoch 1 (set_epoch not called)


def test_batch_randomness_does_not_depend_on_global_generator_or_workers():
    def noisy_collate(examples):
        return torch.tensor(examples) + torch.rand(len(examples))

    def batches(num_workers):
        torch.manual_seed(num_workers)  # a different global state each time
        loader = dataloader(list(range(12)), batch_size=3, shuffle=True, collate_fn=noisy_collate, seed=0,
                            num_workers=num_workers)  # fmt: skip
        return [b for b in loader]

    a, b, c = batches(0), batches(0), batches(2)
    for x, y, z in zip(a, b, c):
        assert torch.equal(x, y) and torch.equal(x, z)
