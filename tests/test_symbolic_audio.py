"""Perceiver AR symbolic audio model: thin classes over the shared Perceiver AR code, 0.11 fixture `sam`."""

import json

import torch
from safetensors.torch import load_file
from transformers import AutoConfig

from perceiver.model.audio import symbolic
from perceiver.model.text.clm.huggingface import PerceiverCausalSequenceModel

ATOL = 1e-4


def load(fixtures_dir):
    model = symbolic.PerceiverSymbolicAudioModel.from_pretrained(fixtures_dir / "sam").eval()
    expected = load_file(fixtures_dir / "sam" / "expected.safetensors")
    info = json.loads((fixtures_dir / "sam" / "expected.json").read_text())
    return model, expected, info


def test_fixture_config_and_classes(fixtures_dir):
    model_config = json.loads((fixtures_dir / "sam" / "config.json").read_text())["model_config"]
    assert set(symbolic.SymbolicAudioModelConfig.__dataclass_fields__) == set(model_config)
    config = AutoConfig.from_pretrained(fixtures_dir / "sam")
    assert isinstance(config, symbolic.PerceiverSymbolicAudioModelConfig)
    assert config.model_type == "perceiver-ar-symbolic-audio-model"
    model, _, _ = load(fixtures_dir)
    assert isinstance(model, PerceiverCausalSequenceModel)
    assert isinstance(model.backend_model, symbolic.SymbolicAudioModel)
    assert model.backend_model.config == config.backend_config


def test_fixture_logits(fixtures_dir):
    model, expected, info = load(fixtures_dir)
    with torch.no_grad():
        logits = model(expected["input_ids"], attention_mask=expected["attention_mask"], prefix_len=info["prefix_len"])
    torch.testing.assert_close(logits.logits, expected["logits"], atol=ATOL, rtol=0)


def test_fixture_greedy_generation_with_cache(fixtures_dir):
    model, expected, info = load(fixtures_dir)
    args = info["generate"]
    out = model.generate(
        input_ids=expected["prompt"],
        num_latents=args["num_latents"],
        max_new_tokens=args["max_new_tokens"],
        do_sample=args["do_sample"],
        use_cache=args["use_cache"],
        output_scores=True,
        return_dict_in_generate=True,
    )
    assert torch.equal(out.sequences, expected["generated"])
    torch.testing.assert_close(torch.stack(out.scores, dim=1), expected["generated_scores"], atol=ATOL, rtol=0)


def test_lightning_wrapper_creates_backend():
    config = symbolic.SymbolicAudioModelConfig(
        max_seq_len=16, max_latents=4, num_channels=16, num_heads=2, num_self_attention_layers=1
    )
    lit = symbolic.LitSymbolicAudioModel.create(config)
    assert isinstance(lit.backend_model, symbolic.SymbolicAudioModel)
    assert lit.backend_config == config
    x = torch.randint(0, 389, (2, 16))
    loss = lit._step({"input_ids": x})["loss"]
    assert torch.isfinite(loss) and loss.item() > 5.0  # about ln(389) at init


def test_layers_model_and_processing_do_not_import_data():
    import subprocess
    import sys

    code = (
        "import sys; import perceiver.processing.midi, perceiver.processing.midi_audio; "
        "assert not any(m.startswith(('perceiver.data', 'perceiver.model')) for m in sys.modules), 'processing'; "
        "import perceiver.model.audio.symbolic; "
        "assert not any(m.startswith('perceiver.data') for m in sys.modules), 'model'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
