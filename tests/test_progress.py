"""Training progress on a terminal (rich bar) and in log files (periodic log lines)."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import yaml
from lightning.pytorch.callbacks import RichProgressBar

from perceiver.scripts.progress import EpochProgressBar, LogProgress, use_progress_for_output
from tests.test_data_text import write_text_splits

ROOT = Path(__file__).resolve().parents[1]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_fits_the_output():
    trainer = pl.Trainer(max_steps=5, logger=False, enable_checkpointing=False, enable_model_summary=False)
    assert type(trainer.progress_bar_callback) is RichProgressBar
    use_progress_for_output(trainer, Terminal())
    bar = trainer.progress_bar_callback
    assert type(bar) is EpochProgressBar
    bar._trainer = trainer
    # no "Epoch 2/-2" when the run is limited by max_steps
    assert bar._get_train_description(2).strip() == "Epoch 2"
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_model_summary=False)
    use_progress_for_output(trainer, Terminal())
    trainer.progress_bar_callback._trainer = trainer
    assert trainer.progress_bar_callback._get_train_description(1).strip() == "Epoch 1/2"

    trainer = pl.Trainer(max_steps=5, logger=False, enable_checkpointing=False, enable_model_summary=False)
    use_progress_for_output(trainer, io.StringIO())
    assert type(trainer.progress_bar_callback) is LogProgress
    assert sum(isinstance(c, pl.callbacks.ProgressBar) for c in trainer.callbacks) == 1


@pytest.mark.slow
def test_script_writes_progress_lines_to_a_log_file(tmp_path):
    config = {
        "model": {"max_latents": 4, "num_channels": 16, "num_heads": 2, "num_self_attention_layers": 1},
        "data": {
            "class_path": "perceiver.data.text.TextFilesDataModule",
            "init_args": {
                "source": str(write_text_splits(tmp_path / "text")),
                "max_seq_len": 16,
                "batch_size": 4,
                "num_workers": 0,
                "dataset_dir": str(tmp_path / "datasets"),
            },
        },
        "trainer": {
            "max_steps": 6,
            "log_every_n_steps": 2,
            "val_check_interval": 3,
            "check_val_every_n_epoch": None,
            "limit_val_batches": 2,
            "enable_model_summary": False,
        },
    }
    (tmp_path / "clm.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    with open(tmp_path / "train.log", "w") as log:  # as `nohup ... > train.log 2>&1` and SLURM's output file
        subprocess.run(
            [sys.executable, "-m", "perceiver.scripts.text.clm", "fit", "--config", str(tmp_path / "clm.yaml")],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=600,
            check=True,
        )
    text = (tmp_path / "train.log").read_text()
    steps = re.findall(r"step (\d+)/6 epoch 0 (\S+) it/s train_loss (\S+)", text)
    assert [int(step) for step, _, _ in steps] == [2, 4, 6], text[-3000:]
    assert all(float(rate) > 0 and float(loss) > 0 for _, rate, loss in steps)
    assert re.search(r"validation at step 3 epoch \d+: val_acc \S+ val_loss \S+ val_ppl \S+", text)
    assert "training ended at step 6" in text
    assert "Epoch 0/-" not in text and "\x1b[" not in text  # no rich frames or terminal escapes


def test_generation_shows_progress(capsys):
    import torch

    from perceiver.demos.common import TokenProgress
    from tests.test_clm import tiny_model

    model = tiny_model()
    input_ids = torch.randint(0, 262, (1, 5))
    expected = model.generate(input_ids, max_new_tokens=7, do_sample=False)
    capsys.readouterr()
    output = model.generate(input_ids, max_new_tokens=7, do_sample=False, streamer=TokenProgress(7))
    assert torch.equal(output, expected)
    err = capsys.readouterr().err
    assert "generating: 100%" in err and "7/7" in err
    model.generate(input_ids, max_new_tokens=3, do_sample=False, streamer=TokenProgress(3, disable=True))
    assert capsys.readouterr().err == ""


def test_video_rendering_shows_progress(capsys, tmp_path):
    from transformers import pipeline

    from perceiver.model.vision import optical_flow as of
    from tests.test_optical_flow import textured_image
    from tests.test_optical_flow import tiny_model as tiny_flow_model

    frames = [textured_image(24, 48, seed=i) for i in range(4)]
    of.write_video(tmp_path / "in.avi", frames, fps=10)
    tiny_flow_model(image_shape=(16, 24)).save_pretrained(tmp_path / "model")
    flow = pipeline("optical-flow", model=str(tmp_path / "model"))
    capsys.readouterr()
    assert of.render_optical_flow_video(flow, tmp_path / "in.avi", tmp_path / "out.avi") == 3
    err = capsys.readouterr().err
    assert "optical flow" in err and "3/3" in err
    assert of.render_optical_flow_video(flow, tmp_path / "in.avi", tmp_path / "out.avi", progress=False) == 3
    assert capsys.readouterr().err == ""
