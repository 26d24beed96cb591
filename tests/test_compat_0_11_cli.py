"""perceiver-io 0.11's command lines (from its docs and examples/training/*.sh, hub ids replaced by local paths) and
the config.yaml its CLI saved run here; `pytorch_lightning` (the distribution 0.11 used) is explained in the
migration guide."""

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from lightning.pytorch import Callback

from tests.conftest import pydoc_text
from tests.test_compat_0_11_checkpoint import write_legacy_checkpoint


@pytest.fixture
def imdb_dir(tmp_path):
    """A local IMDb-like source (train and test parquet files, columns text and label)."""
    texts = [p.strip() for p in pydoc_text(30000).split("\n\n") if p.strip()]
    directory = tmp_path / "imdb"
    directory.mkdir()
    for split, part in (("train", texts[: len(texts) * 3 // 4]), ("test", texts[len(texts) * 3 // 4 :])):
        pd.DataFrame({"text": part, "label": [i % 2 for i in range(len(part))]}).to_parquet(
            directory / f"{split}-00000-of-00001.parquet"
        )
    return directory


def _model_args(fixtures_dir, name: str, prefix: str = "--model.") -> list:
    """The fixture's architecture as CLI arguments (in 0.11, the run's config gave them)."""
    config = json.loads((fixtures_dir / name / "config.json").read_text())["model_config"]
    args = [
        f"{prefix}num_latents={config['num_latents']}",
        f"{prefix}num_latent_channels={config['num_latent_channels']}",
    ]
    for part in ("encoder", "decoder") if prefix == "--model." else ("encoder",):
        for key, value in config[part].items():
            if key not in ("vocab_size", "max_seq_len", "params", "num_classes") and value is not None:
                args.append(f"--model.{part}.{key}={json.dumps(value) if isinstance(value, bool) else value}")
    return args


def _run(main, args, cwd, monkeypatch):
    monkeypatch.chdir(cwd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(args)


_TRAINER = [
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--trainer.max_steps=1",
    "--trainer.limit_val_batches=1",
]


@pytest.mark.slow
def test_mlm_fine_tuning_command_of_0_11(fixtures_dir, tmp_path, imdb_dir, monkeypatch):
    """docs/training-examples.md and examples/training/mlm/train.sh: --model.params is a 0.11 checkpoint,
    --lr_scheduler.warmup_steps names no scheduler, --data.static_masking is 0.11's option."""
    from perceiver.scripts.text import mlm

    ckpt = write_legacy_checkpoint(fixtures_dir, "mlm", tmp_path / "mlm.ckpt")
    cli = _run(
        mlm.main,
        [
            "fit",
            f"--model.params={ckpt}",
            "--model.activation_checkpointing=true",
            *_model_args(fixtures_dir, "mlm"),
            "--data=ImdbDataModule",
            f"--data.source={imdb_dir}",
            "--data.task=mlm",
            "--data.tokenizer=perceiver-bytes",
            "--data.add_special_tokens=true",
            "--data.static_masking=false",
            "--data.max_seq_len=48",
            "--data.batch_size=2",
            "--data.num_workers=0",
            f"--data.dataset_dir={tmp_path / 'data'}",
            "--optimizer=AdamW",
            "--optimizer.lr=1e-5",
            "--optimizer.weight_decay=0.01",
            "--lr_scheduler.warmup_steps=1000",
            *_TRAINER,
            "--trainer.log_every_n_steps=20",
            "--trainer.logger=TensorBoardLogger",
            "--trainer.logger.save_dir=logs",
            "--trainer.logger.name=mlm",
        ],
        tmp_path,
        monkeypatch,
    )
    assert cli.trainer.global_step == 1
    assert type(cli.trainer.lr_scheduler_configs[0].scheduler).__name__ == "ConstantWithWarmupLR"
    assert cli.trainer.lr_scheduler_configs[0].scheduler.warmup_steps == 1000


@pytest.mark.slow
def test_classifier_commands_of_0_11_with_saved_config(fixtures_dir, tmp_path, imdb_dir, monkeypatch):
    """--model.encoder.params is a 0.11 mlm checkpoint; then `validate --config=<saved config.yaml>
    --model.encoder.params=null --ckpt_path=...`, and the same with a config.yaml written as 0.11's CLI wrote it."""
    from perceiver.scripts.text import classifier

    mlm_ckpt = write_legacy_checkpoint(fixtures_dir, "mlm", tmp_path / "mlm.ckpt")
    data_args = [
        "--data=ImdbDataModule",
        f"--data.source={imdb_dir}",
        "--data.task=clf",
        "--data.tokenizer=perceiver-bytes",
        "--data.add_special_tokens=true",
        "--data.max_seq_len=48",
        "--data.batch_size=2",
        "--data.num_workers=0",
        f"--data.dataset_dir={tmp_path / 'data'}",
    ]
    encoder_args = [a for a in _model_args(fixtures_dir, "mlm") if not a.startswith("--model.decoder")]
    cli = _run(
        classifier.main,
        [
            "fit",
            f"--model.encoder.params={mlm_ckpt}",
            "--model.encoder.freeze=true",
            "--model.encoder.dropout=0.0",
            "--model.decoder.dropout=0.1",
            "--model.decoder.num_output_query_channels=48",
            *encoder_args,
            *data_args,
            "--optimizer=AdamW",
            "--optimizer.lr=1e-3",
            "--lr_scheduler.warmup_steps=100",
            *_TRAINER,
            "--trainer.logger=TensorBoardLogger",
            "--trainer.logger.save_dir=logs",
            "--trainer.logger.name=txt_clf_dec",
        ],
        tmp_path,
        monkeypatch,
    )
    run_dir = tmp_path / "logs" / "txt_clf_dec" / "version_0"
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert ckpt.is_file() and (run_dir / "config.yaml").is_file()
    trained = cli.model.backend_model.state_dict()

    validated = _run(
        classifier.main,
        [
            "validate",
            f"--config={run_dir / 'config.yaml'}",
            "--model.encoder.params=null",
            "--trainer.devices=1",
            f"--ckpt_path={ckpt}",
        ],
        tmp_path,
        monkeypatch,
    )
    assert all((validated.model.backend_model.state_dict()[k] == v).all() for k, v in trained.items())

    # the same run's config as 0.11's LightningCLI saved it: its class paths, a scheduler without class_path
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["lr_scheduler"] = {"warmup_steps": 100, "last_epoch": -1, "verbose": False}
    config["model"]["params"] = None
    config["model"]["activation_offloading"] = False
    config["data"]["init_args"]["task"] = "clf"
    legacy_config = tmp_path / "config_0_11.yaml"
    legacy_config.write_text(yaml.safe_dump(config))
    for subcommand in ("validate", "test"):
        result = _run(
            classifier.main,
            [subcommand, f"--config={legacy_config}", "--model.encoder.params=null", f"--ckpt_path={ckpt}"],
            tmp_path,
            monkeypatch,
        )
        assert all((result.model.backend_model.state_dict()[k] == v).all() for k, v in trained.items())


def test_image_classifier_command_of_0_11_parses(tmp_path, monkeypatch):
    """examples/training/img_clf/train.sh: `--trainer.strategy=ddp_static_graph`, `--lr_scheduler.warmup_steps`."""
    from lightning.pytorch.strategies import DDPStrategy

    from perceiver.data.vision import ImageDataModule
    from perceiver.model.vision.image_classifier import LitImageClassifier
    from perceiver.scripts.vision.image_classifier import ImageClassifierCLI

    args = [
        "fit",
        "--model.num_latents=32",
        "--model.num_latent_channels=128",
        "--model.encoder.num_frequency_bands=32",
        "--model.encoder.num_cross_attention_layers=2",
        "--model.encoder.num_self_attention_blocks=3",
        "--model.encoder.num_self_attention_layers_per_block=3",
        "--model.encoder.first_self_attention_block_shared=false",
        "--model.encoder.dropout=0.1",
        "--model.encoder.init_scale=0.1",
        "--model.decoder.num_output_query_channels=128",
        "--model.decoder.dropout=0.1",
        "--model.decoder.init_scale=0.1",
        "--data=DigitsDataModule",  # MNISTDataModule in 0.11 (a hub dataset)
        "--data.batch_size=128",
        "--data.num_workers=0",
        "--optimizer=AdamW",
        "--optimizer.lr=1e-3",
        "--lr_scheduler.warmup_steps=500",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.max_epochs=30",
        "--trainer.strategy=ddp_static_graph",
        "--trainer.logger=TensorBoardLogger",
        "--trainer.logger.save_dir=logs",
        "--trainer.logger.name=img_clf",
    ]
    monkeypatch.chdir(tmp_path)
    # without subcommand (run=False), as LightningCLI builds the trainer without running it
    cli = ImageClassifierCLI(LitImageClassifier, ImageDataModule, args=args[1:], run=False)
    strategy = cli.trainer.strategy
    assert isinstance(strategy, DDPStrategy) and strategy._ddp_kwargs.get("static_graph") is True
    assert cli.config.lr_scheduler.init_args.warmup_steps == 500


def test_preproc_and_clm_fsdp_modules_of_0_11(tmp_path, monkeypatch, capsys):
    from lightning.pytorch.strategies import StrategyRegistry

    from perceiver.scripts.text import clm_fsdp, preproc

    text = tmp_path / "train.txt"
    text.write_text(pydoc_text(5000))
    monkeypatch.chdir(tmp_path)
    preproc.main(
        ["textfiles", f"--source={text}", "--tokenizer=perceiver-bytes", "--max_seq_len=64", "--task=clm"]
        + [f"--dataset_dir={tmp_path / 'data'}", "--filter_empty=true"]
    )
    assert "preprocessed textfiles into" in capsys.readouterr().out
    assert list((tmp_path / "data" / "preproc").glob("TextFilesDataModule-clm-*/dataset_dict.json"))
    assert "fsdp_perceiver_ar" in StrategyRegistry
    with pytest.warns(DeprecationWarning, match="perceiver.scripts.text.clm with --trainer.strategy=fsdp_perceiver_ar"):
        with pytest.raises(SystemExit) as info:
            clm_fsdp.main(
                ["fit", "--data=TextFilesDataModule", f"--data.source={text}", "--trainer.strategy=fsdp_perceiver_ar"]
                + ["--print_config"]
            )
    assert info.value.code == 0
    assert "strategy: fsdp_perceiver_ar" in capsys.readouterr().out


@pytest.mark.slow
def test_validate_a_0_11_checkpoint_with_ckpt_path(fixtures_dir, tmp_path, imdb_dir, monkeypatch):
    """`validate --ckpt_path=<0.11 checkpoint>`: the architecture comes from the checkpoint, the weights too."""
    from safetensors.torch import load_file

    from perceiver.scripts.text import mlm

    ckpt = write_legacy_checkpoint(fixtures_dir, "mlm", tmp_path / "mlm.ckpt")
    cli = _run(
        mlm.main,
        [
            "validate",
            "--data=ImdbDataModule",
            f"--data.source={imdb_dir}",
            "--data.task=mlm",
            "--data.tokenizer=perceiver-bytes",
            "--data.max_seq_len=48",
            "--data.batch_size=2",
            "--data.num_workers=0",
            f"--data.dataset_dir={tmp_path / 'data'}",
            "--trainer.accelerator=cpu",
            "--trainer.limit_val_batches=2",
            "--trainer.logger=false",
            f"--ckpt_path={ckpt}",
        ],
        tmp_path,
        monkeypatch,
    )
    assert cli.model.backend_config.num_latents == 12
    state_dict = cli.model.backend_model.state_dict()
    for key, value in load_file(fixtures_dir / "mlm" / "model.safetensors").items():
        assert (state_dict[key[len("backend_model.") :]] == value).all(), key


def test_pytorch_lightning_trainer_needs_the_documented_import_change():
    """docs/migrating-from-0.11.md: `pytorch_lightning` is a separate distribution whose trainer refuses
    `lightning.pytorch` modules; `lightning.pytorch.Trainer` (the one-line migration) trains them."""
    import lightning.pytorch
    import torch

    from perceiver.model.text import clm

    pytorch_lightning = pytest.importorskip("pytorch_lightning")
    config = clm.CausalLanguageModelConfig(
        vocab_size=10, max_seq_len=8, max_latents=4, num_channels=8, num_heads=1, num_self_attention_layers=1
    )
    loader = torch.utils.data.DataLoader([{"input_ids": torch.arange(8) % 10}] * 4, batch_size=2)
    kwargs = dict(max_steps=1, logger=False, enable_checkpointing=False, accelerator="cpu", enable_progress_bar=False)
    with pytest.raises(TypeError, match="must be a `LightningModule`"):
        pytorch_lightning.Trainer(**kwargs).fit(clm.LitCausalLanguageModel.create(config), loader)
    trainer = lightning.pytorch.Trainer(**kwargs, enable_model_summary=False)
    trainer.fit(clm.LitCausalLanguageModel.create(config), loader)
    assert trainer.global_step == 1


class GradNormRecorder(Callback):
    """Records the gradients' total norm where the optimizer step sees it (a callback, after the clipping ones)."""

    def __init__(self):
        self.norms = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        self.norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())


@pytest.mark.slow
def test_clm_fsdp_command_of_0_11(tmp_path, monkeypatch):
    """examples/training/clm/train_fsdp.sh (C4 replaced by a local copy, a tiny model, no GPUs): its model options
    `--model.optimizer`, `--model.scheduler` and `--model.max_grad_norm` and data options `--data.min_seq_len`,
    `--data.concat_batch_size`, `--data.num_train_workers` and `--data.num_valid_workers` do what they did."""
    import gzip

    from perceiver.data.text import C4DataModule
    from perceiver.scripts.lrs import CosineWithWarmupLR
    from perceiver.scripts.text import clm_fsdp

    texts = [p.strip() for p in pydoc_text(30000).split("\n\n") if p.strip()]
    (tmp_path / "c4" / "en").mkdir(parents=True)
    for name, part in [("c4-train.00000-of-00001.json.gz", texts[:60]), ("c4-validation.json.gz", texts[60:])]:
        with gzip.open(tmp_path / "c4" / "en" / name, "wt") as f:
            f.write("\n".join(json.dumps({"text": t, "timestamp": "2019", "url": "u"}) for t in part))
    args = ["fit", "--model.num_self_attention_layers=1", "--model.max_latents=8", "--model.num_channels=16"]
    args += ["--model.num_heads=2", "--model.max_heads_parallel=2", "--model.cross_attention_dropout=0.0"]
    args += ["--model.post_attention_dropout=0.0", "--model.init_scale=0.02"]
    args += ["--model.optimizer=AdamW", "--model.optimizer.lr=3e-4", "--model.optimizer.weight_decay=0.1"]
    args += ["--model.scheduler", "CosineWithWarmupLR", "--model.scheduler.warmup_steps=2"]
    args += ["--model.scheduler.min_fraction=0.1", "--model.max_grad_norm=0.001"]
    args += ["--data=C4DataModule", f"--data.source={tmp_path / 'c4'}", "--data.tokenizer=perceiver-bytes"]
    args += ["--data.padding_side=left", "--data.max_seq_len=32", "--data.min_seq_len=16", "--data.batch_size=4"]
    args += ["--data.concat_batch_size=8", "--data.num_train_workers=0", "--data.num_valid_workers=0"]
    args += ["--trainer.callbacks+=tests.test_compat_0_11_cli.GradNormRecorder", "--trainer.logger=false"]
    args += ["--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.max_steps=3"]
    args += ["--trainer.limit_val_batches=1"]
    monkeypatch.chdir(tmp_path)
    with pytest.warns(DeprecationWarning) as warned:
        cli = clm_fsdp.main(args)
    messages = " ".join(str(w.message) for w in warned)
    for old, new in [("--model.optimizer.lr", "--optimizer.lr"), ("--model.scheduler", "--lr_scheduler"),
                     ("--model.scheduler.warmup_steps", "--lr_scheduler.warmup_steps"),
                     ("--model.max_grad_norm", "--trainer.callbacks+="), ("min_seq_len", "random_train_truncation"),
                     ("concat_batch_size", "preproc_batch_size")]:  # fmt: skip
        assert f"{old} is deprecated, use {new}" in messages
    assert cli.trainer.global_step == 3
    optimizer = cli.trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["weight_decay"] == 0.1
    scheduler = cli.trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(scheduler, CosineWithWarmupLR) and scheduler.min_fraction == 0.1
    # the gradients' norm is clipped to max_grad_norm before each step (unclipped it is far larger)
    clip, recorder = [c for c in cli.trainer.callbacks if type(c).__name__ in ("ClipGradNorm", "GradNormRecorder")]
    assert clip.max_norm == 0.001
    assert len(recorder.norms) == 3 and all(n <= 0.001 * 1.001 for n in recorder.norms)
    data = cli.datamodule
    assert isinstance(data, C4DataModule)
    assert (data.hparams.random_train_truncation, data.hparams.random_min_seq_len) == (True, 16)
    assert data.hparams.preproc_batch_size == 8


@pytest.mark.slow
def test_wikibook_data_module_of_0_11_trains(tmp_path, monkeypatch):
    """`--data=WikiBookDataModule` (0.11's Wikipedia + BookCorpus module) through the CLI, on local copies: each part
    gets its own source and defaults (not the CLI's configuration of the whole)."""
    from perceiver.scripts.text import mlm
    from tests.test_data_text import paragraphs, write_parquet

    texts = paragraphs()
    write_parquet(tmp_path / "wiki" / "20231101.en" / "train-00000-of-00001.parquet", texts[:60], title="t")
    write_parquet(tmp_path / "books" / "plain_text" / "train" / "0000.parquet", texts[60:120])
    args = ["fit", "--data=WikiBookDataModule", f"--data.wikipedia_source={tmp_path / 'wiki'}"]
    args += [f"--data.bookcorpus_source={tmp_path / 'books'}", f"--data.dataset_dir={tmp_path / 'ds'}"]
    args += ["--data.max_seq_len=32", "--data.tokenizer=perceiver-bytes", "--data.batch_size=4", "--data.num_workers=0"]
    args += ["--model.num_latents=4", "--model.num_latent_channels=8", "--model.encoder.num_input_channels=8"]
    args += ["--model.encoder.num_self_attention_heads=1", "--model.encoder.num_cross_attention_heads=1"]
    args += ["--model.decoder.num_cross_attention_heads=1", "--trainer.logger=false", *_TRAINER]
    cli = _run(mlm.main, args, tmp_path, monkeypatch)
    assert cli.trainer.global_step == 1
    parts = cli.datamodule.parts
    assert [(p.hparams.source, p.hparams.valid_size) for p in parts] == [
        (str(tmp_path / "wiki"), 0.005),
        (str(tmp_path / "books"), 0.001),
    ]
    assert len(cli.datamodule.ds_train) == sum(len(p.load_preprocessed()["train"]) for p in parts)


def _clip_under_fsdp(rank: int, store: str, path: str) -> None:
    """One of 2 processes: ClipGradNorm's FSDP branch clips the norm over all shards (Lightning cannot run FSDP on
    CPU, so the hook is called as the trainer would, with the FSDP root as the strategy's model)."""
    from types import SimpleNamespace

    import torch.distributed as dist
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    from perceiver.scripts.text.clm_fsdp import ClipGradNorm

    torch.set_num_threads(1)
    # a file store: no rank serves it (a TCP store dies with rank 0, aborting a rank still tearing down)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        module = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Linear(32, 4))
        model = FSDP(module, device_id=torch.device("cpu"), use_orig_params=True)
        model(torch.randn(16, 8)).pow(2).sum().mul(100).backward()

        def global_norm() -> float:
            local = sum(p.grad.pow(2).sum() for p in model.parameters() if p.grad is not None)
            total = torch.as_tensor(local, dtype=torch.float64).reshape(1)
            dist.all_reduce(total)
            return total.sqrt().item()

        before = global_norm()
        trainer = SimpleNamespace(strategy=SimpleNamespace(model=model))
        ClipGradNorm(0.001).on_before_optimizer_step(trainer, model, None)
        if rank == 0:
            Path(path).write_text(json.dumps({"before": before, "after": global_norm()}))
        else:
            global_norm()
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_clip_grad_norm_under_fsdp(tmp_path):

    import torch.multiprocessing as mp

    try:
        mp.spawn(_clip_under_fsdp, args=(str(tmp_path / "store"), str(tmp_path / "norms.json")), nprocs=2)
    except mp.ProcessExitedException as e:
        # under load, gloo may abort a process while it is torn down ("terminate called without an active
        # exception"), after every collective is done and the norms are written: only that is tolerated
        if e.signal_name != "SIGABRT" or not (tmp_path / "norms.json").is_file():
            raise
    norms = json.loads((tmp_path / "norms.json").read_text())
    assert norms["before"] > 1.0 and norms["after"] <= 0.001 * 1.001
