"""🤗 conventions: loading in bf16/fp16, gradient checkpointing, optical-flow pipeline batching, label names and
generation token ids through checkpoint conversion."""

import json

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import PerceiverTokenizer, Trainer, TrainingArguments, pipeline

from perceiver.data.text import TextFilesDataModule
from perceiver.model.audio import symbolic
from perceiver.model.core import utils
from perceiver.model.core.position import check_computed_buffers
from perceiver.model.text import classifier, clm, mlm
from perceiver.model.vision import image_classifier, optical_flow
from tests.conftest import FIXTURES, pydoc_text

MODELS = {
    "mlm": mlm.PerceiverMaskedLanguageModel,
    "txt_clf": classifier.PerceiverTextClassifier,
    "clm": clm.PerceiverCausalLanguageModel,
    "img_clf": image_classifier.PerceiverImageClassifier,
    "optical_flow": optical_flow.OpticalFlowPerceiver,
    "sam": symbolic.PerceiverSymbolicAudioModel,
}


def fixture_logits(model, name: str) -> torch.Tensor:
    """The model's output on the fixture's recorded inputs, as float32."""
    expected = load_file(FIXTURES / name / "expected.safetensors")
    with torch.no_grad():
        if name == "img_clf":
            output = model(pixel_values=expected["pixel_values"].to(model.dtype)).logits
        elif name == "optical_flow":
            output = model(inputs=expected["inputs"].to(model.dtype)).logits
        else:
            output = model(input_ids=expected["input_ids"], attention_mask=expected["attention_mask"]).logits
    return output.float()


# ---------------------------------------------------------------- dtype


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize(
    "kwargs",
    [
        {"dtype": torch.bfloat16},
        {"torch_dtype": torch.bfloat16},
        {"dtype": torch.bfloat16, "device_map": "cpu"},
        {"dtype": torch.float16},
    ],
    ids=["dtype", "torch_dtype", "device_map", "fp16"],
)
def test_from_pretrained_in_low_precision(name, kwargs):
    model = MODELS[name].from_pretrained(FIXTURES / name, **kwargs).eval()
    dtype = kwargs.get("dtype", kwargs.get("torch_dtype"))
    assert model.dtype == dtype
    # parameters and persisted buffers follow the model's dtype, except the rotary inverse frequencies, which
    # transformers keeps in float32 (as for its own rotary models)
    dtypes = {k: t.dtype for k, t in model.state_dict().items() if t.is_floating_point()}
    assert {d for k, d in dtypes.items() if not k.endswith("inv_freq")} == {dtype}
    assert {d for k, d in dtypes.items() if k.endswith("inv_freq")} <= {torch.float32}
    reference = fixture_logits(MODELS[name].from_pretrained(FIXTURES / name).eval(), name)
    logits = fixture_logits(model, name)
    assert torch.isfinite(logits).all()
    # a low precision model computes the same function: within a few percent of the float32 output's range
    assert (logits - reference).abs().max() <= 0.05 * reference.abs().max()


@pytest.mark.parametrize("name", ["clm", "sam"])
def test_generate_in_bfloat16(name):
    model = MODELS[name].from_pretrained(FIXTURES / name, dtype=torch.bfloat16).eval()
    expected = load_file(FIXTURES / name / "expected.safetensors")
    prompt = expected["prompt"]
    output = model.generate(
        input_ids=prompt,
        num_latents=4,
        max_new_tokens=6,
        do_sample=False,
        use_cache=True,
        output_scores=True,
        return_dict_in_generate=True,
    )
    assert output.sequences.shape == (prompt.shape[0], prompt.shape[1] + 6)
    assert (output.sequences[:, : prompt.shape[1]] == prompt).all()
    scores = torch.stack(output.scores, dim=1)
    assert torch.isfinite(scores).all()
    # greedy: each new token is the argmax of its step's scores
    assert (scores.argmax(-1) == output.sequences[:, prompt.shape[1] :]).all()


def test_rotary_angles_stay_float32_in_bfloat16():
    """In bfloat16, position 1000 times inv_freq 1.0 is 1000 only up to +-4: angles must not be computed in bf16."""
    model = MODELS["clm"].from_pretrained(FIXTURES / "clm").backend_model
    encoding = model.input_adapter.frq_pos_encoding
    abs_pos = torch.arange(1000, 1010).unsqueeze(0)
    expected = encoding(abs_pos)
    encoding.to(torch.bfloat16)
    assert encoding.inv_freq.dtype == torch.bfloat16
    assert encoding(abs_pos).dtype == torch.float32
    assert (encoding(abs_pos) - expected).abs().max() == 0


def test_buffer_check_tolerance_follows_dtype_and_names_the_difference():
    model = image_classifier.PerceiverImageClassifier.from_pretrained(FIXTURES / "img_clf")
    encoding = model.backend_model.encoder.input_adapter.position_encoding
    with torch.no_grad():
        encoding.position_encoding.add_(3e-3)  # within bf16 rounding (eps 7.8e-3), not within float32's 1e-4
    message = r"does not match the value computed from its config: max abs difference 0.003, tolerance 0.0001 for "
    with pytest.raises(ValueError, match=r"buffer 0.input_adapter.position_encoding.position_encoding .*" + message):
        check_computed_buffers(model.backend_model)
    check_computed_buffers(model.backend_model.to(torch.bfloat16))
    encoding.position_encoding = torch.zeros(3, 3, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=r"shape \(3, 3\), its config implies \(64, 18\)"):
        check_computed_buffers(model.backend_model)


# ---------------------------------------------------------------- gradient checkpointing


@pytest.fixture
def checkpoint_calls(monkeypatch):
    calls = []
    original = utils.checkpoint

    def spy(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(utils, "checkpoint", spy)
    return calls


def gradients(model, **inputs):
    model.zero_grad()
    model(**inputs).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", ["mlm", "clm"])
def test_gradient_checkpointing_enable_recomputes_with_equal_gradients(name, checkpoint_calls):
    model = MODELS[name].from_pretrained(FIXTURES / name).train()
    input_ids = torch.randint(0, 262, (2, 12))
    expected = gradients(model, input_ids=input_ids, labels=input_ids)
    assert not checkpoint_calls and not model.is_gradient_checkpointing

    model.gradient_checkpointing_enable()
    assert model.is_gradient_checkpointing
    actual = gradients(model, input_ids=input_ids, labels=input_ids)
    # each encoder/Perceiver AR layer is checkpointed (and so recomputed in the backward pass)
    assert len(checkpoint_calls) >= 3
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], atol=1e-6, rtol=1e-5)

    model.gradient_checkpointing_disable()
    checkpoint_calls.clear()
    gradients(model, input_ids=input_ids, labels=input_ids)
    assert not checkpoint_calls and not model.is_gradient_checkpointing
    # not a config change: saved models do not carry it
    assert model.config.backend_config == model.backend_model.config


def test_trainer_gradient_checkpointing(tmp_path, checkpoint_calls):
    model = MODELS["clm"].from_pretrained(FIXTURES / "clm")
    ids = torch.randint(0, 262, (8, 16))
    dataset = [{"input_ids": row, "labels": row} for row in ids]
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        max_steps=2,
        gradient_checkpointing=True,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
    )
    Trainer(model=model, args=args, train_dataset=dataset).train()
    assert model.is_gradient_checkpointing
    assert checkpoint_calls


# ---------------------------------------------------------------- optical flow pipeline


def test_optical_flow_pipeline_batch_size_and_render():
    model = optical_flow.OpticalFlowPerceiver.from_pretrained(FIXTURES / "optical_flow").eval()
    rng = np.random.default_rng(0)
    # one tile, six tiles (14x20 with the 8x12 model), one tile
    pairs = [tuple(rng.uniform(0, 255, (h, w, 3)) for _ in range(2)) for h, w in [(8, 12), (14, 20), (8, 12)]]
    flow = pipeline("optical-flow", model=model)
    expected = [flow(pair) for pair in pairs]

    forward_batches = []
    original_forward = model.forward

    def counting_forward(*args, **kwargs):
        forward_batches.append(kwargs["inputs"].shape[0])
        return original_forward(*args, **kwargs)

    model.forward = counting_forward
    batched = flow(pairs, batch_size=3)
    assert forward_batches == [3, 3, 2]  # the 8 tiles of all pairs, 3 per forward pass
    for actual, reference in zip(batched, expected):
        np.testing.assert_allclose(actual, reference, atol=1e-5)

    forward_batches.clear()
    rendered = pipeline("optical-flow", model=model, batch_size=4)(pairs, render=True)
    assert forward_batches == [4, 4]
    assert [r.shape for r in rendered] == [(8, 12, 3), (14, 20, 3), (8, 12, 3)]
    for actual, pair in zip(rendered, pairs):
        assert actual.dtype == np.uint8
        np.testing.assert_array_equal(actual, flow(pair, render=True))
    with pytest.raises(ValueError, match="batch_size=0 must be an int >= 1"):
        flow(pairs, batch_size=0)


# ---------------------------------------------------------------- labels and generation ids through conversion


@pytest.mark.slow
def test_text_classifier_keeps_class_names_through_convert_checkpoint(tmp_path, one_thread):
    paragraphs = [p for p in pydoc_text(8000).split("\n\n") if p.strip()][:24]
    rows = [{"text": t[:200], "label": ["good", "bad", "meh"][i % 3]} for i, t in enumerate(paragraphs)]
    for split, part in [("train", rows[:16]), ("valid", rows[16:])]:
        (tmp_path / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in part))
    PerceiverTokenizer().save_pretrained(tmp_path / "tokenizer")
    data = TextFilesDataModule(
        data_files={"train": str(tmp_path / "train.jsonl"), "valid": str(tmp_path / "valid.jsonl")},
        task="clf",
        tokenizer=str(tmp_path / "tokenizer"),
        max_seq_len=32,
        batch_size=8,
        num_workers=0,
        dataset_dir=str(tmp_path / "datasets"),
    )
    encoder = classifier.TextEncoderConfig(
        vocab_size=262,
        max_seq_len=32,
        num_input_channels=16,
        num_cross_attention_heads=1,
        num_self_attention_heads=1,
        num_self_attention_layers_per_block=1,
    )
    decoder = classifier.ClassificationDecoderConfig(num_classes=3, num_output_query_channels=16)
    lit = classifier.LitTextClassifier.create(
        classifier.TextClassifierConfig(encoder, decoder, num_latents=4, num_latent_channels=16)
    )
    trainer = pl.Trainer(
        max_steps=1,
        default_root_dir=str(tmp_path),
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        accelerator="cpu",
    )
    trainer.fit(lit, datamodule=data)
    ckpt = next((tmp_path / "checkpoints").glob("*.ckpt"))

    model = classifier.convert_checkpoint(tmp_path / "hf", ckpt, str(tmp_path / "tokenizer"))
    assert model.config.id2label == {0: "bad", 1: "good", 2: "meh"}
    loaded = classifier.PerceiverTextClassifier.from_pretrained(tmp_path / "hf")
    assert loaded.config.id2label == {0: "bad", 1: "good", 2: "meh"}
    assert loaded.config.label2id == {"bad": 0, "good": 1, "meh": 2}
    predictions = pipeline("text-classification", model=str(tmp_path / "hf"))(["some text"])
    assert predictions[0]["label"] in {"bad", "good", "meh"}
    # an explicit id2label still wins
    explicit = classifier.convert_checkpoint(tmp_path / "hf2", ckpt, None, id2label={0: "a", 1: "b", 2: "c"})
    assert explicit.config.id2label == {0: "a", 1: "b", 2: "c"}


@pytest.mark.slow
def test_image_classifier_keeps_class_names_through_convert_checkpoint(tmp_path, one_thread):
    from perceiver.data.vision import DigitsDataModule

    data = DigitsDataModule(batch_size=16, num_workers=0, dataset_dir=str(tmp_path / "datasets"))
    encoder = image_classifier.ImageEncoderConfig(
        image_shape=(8, 8, 1),
        num_frequency_bands=2,
        num_cross_attention_heads=1,
        num_self_attention_heads=1,
        num_self_attention_layers_per_block=1,
    )
    decoder = image_classifier.ClassificationDecoderConfig(
        num_classes=10, num_output_query_channels=8, num_cross_attention_heads=1
    )
    config = image_classifier.ImageClassifierConfig(encoder, decoder, num_latents=2, num_latent_channels=8)
    trainer = pl.Trainer(
        max_steps=1,
        default_root_dir=str(tmp_path),
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        accelerator="cpu",
    )
    trainer.fit(image_classifier.LitImageClassifier.create(config), datamodule=data)
    ckpt = next((tmp_path / "checkpoints").glob("*.ckpt"))
    model = image_classifier.convert_checkpoint(tmp_path / "hf", ckpt, data.image_processor)
    assert model.config.id2label == data.id2label
    assert image_classifier.PerceiverImageClassifier.from_pretrained(tmp_path / "hf").config.id2label == data.id2label


def test_converted_generative_checkpoints_carry_pad_and_eos_ids(tmp_path):
    config = clm.CausalLanguageModelConfig(
        vocab_size=262, max_seq_len=16, max_latents=8, num_channels=16, num_heads=2, num_self_attention_layers=1
    )
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.strategy.connect(clm.LitCausalLanguageModel.create(config))
    trainer.save_checkpoint(tmp_path / "clm.ckpt")
    tokenizer = PerceiverTokenizer()
    model = clm.convert_checkpoint(tmp_path / "clm", tmp_path / "clm.ckpt")
    saved = json.loads((tmp_path / "clm" / "generation_config.json").read_text())
    assert (saved["pad_token_id"], saved["eos_token_id"]) == (tokenizer.pad_token_id, tokenizer.eos_token_id)
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id

    sam_config = symbolic.SymbolicAudioModelConfig(
        max_seq_len=16, max_latents=8, num_channels=16, num_heads=2, num_self_attention_layers=1
    )
    trainer.strategy.connect(symbolic.LitSymbolicAudioModel.create(sam_config))
    trainer.save_checkpoint(tmp_path / "sam.ckpt")
    symbolic.convert_checkpoint(tmp_path / "sam", tmp_path / "sam.ckpt")
    saved = json.loads((tmp_path / "sam" / "generation_config.json").read_text())
    assert saved["pad_token_id"] == sam_config.vocab_size - 1  # the MIDI vocabulary's pad token, its last id
    assert "eos_token_id" not in saved  # MIDI event vocabularies have none
