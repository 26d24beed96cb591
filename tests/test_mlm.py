"""Masked language model: conversion from transformers, the public API snippet, pipeline, training, bad input."""

import textwrap

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader
from transformers import (
    AutoModelForMaskedLM,
    DataCollatorForLanguageModeling,
    PerceiverConfig,
    PerceiverForMaskedLM,
    PerceiverTokenizer,
    Trainer,
    TrainingArguments,
    pipeline,
)

from perceiver.model.text import mlm
from tests.conftest import pydoc_text

SOURCE_CONFIGS = {
    "base": dict(num_latents=8, d_latents=48, d_model=32, num_blocks=2, num_self_attends_per_block=2,
                 num_self_attention_heads=4, num_cross_attention_heads=4, qk_channels=32, v_channels=48),
    "one-head": dict(num_latents=4, d_latents=16, d_model=24, num_blocks=1, num_self_attends_per_block=1,
                     num_self_attention_heads=1, num_cross_attention_heads=1, qk_channels=None, v_channels=None),
    "wide": dict(num_latents=6, d_latents=64, d_model=16, num_blocks=3, num_self_attends_per_block=1,
                 num_self_attention_heads=8, num_cross_attention_heads=2, qk_channels=16, v_channels=64,
                 self_attention_widening_factor=2, cross_attention_widening_factor=3),
    "deep": dict(num_latents=5, d_latents=32, d_model=32, num_blocks=1, num_self_attends_per_block=4,
                 num_self_attention_heads=2, num_cross_attention_heads=8, qk_channels=64, v_channels=32,
                 self_attention_widening_factor=4),
}  # fmt: skip


def make_source(tmp_path, name="base", max_len=40):
    config = PerceiverConfig(
        vocab_size=262, max_position_embeddings=max_len, architectures=["PerceiverForMaskedLM"], **SOURCE_CONFIGS[name]
    )
    source = PerceiverForMaskedLM(config).eval()
    # random weights with some spread, so that differences would show
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    source_dir = tmp_path / f"source-{name}"
    source.save_pretrained(source_dir)
    return source, source_dir


@pytest.mark.parametrize("name", list(SOURCE_CONFIGS))
def test_convert_model_equals_source(tmp_path, name):
    source, source_dir = make_source(tmp_path, name)
    mlm.convert_model(tmp_path / "converted", source_repo_id=str(source_dir))
    converted = AutoModelForMaskedLM.from_pretrained(tmp_path / "converted").eval()
    assert type(converted) is mlm.PerceiverMaskedLanguageModel
    input_ids = torch.randint(0, 262, (3, 33))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 20:] = 0
    attention_mask[2, 5:] = 0
    with torch.no_grad():
        for mask in (None, attention_mask):
            expected = source(input_ids=input_ids, attention_mask=mask).logits[:, :33]
            actual = converted(input_ids=input_ids, attention_mask=mask).logits
            assert (expected - actual).abs().max() <= 1e-4
    assert (tmp_path / "converted" / "tokenizer_config.json").is_file()


def test_convert_model_rejects_other_architectures(tmp_path):
    from transformers import PerceiverForSequenceClassification

    config = PerceiverConfig(num_latents=4, d_latents=16, d_model=16, num_self_attends_per_block=1)
    PerceiverForSequenceClassification(config).save_pretrained(tmp_path / "clf")
    with pytest.raises(ValueError, match=r"source_repo_id=.*PerceiverForSequenceClassification.*PerceiverForMaskedLM"):
        mlm.convert_model(tmp_path / "out", source_repo_id=str(tmp_path / "clf"))
    assert not (tmp_path / "out").exists()


def test_failed_conversion_leaves_no_save_dir(tmp_path, monkeypatch):
    _, source_dir = make_source(tmp_path)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(PerceiverTokenizer, "save_pretrained", fail)
    with pytest.raises(OSError, match="disk full"):
        mlm.convert_model(tmp_path / "out", source_repo_id=str(source_dir))
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == [source_dir.name]


def test_fill_mask_pipeline(tmp_path):
    _, source_dir = make_source(tmp_path)
    mlm.convert_model(tmp_path / "converted", source_repo_id=str(source_dir))
    fill_mask = pipeline("fill-mask", model=str(tmp_path / "converted"))
    predictions = fill_mask("Perceiver [MASK]O", top_k=4)
    assert len(predictions) == 4
    assert all(p["sequence"].startswith("Perceiver ") for p in predictions)
    scores = [p["score"] for p in predictions]
    assert scores == sorted(scores, reverse=True)


def tiny_backend_config(max_seq_len=64) -> mlm.MaskedLanguageModelConfig:
    return mlm.MaskedLanguageModelConfig(
        encoder=mlm.TextEncoderConfig(
            vocab_size=262,
            max_seq_len=max_seq_len,
            num_input_channels=32,
            num_cross_attention_heads=2,
            num_self_attention_heads=2,
            num_self_attention_layers_per_block=2,
        ),
        decoder=mlm.TextDecoderConfig(vocab_size=262, max_seq_len=max_seq_len, num_cross_attention_heads=2),
        num_latents=16,
        num_latent_channels=64,
    )


def mlm_batches(batch_size=8, seq_len=64, num_batches=6):
    tokenizer = PerceiverTokenizer()
    text = pydoc_text(batch_size * seq_len * num_batches)
    chunks = [text[i : i + seq_len - 2] for i in range(0, len(text) - seq_len, seq_len)]
    encodings = [tokenizer(chunk, truncation=True, max_length=seq_len) for chunk in chunks[: batch_size * num_batches]]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    return tokenizer, encodings, collator


def save_tokenizer(path) -> str:
    PerceiverTokenizer().save_pretrained(path)
    return str(path)


def train_lightning(tmp_path, max_steps=30, **kwargs):
    _, encodings, collator = mlm_batches()
    loader = DataLoader(encodings, batch_size=8, collate_fn=collator, shuffle=True)
    lit_model = mlm.LitMaskedLanguageModel.create(tiny_backend_config(), lr=3e-3, **kwargs)
    trainer = pl.Trainer(
        max_steps=max_steps,
        default_root_dir=tmp_path,
        logger=pl.loggers.CSVLogger(tmp_path, name="mlm"),
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=2,
        log_every_n_steps=5,
        val_check_interval=max_steps,
        check_val_every_n_epoch=None,
    )
    losses = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(outputs["loss"].item())

    trainer.callbacks.append(Record())
    trainer.fit(lit_model, loader, loader)
    return lit_model, trainer, losses


def test_lightning_training_and_convert_checkpoint(tmp_path, caplog):
    tokenizer_dir = save_tokenizer(tmp_path / "tokenizer")
    with caplog.at_level("INFO", logger="perceiver.model.text.mlm.lightning"):
        lit_model, trainer, losses = train_lightning(
            tmp_path, masked_samples=["The Perceiver reads [MASK]ytes."], tokenizer=tokenizer_dir
        )
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.5, (first, last)
    assert "The Perceiver reads [MASK]ytes. -> [[" in caplog.text
    metrics = (tmp_path / "mlm" / "version_0" / "metrics.csv").read_text()
    assert "train_loss" in metrics and "val_loss" in metrics

    ckpt = tmp_path / "last.ckpt"
    trainer.save_checkpoint(ckpt)
    mlm.convert_checkpoint(tmp_path / "from_ckpt", ckpt_url=str(ckpt), tokenizer_name=tokenizer_dir)
    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "from_ckpt").eval()
    input_ids = torch.randint(6, 262, (2, 20))
    lit_model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=input_ids).logits, lit_model(input_ids), atol=1e-5, rtol=0)


def test_hf_trainer_trains_model(tmp_path):
    _, encodings, collator = mlm_batches()
    model = mlm.PerceiverMaskedLanguageModel(mlm.PerceiverMaskedLanguageModelConfig(tiny_backend_config()))
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        max_steps=30,
        learning_rate=3e-3,
        logging_steps=5,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=encodings, data_collator=collator)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses[-1] < losses[0] - 0.5, losses


def test_api_snippet_runs_verbatim(tmp_path):
    """The snippet of the foundation issue, with local paths for the hub ids."""
    _, source_dir = make_source(tmp_path)
    repo_id = str(tmp_path / "repo")
    mlm.convert_model(repo_id, source_repo_id=str(source_dir))
    _, trainer, _ = train_lightning(tmp_path / "train", max_steps=2)
    ckpt = tmp_path / "train" / "epoch=012-val_loss=1.165.ckpt"
    trainer.save_checkpoint(ckpt)

    snippet = textwrap.dedent(
        """
        from transformers import AutoModelForMaskedLM
        from perceiver.model.text import mlm  # auto-class registration
        model = AutoModelForMaskedLM.from_pretrained(repo_id)
        assert type(model) == mlm.PerceiverMaskedLanguageModel
        backend_model = model.backend_model
        assert type(backend_model) == mlm.MaskedLanguageModel
        backend_config = backend_model.config
        assert backend_config == model.config.backend_config
        lit_model = mlm.LitMaskedLanguageModel.create(backend_config, params=repo_id)
        backend_model = lit_model.backend_model
        backend_model_rand_init = mlm.MaskedLanguageModel(backend_config)
        model_rand_init = mlm.PerceiverMaskedLanguageModel(mlm.PerceiverMaskedLanguageModelConfig(backend_config))
        lit_model_rand_init = mlm.LitMaskedLanguageModel.create(backend_config)

        from perceiver.model.text.mlm import convert_model, convert_checkpoint
        convert_model(save_dir=save_dir_1, source_repo_id=source_repo_id)
        convert_checkpoint(save_dir=save_dir_2, ckpt_url=ckpt_url, tokenizer_name=tokenizer_name)
        """
    )
    scope = dict(
        repo_id=repo_id,
        save_dir_1=str(tmp_path / "out1"),
        save_dir_2=str(tmp_path / "out2"),
        source_repo_id=str(source_dir),
        ckpt_url=str(ckpt),
        tokenizer_name=repo_id,
    )
    exec(snippet, scope)
    hf_model, lit_model = scope["model"], scope["lit_model"]
    for name, tensor in hf_model.backend_model.state_dict().items():
        torch.testing.assert_close(lit_model.backend_model.state_dict()[name], tensor)
    assert (tmp_path / "out1" / "model.safetensors").is_file()
    assert (tmp_path / "out2" / "model.safetensors").is_file()


@pytest.fixture(scope="module")
def tiny_model():
    return mlm.MaskedLanguageModel(tiny_backend_config(max_seq_len=16)).eval()


@pytest.mark.parametrize(
    "input_ids,pad_mask,message",
    [
        (torch.tensor([[1, 2, 262]]), None, r"input_ids holds token id 262, outside the vocabulary range \[0, 261\]"),
        (torch.tensor([[-1, 2]]), None, r"input_ids holds token id -1, outside the vocabulary range \[0, 261\]"),
        (torch.ones(1, 17, dtype=torch.long), None, r"input_ids has sequence length 17, allowed range is \[1, 16\]"),
        (torch.ones(2, 5, dtype=torch.long), torch.zeros(2, 4, dtype=torch.bool), r"pad_mask has shape \(2, 4\)"),
        (torch.ones(5, dtype=torch.long), None, r"input_ids must have shape \(batch, seq_len\)"),
    ],
)
def test_bad_input_raises_clear_errors(tiny_model, input_ids, pad_mask, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(input_ids, pad_mask=pad_mask)


def test_bad_attention_mask_through_hf_model():
    model = mlm.PerceiverMaskedLanguageModel(mlm.PerceiverMaskedLanguageModelConfig(tiny_backend_config(16)))
    with pytest.raises(ValueError, match=r"pad_mask has shape \(1, 3\), expected the input's shape \(1, 5\)"):
        model(input_ids=torch.ones(1, 5, dtype=torch.long), attention_mask=torch.ones(1, 3, dtype=torch.long))


def test_bad_config_raises():
    config = tiny_backend_config()
    config.encoder.num_self_attention_heads = 3
    with pytest.raises(ValueError, match="num_qk_channels=64 must be divisible by num_heads=3"):
        mlm.MaskedLanguageModel(config)


@pytest.mark.parametrize("offloading", [False, True])
def test_activation_checkpointing_and_offloading_keep_gradients(offloading):
    plain_config = tiny_backend_config(max_seq_len=16)
    ckpt_config = tiny_backend_config(max_seq_len=16)
    ckpt_config.activation_checkpointing = True
    ckpt_config.activation_offloading = offloading
    plain, ckpt = mlm.MaskedLanguageModel(plain_config), mlm.MaskedLanguageModel(ckpt_config)
    ckpt.load_state_dict(plain.state_dict())
    input_ids = torch.randint(0, 262, (2, 16))
    calls = {}
    for label, model in (("plain", plain), ("ckpt", ckpt)):
        layer = model.encoder.self_attn_1[0]
        forward = layer.forward  # counted directly: checkpoint recomputation does not fire module hooks

        def counted(*args, label=label, forward=forward, **kwargs):
            calls[label] = calls.get(label, 0) + 1
            return forward(*args, **kwargs)

        layer.forward = counted
        model(input_ids).logsumexp(-1).sum().backward()
    assert calls == {"plain": 1, "ckpt": 2}  # checkpointed layers run again in the backward pass
    for (name, p1), p2 in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(p1.grad, p2.grad, msg=name)
