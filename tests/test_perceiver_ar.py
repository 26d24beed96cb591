"""The generic Perceiver AR (perceiver.model.core.perceiver_ar): one config source, the 0.11 keyword spelling, the
generation window and the pad-mask contract, and the package's layout (backend names at the package, 🤗 and
Lightning parts in their submodules, old import paths kept)."""

import dataclasses

import pytest
import torch

from perceiver.model.core import PerceiverARConfig, TokenInputAdapterWithRotarySupport
from perceiver.model.core.perceiver_ar import CausalSequenceModel, PerceiverAR, generation_window
from perceiver.model.text.clm import CausalLanguageModel, CausalLanguageModelConfig


def tiny_config(**kwargs) -> CausalLanguageModelConfig:
    values = dict(vocab_size=40, max_seq_len=16, max_latents=6, num_channels=16, num_heads=2)
    values.update(num_self_attention_layers=2, cross_attention_dropout=0.0)
    return CausalLanguageModelConfig(**{**values, **kwargs})


def adapter() -> TokenInputAdapterWithRotarySupport:
    return TokenInputAdapterWithRotarySupport(
        rotated_channels_per_head=4, vocab_size=40, max_seq_len=16, num_input_channels=16
    )


def test_perceiver_ar_takes_its_config():
    config = PerceiverARConfig(num_heads=2, num_self_attention_layers=3, activation_checkpointing=True)
    model = PerceiverAR(adapter(), config)
    assert model.config is config and len(model.self_attention) == 3
    assert model.checkpointing.enabled and not model.checkpointing.offload
    assert model.self_attention.checkpointing is model.checkpointing
    with pytest.raises(TypeError, match="config must be a PerceiverARConfig"):
        PerceiverAR(adapter(), dataclasses.asdict(config))
    with pytest.raises(TypeError, match="got config and keyword arguments"):
        PerceiverAR(adapter(), config, num_heads=2)


def test_0_11_keyword_spelling_builds_the_same_model():
    kwargs = dict(num_heads=2, num_self_attention_layers=3, cross_attention_dropout=0.25, activation_offloading=True)
    torch.manual_seed(0)
    new = PerceiverAR(adapter(), PerceiverARConfig(**kwargs))
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning, match=r"use PerceiverAR\(\.\.\., config=PerceiverARConfig\(\.\.\.\)\)"):
        old = PerceiverAR(adapter(), **kwargs)
    assert old.config == new.config and old.checkpointing == new.checkpointing
    for (k1, v1), (k2, v2) in zip(new.state_dict().items(), old.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['num_latents'\\]"):
        PerceiverAR(adapter(), num_latents=4)


def test_generation_window():
    ids = torch.arange(10).expand(2, 10)
    mask = torch.zeros(2, 12, dtype=torch.bool)  # wider than ids, aligned with their end
    mask[1, :5] = True
    window, window_mask = generation_window(ids, mask, 4)
    assert window.tolist() == [[6, 7, 8, 9]] * 2 and torch.equal(window_mask, mask[:, -4:])
    window, window_mask = generation_window(ids, None, 20)
    assert torch.equal(window, ids) and window_mask is None
    window, _ = generation_window(torch.arange(5), None, 3)  # a 1-d prompt
    assert window.tolist() == [2, 3, 4]
    with pytest.raises(ValueError, match="max_len=0 must be >= 1"):
        generation_window(ids, mask, 0)


def test_pad_mask_contract_is_the_same_with_and_without_cache():
    """In both modes the mask's last columns are those of the window's positions; wider masks (the 🤗 attention mask
    of a whole sequence) give the same result, narrower ones raise."""
    torch.manual_seed(0)
    model = CausalLanguageModel(tiny_config()).eval()
    x = torch.randint(0, 40, (2, 10))
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[1, :3] = True
    wide = torch.cat([torch.ones(2, 5, dtype=torch.bool), mask], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(x, 4, pad_mask=wide).logits, model(x, 4, pad_mask=mask).logits)
        cache = model.empty_kv_cache(2)
        model(x, 4, pad_mask=mask, kv_cache=cache)
        step = torch.randint(0, 40, (2, 1))
        step_mask = torch.cat([mask, torch.zeros(2, 1, dtype=torch.bool)], dim=1)
        cache_wide = model.empty_kv_cache(2)
        model(x, 4, pad_mask=wide, kv_cache=cache_wide)
        wide_step_mask = torch.cat([wide, torch.zeros(2, 1, dtype=torch.bool)], dim=1)
        torch.testing.assert_close(
            model(step, 0, pad_mask=wide_step_mask, kv_cache=cache_wide).logits,
            model(step, 0, pad_mask=step_mask, kv_cache=cache).logits,
        )
    for n_cached, kv_cache in ((0, None), (11, cache)):
        n = 10 if kv_cache is None else 1
        narrow = torch.zeros(2, n_cached + n - 1, dtype=torch.bool)
        with pytest.raises(ValueError, match=rf"pad_mask has shape \(2, {n_cached + n - 1}\), expected \(2, m\)"):
            model(x if kv_cache is None else step, 4 if kv_cache is None else 0, pad_mask=narrow, kv_cache=kv_cache)


def test_backend_generate_takes_the_window_of_long_sequences():
    """Generating past max_seq_len without cache runs each step over generation_window(...) of the sequence."""
    torch.manual_seed(0)
    model = CausalLanguageModel(tiny_config()).eval()
    prompt = torch.randint(0, 40, (1, 8))
    out = model.generate(prompt, max_new_tokens=12, num_latents=2, use_cache=False)
    seq = out[:, :-1]  # the last step's input
    window, _ = generation_window(seq, None, model.max_seq_len)
    with torch.no_grad():
        logits = model(window, window.shape[1] - model.max_latents).logits
    assert out[0, -1] == logits[0, -1].argmax()


def test_package_layout_and_old_import_paths():
    from perceiver.model.audio.symbolic import lightning as audio_lightning
    from perceiver.model.audio.symbolic.huggingface import PerceiverSymbolicAudioModel
    from perceiver.model.core.perceiver_ar import huggingface as hf
    from perceiver.model.core.perceiver_ar import lightning as lit
    from perceiver.model.text.clm import huggingface as clm_hf
    from perceiver.model.text.clm import lightning as clm_lightning

    assert issubclass(CausalLanguageModel, CausalSequenceModel)
    assert clm_hf.PerceiverCausalSequenceModel is hf.PerceiverCausalSequenceModel
    assert clm_hf.PerceiverARCache is hf.PerceiverARCache and clm_hf.PerceiverARCacheLayer is hf.PerceiverARCacheLayer
    assert clm_lightning.LitCausalSequenceModel is lit.LitCausalSequenceModel
    assert clm_lightning.LossPerplexity is lit.LossPerplexity
    assert issubclass(PerceiverSymbolicAudioModel, hf.PerceiverCausalSequenceModel)
    assert issubclass(audio_lightning.LitSymbolicAudioModel, lit.LitCausalSequenceModel)
    assert issubclass(clm_lightning.LitCausalLanguageModel, lit.LitCausalSequenceModel)
