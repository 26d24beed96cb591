"""The text training scripts, run as users run them: `python -m perceiver.scripts.text.<task> fit ...` in a
subprocess on tiny local data; their checkpoints are converted into 🤗 models that are then loaded and run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    PerceiverTokenizer,
    pipeline,
)

from perceiver.data.text import ImdbDataModule
from perceiver.model.text import classifier, clm, mlm
from tests.test_data_text import write_imdb, write_text_splits

ROOT = Path(__file__).resolve().parents[1]

TINY_ENCODER = {
    "num_input_channels": 32,
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": 2,
    "num_self_attention_layers_per_block": 1,
}
TINY_TRAINER = {
    "val_check_interval": 3,
    "check_val_every_n_epoch": None,
    "limit_val_batches": 2,
    "limit_test_batches": 2,
    "log_every_n_steps": 1,
    "enable_model_summary": False,
    "enable_progress_bar": False,
}


def run_script(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Runs `python -m perceiver.scripts.<module> *args` in `cwd` (where it writes logs/) without network."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", f"perceiver.scripts.{module}", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    return result


def write_config(path: Path, config: dict) -> str:
    path.write_text(yaml.safe_dump(config))
    return str(path)


def metrics(run_dir: Path) -> list:
    import csv

    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def mlm_run(tmp_path_factory):
    """A masked language model trained for 3 steps on pydoc text by the mlm script, UTF-8 bytes tokenizer."""
    tmp_path = tmp_path_factory.mktemp("mlm")
    PerceiverTokenizer().save_pretrained(tmp_path / "tokenizer")
    config = {
        "model": {
            "num_latents": 8,
            "num_latent_channels": 32,
            "encoder": TINY_ENCODER,
            "decoder": {"num_cross_attention_heads": 1},
        },
        "data": {
            "class_path": "perceiver.data.text.TextFilesDataModule",
            "init_args": {
                "source": str(write_text_splits(tmp_path / "text")),
                "tokenizer": str(tmp_path / "tokenizer"),
                "max_seq_len": 32,
                "batch_size": 8,
                "num_workers": 0,
                "dataset_dir": str(tmp_path / "datasets"),
            },
        },
        "trainer": {"max_steps": 3, **TINY_TRAINER},
    }
    config_file = write_config(tmp_path / "mlm.yaml", config)
    args = ["--optimizer=AdamW", "--optimizer.lr=0.003", "--lr_scheduler=CosineWithWarmupLR"]
    run_script("text.mlm", "fit", "--config", config_file, *args, "--lr_scheduler.warmup_steps=2", cwd=tmp_path)
    return tmp_path, config_file


@pytest.mark.slow
def test_mlm_script_trains_and_checkpoint_converts(mlm_run):
    tmp_path, _ = mlm_run
    run_dir = tmp_path / "logs" / "mlm" / "version_0"
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert checkpoints[-1] == "last.ckpt" and checkpoints[0].startswith("epoch=000-val_loss=")
    rows = metrics(run_dir)
    # warmup from 0 over 2 steps to lr 0.003 (as in 0.11 and transformers), then cosine decay over the trainer's 3 steps
    assert [float(r["lr-AdamW"]) for r in rows if r["lr-AdamW"]] == pytest.approx([0.0, 0.0015, 0.003])
    assert any(r["val_loss"] for r in rows) and any(r["train_loss"] for r in rows)
    assert list(run_dir.glob("events.out.tfevents.*"))  # TensorBoard logs beside the CSV logs
    hparams = yaml.safe_load((run_dir / "hparams.yaml").read_text())
    assert hparams["lr"] == 0.003  # the optimizer's, which applied
    assert hparams["encoder"]["vocab_size"] == hparams["decoder"]["vocab_size"] == 262  # linked from the data
    assert hparams["encoder"]["max_seq_len"] == hparams["decoder"]["max_seq_len"] == 32

    ckpt = run_dir / "checkpoints" / checkpoints[0]
    mlm.convert_checkpoint(tmp_path / "hf", ckpt, tokenizer_name=str(tmp_path / "tokenizer"))
    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "hf").eval()
    lit_model = mlm.LitMaskedLanguageModel.load_checkpoint(ckpt).eval()
    input_ids = torch.randint(6, 262, (2, 20))
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=input_ids).logits, lit_model(input_ids), atol=1e-5, rtol=0)
    predictions = pipeline("fill-mask", model=str(tmp_path / "hf"))("def [MASK]", top_k=2)
    assert len(predictions) == 2 and all(p["sequence"].startswith("def ") for p in predictions)


@pytest.mark.slow
def test_mlm_script_resumes_from_checkpoint(mlm_run):
    tmp_path, config_file = mlm_run
    last = tmp_path / "logs" / "mlm" / "version_0" / "checkpoints" / "last.ckpt"
    args = ["--optimizer=AdamW", "--optimizer.lr=0.003", f"--ckpt_path={last}", "--trainer.max_steps=5"]
    run_script("text.mlm", "fit", "--config", config_file, *args, cwd=tmp_path)
    steps = [int(r["step"]) for r in metrics(tmp_path / "logs" / "mlm" / "version_1") if r["train_loss"]]
    assert steps == [3, 4]  # training went on where the checkpoint left off


@pytest.mark.slow
def test_classifier_script_two_stage_recipe(mlm_run):
    """Stage 2 of the IMDb recipe: a classifier on the (frozen) encoder of the masked language model, trained and
    tested by the classifier script, converted and run by the text-classification pipeline."""
    tmp_path, _ = mlm_run
    mlm_ckpt = tmp_path / "logs" / "mlm" / "version_0" / "checkpoints" / "last.ckpt"
    mlm.convert_checkpoint(tmp_path / "mlm-hf", mlm_ckpt, tokenizer_name=str(tmp_path / "tokenizer"))
    write_imdb(tmp_path / "imdb")
    config = {
        "model": {
            "num_latents": 8,
            "num_latent_channels": 32,
            "encoder": {**TINY_ENCODER, "params": str(tmp_path / "mlm-hf"), "freeze": True},
            "decoder": {"num_output_query_channels": 32, "num_cross_attention_heads": 1},
        },
        "data": {
            "class_path": "perceiver.data.text.ImdbDataModule",
            "init_args": {
                "source": str(tmp_path / "imdb"),
                "tokenizer": str(tmp_path / "tokenizer"),
                "max_seq_len": 32,
                "batch_size": 8,
                "num_workers": 0,
                "dataset_dir": str(tmp_path / "datasets"),
            },
        },
        "trainer": {"max_steps": 3, **TINY_TRAINER},
    }
    config_file = write_config(tmp_path / "classifier.yaml", config)
    run_script("text.classifier", "fit", "--config", config_file, cwd=tmp_path)
    run_dir = tmp_path / "logs" / "classifier" / "version_0"
    best = next((run_dir / "checkpoints").glob("epoch=*-val_acc=*.ckpt"))
    result = run_script("text.classifier", "test", "--config", config_file, f"--ckpt_path={best}", cwd=tmp_path)
    assert "test_acc" in result.stdout

    lit_model = classifier.LitTextClassifier.load_checkpoint(best)
    assert lit_model.backend_config.decoder.num_classes == 2  # linked from the data
    mlm_weights = load_file(tmp_path / "mlm-hf" / "model.safetensors")
    for name, tensor in lit_model.backend_model.encoder.state_dict().items():
        torch.testing.assert_close(tensor, mlm_weights[f"backend_model.0.{name}"])  # frozen during training

    data = ImdbDataModule(source=str(tmp_path / "imdb"), tokenizer=str(tmp_path / "tokenizer"))
    classifier.convert_checkpoint(tmp_path / "clf-hf", best, str(tmp_path / "tokenizer"), id2label=data.id2label)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "clf-hf").eval()
    input_ids = torch.randint(6, 262, (2, 20))
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=input_ids).logits, lit_model.eval()(input_ids), atol=1e-5, rtol=0)
    predictions = pipeline("text-classification", model=str(tmp_path / "clf-hf"))(["great", "awful"])
    assert {p["label"] for p in predictions} <= {"neg", "pos"}


@pytest.mark.slow
def test_clm_script_trains_and_checkpoint_converts(tmp_path):
    PerceiverTokenizer().save_pretrained(tmp_path / "tokenizer")
    config = {
        "model": {"max_latents": 8, "num_channels": 32, "num_heads": 2, "num_self_attention_layers": 1},
        "data": {
            "class_path": "perceiver.data.text.TextFilesDataModule",
            "init_args": {
                "source": str(write_text_splits(tmp_path / "text")),
                "tokenizer": str(tmp_path / "tokenizer"),
                "max_seq_len": 32,
                "add_eos_token": True,
                "random_train_shift": True,
                "random_train_truncation": True,
                "random_min_seq_len": 12,
                "batch_size": 8,
                "num_workers": 0,
                "dataset_dir": str(tmp_path / "datasets"),
            },
        },
        "trainer": {"max_steps": 3, **TINY_TRAINER},
    }
    config_file = write_config(tmp_path / "clm.yaml", config)
    run_script("text.clm", "fit", "--config", config_file, "--lr_scheduler=ConstantWithWarmupLR", cwd=tmp_path)
    run_dir = tmp_path / "logs" / "clm" / "version_0"
    hparams = yaml.safe_load((run_dir / "hparams.yaml").read_text())
    assert (hparams["vocab_size"], hparams["max_seq_len"]) == (262, 32)  # linked from the data
    best = next((run_dir / "checkpoints").glob("epoch=*-val_loss=*.ckpt"))
    clm.convert_checkpoint(tmp_path / "hf", best, tokenizer_name=str(tmp_path / "tokenizer"))
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    lit_model = clm.LitCausalLanguageModel.load_checkpoint(best).eval()
    input_ids = torch.randint(6, 262, (1, 20))
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_ids=input_ids).logits[:, -8:], lit_model(input_ids, 12), atol=1e-5, rtol=0
        )
    output = model.generate(input_ids, max_new_tokens=5, do_sample=False)
    assert output.shape == (1, 25)
