"""Lightning checkpoints written by perceiver-io 0.11 load through every entry point, safely; malicious, foreign and
non-Lightning files are refused at each entry point without running anything."""

import functools
import http.server
import json
import os
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageClassification,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
)

from perceiver.model.audio.symbolic import LitSymbolicAudioModel
from perceiver.model.core.checkpoint import read_checkpoint
from perceiver.model.core.config import ClassificationDecoderConfig
from perceiver.model.text import classifier, clm, mlm
from perceiver.model.text.common import TextEncoderConfig
from perceiver.model.text.mlm import TextDecoderConfig
from perceiver.model.vision import image_classifier
from perceiver.model.vision.image_classifier import ImageEncoderConfig

# ---- a 0.11 checkpoint, laid out as 0.11's Lightning wrappers and pytorch-lightning 2.0 wrote it ----

# 0.11's wrappers took the backend config's fields as init arguments; PerceiverIO wrappers the encoder and decoder
# configs as dataclasses (pickled by class, with 0.11's module paths), Perceiver AR wrappers plain fields
_PERCEIVER_IO = {
    "mlm": (TextEncoderConfig, TextDecoderConfig, {"num_predictions": 3, "masked_samples": None}),
    "txt_clf": (TextEncoderConfig, ClassificationDecoderConfig, {}),
    "img_clf": (ImageEncoderConfig, ClassificationDecoderConfig, {}),
}
_LEGACY_PATHS = {
    TextEncoderConfig: "perceiver.model.text.common.backend",
    TextDecoderConfig: "perceiver.model.text.mlm.backend",
    ClassificationDecoderConfig: "perceiver.model.core.config",
    ImageEncoderConfig: "perceiver.model.vision.image_classifier.backend",
}


def _legacy_config(cls, fields: dict):
    """A config object pickled as 0.11 pickled it: its class (0.11's module path) and exactly 0.11's fields."""
    assert cls.__module__ == _LEGACY_PATHS[cls]  # pickle names the class by this path, as 0.11 did
    config = object.__new__(cls)
    config.__dict__.update(fields)
    return config


def write_legacy_checkpoint(fixtures_dir: Path, name: str, path: Path, datamodule_hparams: dict = None) -> Path:
    """Writes the 0.11 model fixture `name` (its config.json and weights) as a 0.11 Lightning checkpoint."""
    model_config = json.loads((fixtures_dir / name / "config.json").read_text())["model_config"]
    weights = load_file(fixtures_dir / name / "model.safetensors")
    if name in _PERCEIVER_IO:
        encoder_cls, decoder_cls, extra = _PERCEIVER_IO[name]
        encoder = dict(model_config["encoder"])
        if "image_shape" in encoder:
            encoder["image_shape"] = tuple(encoder["image_shape"])
        hparams = {
            "encoder": _legacy_config(encoder_cls, encoder),
            "decoder": _legacy_config(decoder_cls, model_config["decoder"]),
            "num_latents": model_config["num_latents"],
            "num_latent_channels": model_config["num_latent_channels"],
            "activation_checkpointing": False,
            "activation_offloading": False,
            "params": None,
            **extra,
        }
    else:
        hparams = {**model_config, "validation_sample_prompt": None, "validation_sample_record": None, "params": None}
        if name == "sam":
            del hparams["num_self_attention_rotary_layers"]  # 0.11's LitSymbolicAudioModel had no such argument
    checkpoint = {
        "epoch": 2,
        "global_step": 300,
        "pytorch-lightning_version": "2.0.4",
        "state_dict": {"model." + k[len("backend_model.") :]: v for k, v in weights.items()},
        "loops": _loops_state(),
        "callbacks": {"ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {"best_model_score": torch.tensor(1.5)}},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]}],
        "lr_schedulers": [{"last_epoch": 300, "_step_count": 301, "base_lrs": [1e-3]}],
        "hparams_name": "kwargs",
        "hyper_parameters": hparams,
    }
    if datamodule_hparams is not None:
        checkpoint["datamodule_hparams_name"] = "kwargs"
        checkpoint["datamodule_hyper_parameters"] = datamodule_hparams
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


def _loops_state() -> dict:
    """The `loops` entry of a Lightning 2.x checkpoint (fit, validate, test and predict progress), as written before
    training started."""
    import lightning.pytorch as pl

    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    return trainer._checkpoint_connector._get_loops_state_dict()


_WRAPPERS = {
    "mlm": mlm.LitMaskedLanguageModel,
    "txt_clf": classifier.LitTextClassifier,
    "img_clf": image_classifier.LitImageClassifier,
    "clm": clm.LitCausalLanguageModel,
    "sam": LitSymbolicAudioModel,
}


@pytest.mark.parametrize("name", list(_WRAPPERS))
@pytest.mark.parametrize("entry", ["load_from_checkpoint", "load_checkpoint", "create_params"])
def test_legacy_checkpoint_loads_with_its_weights(fixtures_dir, tmp_path, name, entry):
    path = write_legacy_checkpoint(fixtures_dir, name, tmp_path / f"{name}.ckpt")
    wrapper_class = _WRAPPERS[name]
    if entry == "create_params":
        config = wrapper_class.load_checkpoint(path).backend_config
        lit = wrapper_class.create(config, params=str(path))
    else:
        lit = getattr(wrapper_class, entry)(path)
    expected = load_file(fixtures_dir / name / "model.safetensors")
    state_dict = lit.backend_model.state_dict()
    for key, value in expected.items():
        assert torch.equal(state_dict[key[len("backend_model.") :]], value), key
    assert getattr(getattr(lit.backend_config, "encoder", None), "params", None) is None


def _outputs(model, name, expected, fixtures_dir):
    with torch.no_grad():
        if name in ("mlm", "txt_clf"):
            return model(input_ids=expected["input_ids"], attention_mask=expected["attention_mask"]).logits
        if name == "img_clf":
            return model(pixel_values=expected["pixel_values"]).logits
        prefix_len = json.loads((fixtures_dir / name / "expected.json").read_text())["prefix_len"]
        return model(expected["input_ids"], attention_mask=expected["attention_mask"], prefix_len=prefix_len).logits


@pytest.mark.parametrize(
    "name,convert,auto_class",
    [
        ("mlm", lambda d, p: mlm.convert_checkpoint(d, p), AutoModelForMaskedLM),
        ("txt_clf", lambda d, p: classifier.convert_checkpoint(d, p), AutoModelForSequenceClassification),
        ("clm", lambda d, p: clm.convert_checkpoint(d, p), AutoModelForCausalLM),
        (
            "img_clf",
            lambda d, p: image_classifier.convert_checkpoint(
                d, p, image_classifier.PerceiverImageClassifierInputProcessor(single_channel=True)
            ),
            AutoModelForImageClassification,
        ),
    ],
)
def test_legacy_checkpoint_converts_with_equal_outputs(fixtures_dir, tmp_path, name, convert, auto_class):
    """A converted 0.11 checkpoint reproduces the outputs that 0.11 recorded for the same weights."""
    path = write_legacy_checkpoint(fixtures_dir, name, tmp_path / f"{name}.ckpt")
    convert(tmp_path / "converted", path)
    model = auto_class.from_pretrained(tmp_path / "converted").eval()
    assert getattr(getattr(model.config.backend_config, "encoder", None), "params", None) is None
    expected = load_file(fixtures_dir / name / "expected.safetensors")
    outputs = _outputs(model, name, expected, fixtures_dir)
    assert (outputs - expected["logits"]).abs().max() <= 1e-4


def test_legacy_checkpoint_with_task_enum_and_encoder_params(fixtures_dir, tmp_path):
    """0.11 data modules pickled their `Task` enum; 0.11 classifiers kept `encoder.params` (a path that may be gone)."""
    from perceiver.data.text import Task

    path = write_legacy_checkpoint(
        fixtures_dir, "txt_clf", tmp_path / "clf.ckpt", {"tokenizer": "bert-base-uncased", "task": Task.clf}
    )
    checkpoint = read_checkpoint(path)
    assert checkpoint["datamodule_hyper_parameters"]["task"] == "clf"
    assert isinstance(checkpoint["hyper_parameters"]["encoder"], dict)
    assert "model.0.latent_provider._query" not in checkpoint["state_dict"]
    assert any(k.startswith("backend_model.") for k in checkpoint["state_dict"])


def test_text_classifier_encoder_params_from_legacy_mlm_checkpoint(fixtures_dir, tmp_path):
    """`encoder.params` takes a masked language model's Lightning checkpoint (0.11's, too)."""
    path = write_legacy_checkpoint(fixtures_dir, "mlm", tmp_path / "mlm.ckpt")
    source = mlm.LitMaskedLanguageModel.load_checkpoint(path).backend_config.encoder
    config = classifier.TextClassifierConfig(
        encoder=TextEncoderConfig(**{**source.__dict__, "params": str(path)}),
        decoder=ClassificationDecoderConfig(num_classes=2, num_output_query_channels=16),
        num_latents=12,
        num_latent_channels=48,
    )
    model = classifier.TextClassifier(config)
    weights = load_file(fixtures_dir / "mlm" / "model.safetensors")
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, weights["backend_model.0." + key]), key


# ---- what is refused ----


class _Payload:
    """Unpickling this creates a marker directory (through `__reduce__`): it must never happen."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _malicious_checkpoint(fixtures_dir: Path, path: Path, marker: Path) -> Path:
    write_legacy_checkpoint(fixtures_dir, "clm", path)
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["hyper_parameters"]["validation_sample_prompt"] = _Payload(marker)
    torch.save(checkpoint, path)
    return path


@pytest.fixture
def http_dir(tmp_path):
    """Serves `tmp_path / "www"` on 127.0.0.1; yields (directory, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _fit_from(ckpt_path: str):
    """Lightning's own trainer resuming from `ckpt_path` (read by the strategy's checkpoint IO)."""
    import lightning.pytorch as pl

    config = clm.CausalLanguageModelConfig(
        vocab_size=262,
        max_seq_len=48,
        max_latents=16,
        num_channels=32,
        num_heads=4,
        num_self_attention_layers=2,
        self_attention_widening_factor=2,
        cross_attention_widening_factor=2,
    )
    loader = torch.utils.data.DataLoader([{"input_ids": torch.arange(32) % 262}] * 4, batch_size=2)

    class StartWeights(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            self.state_dict = {k: v.clone() for k, v in pl_module.backend_model.state_dict().items()}

    start = StartWeights()
    trainer = pl.Trainer(
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        accelerator="cpu",
        enable_progress_bar=False,
        callbacks=[start],
    )
    trainer.fit(clm.LitCausalLanguageModel.create(config), loader, ckpt_path=ckpt_path)
    return start.state_dict


def _entry_points(tmp_path):
    from perceiver.data.text import TextFilesDataModule

    return {
        "trainer_fit": _fit_from,
        "datamodule": lambda url: TextFilesDataModule.load_from_checkpoint(url),
        "convert_checkpoint": lambda url: clm.convert_checkpoint(tmp_path / "converted", url),
        "load_checkpoint": lambda url: clm.LitCausalLanguageModel.load_checkpoint(url),
        "load_from_checkpoint": lambda url: clm.LitCausalLanguageModel.load_from_checkpoint(url, weights_only=False),
        "params": lambda url: clm.LitCausalLanguageModel.create(clm.CausalLanguageModelConfig(), params=url),
    }


@pytest.mark.parametrize(
    "entry", ["convert_checkpoint", "load_checkpoint", "load_from_checkpoint", "params", "trainer_fit", "datamodule"]
)
@pytest.mark.parametrize("remote", [True, False])
def test_malicious_checkpoint_is_refused_and_never_runs(fixtures_dir, tmp_path, http_dir, entry, remote):
    root, base_url = http_dir
    marker = tmp_path / "pwned"
    _malicious_checkpoint(fixtures_dir, root / "evil.ckpt", marker)
    source = f"{base_url}/evil.ckpt" if remote else str(root / "evil.ckpt")
    with pytest.raises(ValueError, match="refused to load checkpoint .*evil.ckpt.*mkdir") as info:
        _entry_points(tmp_path)[entry](source)
    assert "weights_only=False" not in str(info.value)
    assert not marker.exists()
    assert not (tmp_path / "converted").exists()


def test_malicious_checkpoint_is_refused_by_the_cli(fixtures_dir, tmp_path, http_dir, monkeypatch):
    from perceiver.scripts.text import clm as clm_script

    root, base_url = http_dir
    marker = tmp_path / "pwned"
    _malicious_checkpoint(fixtures_dir, root / "evil.ckpt", marker)
    text = tmp_path / "train.txt"
    text.write_text("\n".join(f"line {i} of some text to train on" for i in range(200)))
    monkeypatch.chdir(tmp_path)
    for ckpt_path in (f"{base_url}/evil.ckpt", str(root / "evil.ckpt")):
        with pytest.raises(SystemExit) as info:
            clm_script.main(
                [
                    "fit",
                    "--data=TextFilesDataModule",
                    f"--data.source={text}",
                    "--data.max_seq_len=32",
                    "--data.batch_size=2",
                    "--data.num_workers=0",
                    "--model.max_latents=8",
                    "--model.num_channels=16",
                    "--model.num_heads=2",
                    "--model.num_self_attention_layers=1",
                    "--trainer.max_steps=1",
                    "--trainer.accelerator=cpu",
                    "--trainer.logger=false",
                    "--trainer.enable_checkpointing=false",
                    f"--ckpt_path={ckpt_path}",
                ]
            )
        assert info.value.code != 0
        assert not marker.exists()


@pytest.mark.parametrize(
    "entry", ["convert_checkpoint", "load_checkpoint", "load_from_checkpoint", "params", "trainer_fit"]
)
def test_checkpoint_of_another_task_is_refused_naming_both(fixtures_dir, tmp_path, entry):
    path = write_legacy_checkpoint(fixtures_dir, "sam", tmp_path / "sam.ckpt", {"dataset_dir": "x", "max_seq_len": 48})
    with pytest.raises(ValueError, match="symbolic audio model.*causal language model"):
        _entry_points(tmp_path)[entry](str(path))
    assert not (tmp_path / "converted").exists()


def test_checkpoint_of_another_task_written_by_this_library_is_refused(tmp_path):
    """Checkpoints of this library record their task; an image classifier's is no text classifier's."""
    import lightning.pytorch as pl

    lit = image_classifier.LitImageClassifier.create(
        image_classifier.ImageClassifierConfig(
            encoder=ImageEncoderConfig(
                image_shape=(4, 4, 1),
                num_frequency_bands=2,
                num_cross_attention_heads=1,
                num_self_attention_heads=1,
                num_self_attention_layers_per_block=1,
            ),
            decoder=ClassificationDecoderConfig(
                num_classes=3, num_output_query_channels=8, num_cross_attention_heads=1
            ),
            num_latents=2,
            num_latent_channels=8,
        )
    )
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, accelerator="cpu", enable_progress_bar=False)
    trainer.strategy.connect(lit)
    trainer.save_checkpoint(tmp_path / "img.ckpt")
    loaded = image_classifier.LitImageClassifier.load_checkpoint(tmp_path / "img.ckpt")
    assert loaded.backend_config.decoder.num_classes == 3
    with pytest.raises(ValueError, match="image classifier.*LitTextClassifier loads checkpoints of a text classifier"):
        classifier.LitTextClassifier.load_checkpoint(tmp_path / "img.ckpt")


def test_data_module_loads_from_a_legacy_checkpoint(fixtures_dir, tmp_path):
    from perceiver.data.text import Task, TextFilesDataModule

    text = tmp_path / "train.txt"
    text.write_text("some text\n" * 20)
    hparams = {"source": str(text), "tokenizer": None, "task": Task.clm, "max_seq_len": 16, "batch_size": 3}
    path = write_legacy_checkpoint(fixtures_dir, "clm", tmp_path / "clm.ckpt", hparams)
    data_module = TextFilesDataModule.load_from_checkpoint(path, num_workers=0)
    assert data_module.hparams.task == "clm" and data_module.hparams.batch_size == 3


@pytest.mark.parametrize("content", [b"not a checkpoint at all", b""])
def test_non_lightning_file_is_a_clear_value_error(tmp_path, content):
    path = tmp_path / "notes.ckpt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="notes.ckpt is not a Lightning checkpoint"):
        mlm.LitMaskedLanguageModel.load_checkpoint(path)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="plain.pt is not a Lightning checkpoint"):
        mlm.convert_checkpoint(tmp_path / "out", tmp_path / "plain.pt")
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        read_checkpoint(tmp_path / "missing.ckpt")
    assert not os.path.exists(tmp_path / "out")


def test_trainer_resumes_from_a_legacy_checkpoint_url(fixtures_dir, tmp_path, http_dir):
    """Lightning's trainer reads a (0.11) checkpoint from an http(s) URL through the safe checkpoint IO."""
    root, base_url = http_dir
    path = write_legacy_checkpoint(fixtures_dir, "clm", root / "clm.ckpt")
    checkpoint = torch.load(path, weights_only=False)  # written by this test
    model = clm.LitCausalLanguageModel.load_checkpoint(path)
    checkpoint["optimizer_states"] = [torch.optim.AdamW(model.parameters(), lr=1e-3).state_dict()]
    torch.save(checkpoint, path)
    state_dict = _fit_from(f"{base_url}/clm.ckpt")  # the weights training started from
    for key, value in load_file(fixtures_dir / "clm" / "model.safetensors").items():
        assert torch.equal(state_dict[key[len("backend_model.") :]], value), key


def test_every_config_dataclass_may_be_read_from_checkpoints():
    """The safe reader's allow-list names each config dataclass of this library at its module path (where a
    checkpoint's pickle names it)."""
    import dataclasses
    import importlib
    import inspect
    import pkgutil

    import perceiver.model
    from perceiver.common.checkpoint import allowed_globals

    allowed = {name for _, name in allowed_globals()}
    found = set()
    for info in pkgutil.walk_packages(perceiver.model.__path__, "perceiver.model."):
        if info.name.rsplit(".", 1)[-1] in ("huggingface", "lightning", "pipeline") or ".scripts" in info.name:
            continue  # 🤗 configs (PretrainedConfig) and Lightning wrappers are never pickled into checkpoints
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and name.endswith("Config"):
                if obj.__module__ == info.name:
                    found.add(f"{obj.__module__}.{name}")
    assert found and not found - allowed, sorted(found - allowed)
