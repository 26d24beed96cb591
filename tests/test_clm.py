"""Perceiver AR causal language model: 0.11 fixture, generation phases, padding, bad input, 🤗 integration."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, PerceiverTokenizer, pipeline

from perceiver.model.core import KVCache
from perceiver.model.text import clm
from perceiver.model.text.clm import (
    CausalLanguageModel,
    CausalLanguageModelConfig,
    PerceiverARCache,
    PerceiverCausalLanguageModel,
    PerceiverCausalLanguageModelConfig,
)

ATOL = 1e-4


def tiny_config(**kwargs) -> CausalLanguageModelConfig:
    values = dict(
        vocab_size=262,
        max_seq_len=24,
        max_latents=8,
        num_channels=32,
        num_heads=4,
        num_self_attention_layers=2,
        self_attention_widening_factor=2,
        cross_attention_widening_factor=2,
        cross_attention_dropout=0.0,
    )
    values.update(kwargs)
    return CausalLanguageModelConfig(**values)


def tiny_model(**kwargs) -> PerceiverCausalLanguageModel:
    torch.manual_seed(1)
    return PerceiverCausalLanguageModel(PerceiverCausalLanguageModelConfig(tiny_config(**kwargs))).eval()


def greedy(model, input_ids, **kwargs):
    return model.generate(
        input_ids=input_ids, do_sample=False, output_scores=True, return_dict_in_generate=True, **kwargs
    )


# ---------------------------------------------------------------------------------------------------------------
# 0.11 fixture
# ---------------------------------------------------------------------------------------------------------------


def test_fixture_config_and_state_dict_layout(fixtures_dir, tmp_path):
    model_config = json.loads((fixtures_dir / "clm" / "config.json").read_text())["model_config"]
    assert set(CausalLanguageModelConfig.__dataclass_fields__) == set(model_config)
    model = AutoModelForCausalLM.from_pretrained(fixtures_dir / "clm")
    model.save_pretrained(tmp_path / "saved")
    saved = load_file(tmp_path / "saved" / "model.safetensors")
    original = load_file(fixtures_dir / "clm" / "model.safetensors")
    assert set(saved) == set(original)
    assert all(saved[k].shape == original[k].shape for k in original)
    saved_config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved_config["model_type"] == "perceiver-ar-causal-language-model"
    assert saved_config["model_config"] == model_config


def test_fixture_logits(fixtures_dir):
    model = AutoModelForCausalLM.from_pretrained(fixtures_dir / "clm").eval()
    assert isinstance(model, PerceiverCausalLanguageModel)
    expected = load_file(fixtures_dir / "clm" / "expected.safetensors")
    prefix_len = json.loads((fixtures_dir / "clm" / "expected.json").read_text())["prefix_len"]
    assert expected["attention_mask"][1, 0] == 0  # row 1 is left-padded
    with torch.no_grad():
        logits = model(expected["input_ids"], attention_mask=expected["attention_mask"], prefix_len=prefix_len).logits
    torch.testing.assert_close(logits, expected["logits"], atol=ATOL, rtol=0)


def test_fixture_greedy_generation_with_cache(fixtures_dir):
    model = AutoModelForCausalLM.from_pretrained(fixtures_dir / "clm").eval()
    expected = load_file(fixtures_dir / "clm" / "expected.safetensors")
    args = json.loads((fixtures_dir / "clm" / "expected.json").read_text())["generate"]
    out = greedy(model, expected["prompt"], num_latents=args["num_latents"], max_new_tokens=args["max_new_tokens"])
    assert torch.equal(out.sequences, expected["generated"])
    # scores of all three phases: latents grow, prefix grows, window slides
    assert expected["prompt"].shape[1] + args["max_new_tokens"] > model.backend_model.max_seq_len
    torch.testing.assert_close(torch.stack(out.scores, dim=1), expected["generated_scores"], atol=ATOL, rtol=0)


def test_fixture_generation_without_cache_is_exact_recomputation(fixtures_dir):
    """Without cache each step is a fresh forward pass; it equals the cached path while latents grow (13 steps)."""
    model = AutoModelForCausalLM.from_pretrained(fixtures_dir / "clm").eval()
    backend = model.backend_model
    expected = load_file(fixtures_dir / "clm" / "expected.safetensors")
    prompt, generated = expected["prompt"], expected["generated"]
    out = greedy(model, prompt, num_latents=4, max_new_tokens=20, use_cache=False)
    scores = torch.stack(out.scores, dim=1)
    num_phase_one = backend.max_latents - 4 + 1
    torch.testing.assert_close(
        scores[:, :num_phase_one], expected["generated_scores"][:, :num_phase_one], atol=ATOL, rtol=0
    )
    for step in range(20):
        seq = out.sequences[:, : prompt.shape[1] + step][:, -backend.max_seq_len :]
        num_latents = min(4 + step, backend.max_latents)
        with torch.no_grad():
            logits = backend(seq, seq.shape[1] - num_latents).logits[:, -1]
        torch.testing.assert_close(scores[:, step], logits, atol=ATOL, rtol=0)
    assert torch.equal(
        out.sequences[:, : prompt.shape[1] + num_phase_one], generated[:, : prompt.shape[1] + num_phase_one]
    )


# ---------------------------------------------------------------------------------------------------------------
# Generation on a tiny random model
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        {},
        dict(abs_pos_emb=False, output_norm=True, output_bias=False),
        dict(num_self_attention_rotary_layers=-1, max_heads_parallel=1),
    ],
    ids=["default", "no-abs-pos-output-norm", "all-rotary-one-head-at-a-time"],
)
def test_cache_equals_no_cache_while_latents_grow(variant):
    model = tiny_model(**variant)
    rotated = 32 // 4 // (2 if model.backend_model.config.abs_pos_emb else 1)
    assert model.backend_model.input_adapter.frq_pos_encoding.inv_freq.shape == (rotated // 2,)
    prompt = torch.randint(3, 262, (2, 10))
    kwargs = dict(num_latents=2, max_new_tokens=7)  # latents grow from 2 to 8 = max_latents
    cached, uncached = greedy(model, prompt, use_cache=True, **kwargs), greedy(model, prompt, use_cache=False, **kwargs)
    assert torch.equal(cached.sequences, uncached.sequences)
    torch.testing.assert_close(torch.stack(cached.scores), torch.stack(uncached.scores), atol=ATOL, rtol=0)


def test_hf_generate_equals_backend_loop_in_all_phases():
    model = tiny_model()
    prompt = torch.randint(3, 262, (1, 12))
    for use_cache in (True, False):
        out = greedy(model, prompt, num_latents=3, max_new_tokens=30, use_cache=use_cache)  # 12 + 30 > 24
        backend_out = model.backend_model.generate(prompt, 30, num_latents=3, use_cache=use_cache)
        assert torch.equal(out.sequences, backend_out)
    cache = PerceiverARCache.empty(model.backend_model, 1)
    model(prompt, prefix_len=9, cache=cache, use_cache=True)
    assert [layer.seq_len for layer in cache.kv_cache] == [12, 3, 3]
    for token in out.sequences[0, 12:]:
        model(token.view(1, 1), cache=cache, use_cache=True)
    # window full, latents full
    assert [layer.seq_len for layer in cache.kv_cache] == [24, 8, 8]
    assert cache.get_seq_length() == 24


def test_sampling_with_and_without_cache_agree_while_latents_grow():
    model = tiny_model()
    prompt = torch.randint(3, 262, (3, 6))
    kwargs = dict(num_latents=1, max_new_tokens=7, do_sample=True, top_k=20, top_p=0.9, temperature=0.8)
    torch.manual_seed(3)
    cached = model.generate(input_ids=prompt, use_cache=True, **kwargs)
    torch.manual_seed(3)
    uncached = model.generate(input_ids=prompt, use_cache=False, **kwargs)
    assert cached.shape == (3, 13)
    assert torch.equal(cached, uncached)


def test_beam_search_with_and_without_cache_agree_while_latents_grow():
    model = tiny_model()
    prompt = torch.randint(3, 262, (2, 8))
    kwargs = dict(num_latents=2, max_new_tokens=6, num_beams=3, num_return_sequences=2, do_sample=False)
    cached = model.generate(input_ids=prompt, use_cache=True, **kwargs)
    uncached = model.generate(input_ids=prompt, use_cache=False, **kwargs)
    assert cached.shape == (4, 14)
    assert torch.equal(cached, uncached)


def test_beam_search_runs_past_max_seq_len():
    model = tiny_model()
    out = model.generate(input_ids=torch.randint(3, 262, (1, 20)), num_latents=4, max_new_tokens=12, num_beams=2)
    assert out.shape == (1, 32)


def test_left_padded_batch_equals_prompts_alone():
    model = tiny_model()
    long_prompt, short_prompt = torch.randint(3, 262, (1, 11)), torch.randint(3, 262, (1, 7))
    batch = torch.cat([long_prompt, torch.cat([torch.zeros(1, 4, dtype=torch.long), short_prompt], dim=1)])
    attention_mask = torch.ones_like(batch)
    attention_mask[1, :4] = 0

    # forward: padding reaches into the latents (position 3), padded latents are masked in the self-attention too
    with torch.no_grad():
        batched = model(batch, attention_mask=attention_mask, prefix_len=3).logits
        long_alone, short_alone = model(long_prompt, prefix_len=3).logits, model(short_prompt, prefix_len=0).logits
    torch.testing.assert_close(batched[:1], long_alone, atol=ATOL, rtol=0)
    torch.testing.assert_close(batched[1:, 1:], short_alone, atol=ATOL, rtol=0)

    # generation (the padded latent turns into prefix first, so the phases agree with the prompt alone)
    kwargs = dict(num_latents=8, max_new_tokens=3, pad_token_id=0)
    out = greedy(model, batch, attention_mask=attention_mask, **kwargs)
    for row, prompt in enumerate((long_prompt, short_prompt)):
        single = greedy(model, prompt, **kwargs)
        assert torch.equal(out.sequences[row, -3:], single.sequences[0, -3:])
        torch.testing.assert_close(torch.stack(out.scores)[:, row], torch.stack(single.scores)[:, 0], atol=ATOL, rtol=0)


def test_text_generation_pipeline():
    model = tiny_model()
    tokenizer = PerceiverTokenizer(padding_side="left")
    generator = pipeline("text-generation", model=model, tokenizer=tokenizer)
    result = generator(["Perceiver AR", "hi"], max_new_tokens=5, num_latents=2, do_sample=False, pad_token_id=0)
    assert [r[0]["generated_text"][: len(p)] for r, p in zip(result, ["Perceiver AR", "hi"])] == ["Perceiver AR", "hi"]


# ---------------------------------------------------------------------------------------------------------------
# Loss, training, prefix dropout
# ---------------------------------------------------------------------------------------------------------------


def test_loss_from_labels_is_shifted_and_ignores_minus_100():
    model = tiny_model()
    input_ids = torch.randint(3, 262, (2, 20))
    labels = input_ids.clone()
    labels[0, -3] = -100
    out = model(input_ids, labels=labels)  # 12 prefix, 8 latents
    logits = out.logits[:, :-1]  # the last latent predicts beyond the input
    targets = labels[:, 13:]
    keep = targets != -100
    expected = torch.nn.functional.cross_entropy(logits[keep], targets[keep])
    torch.testing.assert_close(out.loss, expected)


def test_prefix_dropout_only_in_training():
    config = tiny_config(cross_attention_dropout=0.5)
    torch.manual_seed(0)
    model = CausalLanguageModel(config)
    x = torch.randint(3, 262, (2, 20))
    pad_mask = torch.zeros(2, 20, dtype=torch.bool)
    pad_mask[1, :3] = True
    model.eval()
    eval_logits = model(x, 12, pad_mask=pad_mask).logits
    model.train()
    train_logits = model(x, 12, pad_mask=pad_mask).logits
    assert train_logits.shape == eval_logits.shape == (2, 8, 262)
    assert not torch.allclose(train_logits, eval_logits, atol=ATOL)
    no_dropout = CausalLanguageModel(tiny_config())
    no_dropout.load_state_dict(model.state_dict())
    torch.testing.assert_close(no_dropout.train()(x, 12, pad_mask=pad_mask).logits, eval_logits)


def test_prefix_dropout_keeps_positions_of_kept_tokens(monkeypatch):
    """With the random scores fixed, dropout equals a forward pass in which the dropped prefix tokens are padding."""
    config = tiny_config(cross_attention_dropout=0.5)
    model = CausalLanguageModel(config)
    x = torch.randint(3, 262, (1, 20))
    scores = torch.rand(1, 12)
    monkeypatch.setattr(torch, "rand", lambda *args, **kwargs: scores)
    model.train()
    dropped = model(x, 12).logits
    keep = scores.topk(6, dim=1).indices
    pad_mask = torch.ones(1, 20, dtype=torch.bool)
    pad_mask[:, 12:] = False
    pad_mask[0, keep[0]] = False
    # the same computation in eval mode: dropped tokens masked, positions unshifted (shift from a masked suffix = 0)
    model.eval()
    embed_positions = model.input_adapter.forward

    def unshifted(tokens, abs_pos=None):
        return embed_positions(tokens, abs_pos=torch.arange(20).unsqueeze(0))

    monkeypatch.setattr(model.input_adapter, "forward", unshifted)
    torch.testing.assert_close(dropped, model(x, 12, pad_mask=pad_mask).logits, atol=ATOL, rtol=0)


def test_activation_checkpointing_gives_same_gradients():
    x = torch.randint(3, 262, (2, 20))
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = CausalLanguageModel(tiny_config(activation_checkpointing=checkpointing)).train()
        token_loss = torch.nn.functional.cross_entropy(model(x, 12).logits.flatten(0, 1), x[:, 12:].flatten())
        token_loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1])


def test_lightning_training_loss_falls(tmp_path):
    import lightning.pytorch as pl

    from tests.conftest import pydoc_text

    tokenizer = PerceiverTokenizer()
    ids = torch.tensor(tokenizer(pydoc_text(6000), add_special_tokens=False)["input_ids"])
    data = ids[: (len(ids) // 24) * 24].view(-1, 24)[:64]
    loader = torch.utils.data.DataLoader([{"input_ids": row} for row in data], batch_size=8, shuffle=True)
    lit = clm.LitCausalLanguageModel.create(tiny_config(), lr=3e-3)
    with torch.no_grad():
        before = lit._step(next(iter(loader)))["loss"].item()
    trainer = pl.Trainer(
        max_steps=40,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(lit, loader)
    lit.eval()
    with torch.no_grad():
        after = torch.stack([lit._step({"input_ids": data[i : i + 8]})["loss"] for i in range(0, 64, 8)]).mean()
    assert after.item() < before - 1.0

    # the trained weights survive conversion to 🤗 and loading back into Lightning
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    ckpt_model = clm.huggingface.convert_lightning_checkpoint(
        clm.LitCausalLanguageModel, PerceiverCausalLanguageModel, tmp_path / "hf", tmp_path / "last.ckpt"
    )
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    lit2 = clm.LitCausalLanguageModel.create(tiny_config(), params=str(tmp_path / "hf")).eval()
    x = data[:2]
    with torch.no_grad():
        reference = lit(x, 16)
        torch.testing.assert_close(loaded(x, prefix_len=16).logits, reference)
        torch.testing.assert_close(lit2(x, 16), reference)
        torch.testing.assert_close(ckpt_model.eval()(x, prefix_len=16).logits, reference)


def test_hf_trainer_loss_falls(tmp_path):
    from transformers import Trainer, TrainingArguments

    from tests.conftest import pydoc_text

    tokenizer = PerceiverTokenizer()
    ids = torch.tensor(tokenizer(pydoc_text(4000), add_special_tokens=False)["input_ids"])
    data = ids[: (len(ids) // 24) * 24].view(-1, 24)[:48]
    dataset = [{"input_ids": row, "labels": row} for row in data]
    model = tiny_model().train()
    with torch.no_grad():
        before = model(data, labels=data).loss.item()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=30,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    Trainer(model=model, args=args, train_dataset=dataset).train()
    with torch.no_grad():
        after = model.eval()(data, labels=data).loss.item()
    assert after < before - 1.0


def test_convert_checkpoint_saves_left_padding_tokenizer(tmp_path):
    import lightning.pytorch as pl

    lit = clm.LitCausalLanguageModel.create(tiny_config())
    trainer = pl.Trainer(accelerator="cpu", logger=False, max_steps=0, enable_progress_bar=False)
    trainer.strategy.connect(lit)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    PerceiverTokenizer().save_pretrained(tmp_path / "tokenizer")
    model = clm.convert_checkpoint(tmp_path / "hf", tmp_path / "model.ckpt", tokenizer_name=str(tmp_path / "tokenizer"))
    config = json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())
    assert config["padding_side"] == "left"
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    for name, param in lit.backend_model.state_dict().items():
        torch.testing.assert_close(loaded.backend_model.state_dict()[name], param)
        torch.testing.assert_close(model.backend_model.state_dict()[name], param)


# ---------------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "input_len,kwargs,match",
    [
        (0, dict(num_latents=1), r"input_ids has sequence length 0.*\[1, 24\]"),
        (25, dict(num_latents=8), r"input_ids has sequence length 25.*\[1, 24\]"),
        (10, dict(num_latents=0), r"num_latents=0 out of range \[1, 8\]"),
        (10, dict(num_latents=9), r"num_latents=9 out of range \[1, 8\]"),
        (20, dict(num_latents=2), r"num_latents=2 out of range \[4, 8\]"),
    ],
)
def test_generate_rejects_bad_prompt_and_num_latents(input_len, kwargs, match):
    model = tiny_model()
    with pytest.raises(ValueError, match=match):
        model.generate(input_ids=torch.randint(3, 262, (1, input_len)), max_new_tokens=2, **kwargs)


def test_generate_rejects_out_of_vocab_tokens():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"input_ids holds token id 262, outside the vocabulary range \[0, 261\]"):
        model.generate(input_ids=torch.tensor([[5, 262]]), max_new_tokens=2)


@pytest.mark.parametrize(
    "prefix_len,match",
    [
        (-1, r"prefix_len=-1 out of range \[2, 9\]"),
        (10, r"prefix_len=10 out of range \[2, 9\]"),
        (1, r"prefix_len=1 out of range \[2, 9\]"),  # 9 latents > max_latents
    ],
)
def test_forward_rejects_bad_prefix_len(prefix_len, match):
    model = tiny_model()
    with pytest.raises(ValueError, match=match):
        model(torch.randint(3, 262, (1, 10)), prefix_len=prefix_len)


def test_forward_rejects_bad_input():
    backend = tiny_model().backend_model
    with pytest.raises(ValueError, match=r"input_ids has sequence length 30, allowed range is \[1, 24\]"):
        backend(torch.randint(3, 262, (1, 30)), 22)
    with pytest.raises(ValueError, match=r"token id -1, outside the vocabulary range \[0, 261\]"):
        backend(torch.tensor([[3, -1, 4]]), 1)
    with pytest.raises(ValueError, match=r"pad_mask has shape \(1, 2\)"):
        backend(torch.tensor([[3, 4, 5]]), 1, pad_mask=torch.zeros(1, 2, dtype=torch.bool))
    cache = backend.empty_kv_cache(1)
    backend(torch.tensor([[3, 4, 5]]), 1, kv_cache=cache)
    with pytest.raises(ValueError, match=r"prefix_len=1 must be 0 when kv_cache holds positions"):
        backend(torch.tensor([[3, 4]]), 1, kv_cache=cache)
    with pytest.raises(ValueError, match=r"kv_cache has 2 entries, expected 3"):
        backend(torch.tensor([[3]]), 0, kv_cache=cache[:2])
    assert all(isinstance(c, KVCache) for c in cache)


def test_validation_sample_record_of_0_11(caplog):
    """0.11's `validation_sample_record`: a validation example (or a random one, -1) continued after validation."""
    from types import SimpleNamespace

    tokenizer = PerceiverTokenizer()
    examples = [{"input_ids": tokenizer(text, add_special_tokens=False)["input_ids"]} for text in ("abc", "xyz")]
    datamodule = SimpleNamespace(ds_valid=examples, tokenizer=tokenizer)
    for record, expected in [(1, "xyz"), (-1, None)]:
        lit = clm.LitCausalLanguageModel.create(tiny_config(), validation_sample_record=record)
        lit.trainer = SimpleNamespace(datamodule=datamodule, global_step=0, logger=None, loggers=[])  # what it reads
        (prompt,) = lit.validation_sample_prompts()
        assert tokenizer.decode(prompt) in ("abc", "xyz") and (expected is None or tokenizer.decode(prompt) == expected)
    with caplog.at_level("INFO", logger="perceiver.model.core.perceiver_ar.lightning"):
        lit.on_validation_epoch_end()
    assert any(r.getMessage().startswith("validation sample: ") for r in caplog.records)
    lit = clm.LitCausalLanguageModel.create(tiny_config(), validation_sample_record=2)
    lit.trainer = SimpleNamespace(datamodule=datamodule, global_step=0, logger=None, loggers=[])
    with pytest.raises(ValueError, match=r"validation_sample_record=2 out of range \[-1, 1\]"):
        lit.validation_sample_prompts()
