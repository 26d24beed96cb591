"""The causal LM script with DDP on 2 CPU processes (gloo) trains as one process does on the same global batches,
and its checkpoint converts into a working 🤗 model."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM

from perceiver.model.text import clm
from tests.test_data_text import write_text_splits

ROOT = Path(__file__).resolve().parents[1]


def train(tmp_path: Path, name: str, data_dir: Path, *args: str) -> Path:
    config = {
        # no dropout, so that both runs compute the same function
        "model": {
            "max_latents": 4,
            "num_channels": 16,
            "num_heads": 2,
            "num_self_attention_layers": 1,
            "cross_attention_dropout": 0.0,
        },
        "data": {
            "class_path": "perceiver.data.text.TextFilesDataModule",
            "init_args": {
                "source": str(data_dir),
                "max_seq_len": 16,
                "num_workers": 0,
                "preproc_workers": 1,
                "dataset_dir": str(tmp_path / "datasets"),
            },
        },
        "optimizer": {"class_path": "torch.optim.AdamW", "init_args": {"lr": 0.01}},
        "trainer": {
            "accelerator": "cpu",
            "max_steps": 4,
            "val_check_interval": 4,
            "check_val_every_n_epoch": None,
            "limit_val_batches": 2,
            "log_every_n_steps": 1,
            "enable_model_summary": False,
            "enable_progress_bar": False,
            "logger": {"class_path": "CSVLogger", "init_args": {"save_dir": str(tmp_path / name)}},
        },
    }
    config_file = tmp_path / f"{name}.yaml"
    config_file.write_text(yaml.safe_dump(config))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "perceiver.scripts.text.clm", "fit", "--config", str(config_file), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    (checkpoint,) = (tmp_path / name).glob("**/checkpoints/last.ckpt")
    return checkpoint


@pytest.mark.slow
def test_ddp_on_two_processes_equals_one_process(tmp_path):
    data_dir = write_text_splits(tmp_path / "text", num_chars=5000)
    # global batch 8: 2 processes x 4, or 1 process x 8. Both use Lightning's DistributedSampler (seed 0), whose
    # global batch k holds the same examples for any number of processes, so both runs see the same data order.
    ddp = ["--trainer.strategy=ddp", "--trainer.devices=2", "--data.batch_size=4"]
    one = ["--trainer.strategy=ddp", "--trainer.devices=1", "--data.batch_size=8"]
    ckpt_ddp = train(tmp_path, "ddp", data_dir, *ddp)
    ckpt_one = train(tmp_path, "one", data_dir, *one)

    state_ddp = torch.load(ckpt_ddp, map_location="cpu", weights_only=False)
    state_one = torch.load(ckpt_one, map_location="cpu", weights_only=False)
    assert state_ddp["global_step"] == state_one["global_step"] == 4
    for name, value in state_one["state_dict"].items():
        torch.testing.assert_close(state_ddp["state_dict"][name], value, atol=1e-5, rtol=0, msg=name)
    # the optimizers saw the same gradients: AdamW's moments agree too, and they are not zero (training happened)
    moments_ddp = state_ddp["optimizer_states"][0]["state"]
    moments_one = state_one["optimizer_states"][0]["state"]
    assert moments_ddp.keys() == moments_one.keys() and len(moments_one) > 0
    for i, moments in moments_one.items():
        assert moments["exp_avg_sq"].abs().sum() > 0
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(moments_ddp[i][key], moments[key], atol=1e-6, rtol=1e-4)

    clm.convert_checkpoint(tmp_path / "hf", ckpt_ddp, tokenizer_name="perceiver-bytes")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    lit_model = clm.LitCausalLanguageModel.load_checkpoint(ckpt_ddp).eval()
    input_ids = torch.randint(6, 262, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_ids=input_ids).logits[:, -4:], lit_model(input_ids, 8), atol=1e-5, rtol=0
        )
    assert model.generate(input_ids[:1], max_new_tokens=3, do_sample=False).shape == (1, 15)
