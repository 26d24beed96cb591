"""The shared CLI plumbing and the learning rate schedules, in-process (argument errors fail before anything is
built, so no subprocess is needed to see them)."""

import math
from pathlib import Path

import pytest
import torch
import yaml

from perceiver.scripts.audio import symbolic
from perceiver.scripts.lrs import ConstantWithWarmupLR, CosineWithWarmupLR
from perceiver.scripts.text import classifier, clm, mlm
from perceiver.scripts.vision import image_classifier
from tests.test_data_text import write_text_splits

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def lrs(scheduler, steps):
    values = []
    for _ in range(steps):
        values.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    return values


def optimizer(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def reference_factor(step, warmup_steps, training_steps=None, min_fraction=0.0, num_cycles=0.5):
    """perceiver-io 0.11's schedules, written out: linear warmup from 0, then constant or cosine decay."""
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    if training_steps is None:
        return 1.0
    progress = (step - warmup_steps) / max(1, training_steps - warmup_steps)
    return max(0.0, min_fraction + (1 - min_fraction) * 0.5 * (1 + math.cos(math.pi * num_cycles * 2 * progress)))


@pytest.mark.parametrize("warmup_steps", [0, 1, 3])
def test_constant_with_warmup(warmup_steps):
    values = lrs(ConstantWithWarmupLR(optimizer(2.0), warmup_steps=warmup_steps), 6)
    assert values == pytest.approx([2.0 * reference_factor(step, warmup_steps) for step in range(6)], abs=1e-12)
    assert lrs(ConstantWithWarmupLR(optimizer(), warmup_steps=4), 6) == pytest.approx([0, 0.25, 0.5, 0.75, 1, 1])


@pytest.mark.parametrize(
    "warmup_steps,training_steps,min_fraction,num_cycles", [(0, 5, 0.0, 0.5), (1, 5, 0.2, 0.5), (3, 10, 0.1, 1.0)]
)
def test_cosine_with_warmup(warmup_steps, training_steps, min_fraction, num_cycles):
    kwargs = dict(warmup_steps=warmup_steps, training_steps=training_steps, min_fraction=min_fraction)
    scheduler = CosineWithWarmupLR(optimizer(), num_cycles=num_cycles, **kwargs)
    expected = [reference_factor(s, warmup_steps, training_steps, min_fraction, num_cycles) for s in range(12)]
    assert lrs(scheduler, 12) == pytest.approx(expected, abs=1e-12)


def test_cosine_with_warmup_values():
    values = lrs(CosineWithWarmupLR(optimizer(), warmup_steps=1, training_steps=5, min_fraction=0.2), 6)
    # warmup from 0, then 0.2 + 0.8 * (1 + cos(pi * progress)) / 2 with progress (step - 1) / 4
    assert values == pytest.approx([0.0, 1.0, 0.2 + 0.8 * 0.8535534, 0.6, 0.2 + 0.8 * 0.1464466, 0.2])
    with pytest.raises(ValueError, match="training_steps=2 must be greater than warmup_steps=2"):
        CosineWithWarmupLR(optimizer(), warmup_steps=2, training_steps=2)
    with pytest.raises(ValueError, match=r"min_fraction=1.5 must be in \[0, 1\]"):
        CosineWithWarmupLR(optimizer(), min_fraction=1.5)


def test_cosine_length_set_after_construction():
    # the CLI constructs the scheduler first and sets training_steps from the trainer
    scheduler = CosineWithWarmupLR(optimizer(), warmup_steps=2)
    assert scheduler.get_last_lr() == [0.0]
    scheduler.training_steps = 6
    assert lrs(scheduler, 6) == pytest.approx([reference_factor(s, 2, 6) for s in range(6)])


def test_cosine_state_survives_checkpoints():
    scheduler = CosineWithWarmupLR(optimizer(), warmup_steps=2, training_steps=10)
    lrs(scheduler, 4)
    state = scheduler.state_dict()
    assert all(isinstance(v, (int, float, list, type(None))) for v in state.values())  # loads with weights_only
    restored = CosineWithWarmupLR(optimizer(), warmup_steps=0)
    restored.load_state_dict(state)
    assert (restored.warmup_steps, restored.training_steps, restored.last_epoch) == (2, 10, 4)
    assert lrs(restored, 3) == pytest.approx(lrs(scheduler, 3))


@pytest.mark.parametrize(
    "script,example,data_class,task",
    [
        (mlm, "mlm_imdb.yaml", "perceiver.data.text.ImdbDataModule", "mlm"),
        (classifier, "classifier_imdb.yaml", "perceiver.data.text.ImdbDataModule", "clf"),
        (clm, "clm_wikitext.yaml", "perceiver.data.text.WikiTextDataModule", "clm"),
        (clm, "clm_pydoc.yaml", "perceiver.data.text.TextFilesDataModule", "clm"),
        (image_classifier, "image_classifier_digits.yaml", "perceiver.data.vision.DigitsDataModule", None),
        (symbolic, "symbolic_audio.yaml", "perceiver.data.audio.SymbolicAudioDataModule", None),
    ],
)
def test_example_configs_parse(capsys, script, example, data_class, task):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["fit", "--config", str(EXAMPLES / example), "--print_config"])
    assert exit_info.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["data"]["class_path"] == data_class
    # the configuration that runs: the script's task, the optimizer's learning rate
    assert config["data"]["init_args"].get("task") == task
    assert config["model"]["lr"] == config["optimizer"]["init_args"]["lr"]
    assert config["optimizer"]["class_path"] == "torch.optim.AdamW"
    assert config["lr_scheduler"]["class_path"].startswith("perceiver.scripts.lrs.")
    assert config["checkpoint"]["save_last"] is True
    assert [logger["class_path"].rsplit(".", 1)[1] for logger in config["trainer"]["logger"]] == [
        "TensorBoardLogger",
        "CSVLogger",
    ]


@pytest.fixture
def mlm_config(tmp_path) -> str:
    config = {
        "model": {
            "num_latents": 4,
            "num_latent_channels": 16,
            "encoder": {"num_input_channels": 16, "num_self_attention_layers_per_block": 1},
        },
        "data": {
            "class_path": "TextFilesDataModule",
            "init_args": {
                "source": str(write_text_splits(tmp_path / "text", num_chars=5000)),
                "max_seq_len": 16,
                "dataset_dir": str(tmp_path / "datasets"),
            },
        },
        "trainer": {"default_root_dir": str(tmp_path)},
    }
    (tmp_path / "mlm.yaml").write_text(yaml.safe_dump(config))
    return str(tmp_path / "mlm.yaml")


def fails(capsys, script, *args) -> str:
    with pytest.raises(SystemExit) as exit_info:
        script.main(list(args))
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_mistyped_arguments_fail_with_clear_message(capsys, mlm_config):
    err = fails(capsys, mlm, "fit", "--config", mlm_config, "--trainer.max_stepz=3")
    assert "unrecognized arguments: --trainer.max_stepz=3" in err.lower()  # capitalized by older jsonargparse
    err = fails(capsys, mlm, "fit", "--config", mlm_config, "--data.batch_sise=3")
    assert "batch_sise" in err and ("is not accepted" in err or "NestedArg" in err)  # wording of jsonargparse 4.39
    err = fails(capsys, mlm, "fit", "--config", mlm_config, "--lr_scheduler=CosineWithWarmup")
    assert 'error: Parser key "lr_scheduler"' in err and "Given value: CosineWithWarmup" in err


def test_missing_data_paths_fail_with_clear_message(capsys, mlm_config, tmp_path):
    err = fails(capsys, mlm, "fit", "--config", mlm_config, "--data.source=missing/train.txt")
    assert err.strip().endswith(
        "error: data.source='missing/train.txt' does not exist (expected a 🤗 hub id, or a local file or directory)"
    )
    err = fails(capsys, mlm, "fit", "--config", mlm_config, f"--data.tokenizer={tmp_path / 'tokenizer'}")
    assert f"error: data.tokenizer='{tmp_path / 'tokenizer'}' does not exist" in err
    err = fails(capsys, image_classifier, "fit", "--data=MNISTDataModule", f"--data.source={tmp_path / 'mnist'}")
    assert f"error: data.source='{tmp_path / 'mnist'}' does not exist" in err


def test_script_sets_data_task(capsys, mlm_config, tmp_path):
    # data modules default to some task; a script overrides the default with its own
    args = [
        "--data=TextFilesDataModule",
        f"--data.source={tmp_path / 'text'}",
        f"--data.dataset_dir={tmp_path / 'datasets'}",
        "--data.max_seq_len=16",
        "--model.max_latents=4",
        "--model.num_channels=16",
        "--model.num_self_attention_layers=1",
    ]
    cli = clm.CausalLanguageModelCLI(clm.LitCausalLanguageModel, clm.TextDataModule, args=args, run=False)
    assert cli.datamodule.hparams.task == "clm" and cli.datamodule.tokenizer.padding_side == "left"
    assert (cli.model.hparams.vocab_size, cli.model.hparams.max_seq_len) == (262, 16)
    # but a task given explicitly must fit the script
    err = fails(capsys, mlm, "fit", "--config", mlm_config, "--data.task=clm")
    assert "data.task='clm' does not fit this script, which trains task 'mlm'" in err


def test_scheduler_without_optimizer_uses_model_settings(mlm_config):
    cli = mlm.MaskedLanguageModelCLI(
        mlm.LitMaskedLanguageModel,
        mlm.TextDataModule,
        args=[
            "--config",
            mlm_config,
            "--model.lr=0.01",
            "--model.weight_decay=0.1",
            "--lr_scheduler=ConstantWithWarmupLR",
        ],
        run=False,
    )
    assert cli.model.hparams.encoder["vocab_size"] == 262  # linked from the data module
    configured = cli.model.configure_optimizers()
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]
    assert isinstance(optimizer, torch.optim.AdamW)
    assert (optimizer.defaults["lr"], optimizer.defaults["weight_decay"]) == (0.01, 0.1)
    assert isinstance(scheduler["scheduler"], ConstantWithWarmupLR) and scheduler["interval"] == "step"
    assert cli.datamodule.hparams.task == "mlm"


def test_optimizer_lr_is_the_one_applied_and_recorded(capsys, mlm_config):
    def build(*args):
        cli = mlm.MaskedLanguageModelCLI(
            mlm.LitMaskedLanguageModel, mlm.TextDataModule, args=["--config", mlm_config, *args], run=False
        )
        optimizers = cli.model.configure_optimizers()  # with the default scheduler: {"optimizer": ..., ...}
        return cli.model.hparams, optimizers["optimizer"] if isinstance(optimizers, dict) else optimizers

    # the optimizer's values are recorded as the model's (hparams.yaml, TensorBoard), not the unused defaults
    hparams, optimizer = build("--optimizer=AdamW", "--optimizer.lr=0.003", "--optimizer.weight_decay=0.2")
    assert (hparams.lr, hparams.weight_decay) == (0.003, 0.2)
    assert (optimizer.defaults["lr"], optimizer.defaults["weight_decay"]) == (0.003, 0.2)
    hparams, _ = build("--optimizer=SGD", "--optimizer.lr=0.5", "--model.lr=0.5")
    assert hparams.lr == 0.5
    # a model value that would be ignored is refused, in one line
    err = fails(
        capsys, mlm, "fit", "--config", mlm_config, "--model.lr=0.01", "--optimizer=AdamW", "--optimizer.lr=3e-3"
    )
    assert err.strip() == (
        "error: model.lr=0.01 conflicts with the optimizer's lr=0.003 (torch.optim.AdamW): "
        "with --optimizer set --optimizer.lr instead"
    )
    err = fails(capsys, mlm, "fit", "--config", mlm_config, "--optimizer=AdamW", "--model.weight_decay=0.1")
    assert "error: model.weight_decay=0.1 conflicts with the optimizer's weight_decay=0.01" in err
    # without --optimizer the model's values make the AdamW optimizer
    hparams, optimizer = build("--model.lr=0.02")
    assert hparams.lr == optimizer.defaults["lr"] == 0.02


def test_mistyped_hub_source_fails_in_one_line(capsys, mlm_config, tmp_path):
    # not a local path, so a hub id: unreachable offline (tests), unknown online; either way one line, no traceback
    err = fails(
        capsys,
        mlm,
        "fit",
        "--config",
        mlm_config,
        "--data.source=wikitxt",
        "--trainer.logger=false",
        "--trainer.max_steps=1",
    )
    assert "Traceback" not in err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("error: data.source='wikitxt' is no local file or directory, and no 🤗 hub dataset reached: ")
    )


def test_scripts_have_default_data(capsys):
    # the data module each script's docstring names as its default
    for script, data_class in [
        (mlm, "perceiver.data.text.WikiTextDataModule"),
        (classifier, "perceiver.data.text.ImdbDataModule"),
        (clm, "perceiver.data.text.WikiTextDataModule"),
        (image_classifier, "perceiver.data.vision.DigitsDataModule"),
        (symbolic, "perceiver.data.audio.SymbolicAudioDataModule"),
    ]:
        with pytest.raises(SystemExit):
            script.main(["fit", "--print_config"])
        assert yaml.safe_load(capsys.readouterr().out)["data"]["class_path"] == data_class
        assert data_class.rsplit(".", 1)[1] in script.__doc__
