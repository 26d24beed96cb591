"""torch.compile of every backend model: one graph for the whole forward (`fullgraph=True` raises on any graph
break) with outputs equal to eager mode; the inductor backend once, the rest traced by dynamo only (fast)."""

import pytest
import torch

from perceiver.model.audio import symbolic
from perceiver.model.text import classifier, clm, mlm
from perceiver.model.vision import image_classifier as ic
from perceiver.model.vision import optical_flow as of

ATOL = 1e-4


def text_encoder(**kwargs) -> mlm.TextEncoderConfig:
    return mlm.TextEncoderConfig(
        vocab_size=262,
        max_seq_len=32,
        num_input_channels=32,
        num_cross_attention_heads=2,
        num_self_attention_heads=2,
        num_self_attention_layers_per_block=2,
        **kwargs,
    )


def masked_lm():
    decoder = mlm.TextDecoderConfig(vocab_size=262, max_seq_len=32, num_cross_attention_heads=2)
    config = mlm.MaskedLanguageModelConfig(text_encoder(), decoder, num_latents=8, num_latent_channels=16)
    x = torch.randint(3, 262, (2, 20))
    pad_mask = torch.zeros(2, 20, dtype=torch.bool)
    pad_mask[1, 15:] = True
    return mlm.MaskedLanguageModel(config), (x, pad_mask)


def text_classifier():
    decoder = classifier.ClassificationDecoderConfig(num_classes=3, num_output_query_channels=16)
    config = classifier.TextClassifierConfig(text_encoder(), decoder, num_latents=8, num_latent_channels=16)
    return classifier.TextClassifier(config), (torch.randint(3, 262, (2, 20)),)


def causal_lm(model_class=clm.CausalLanguageModel, config_class=clm.CausalLanguageModelConfig):
    config = config_class(vocab_size=262, max_seq_len=32, max_latents=8, num_channels=32, num_heads=4)
    config.num_self_attention_layers = 2
    pad_mask = torch.zeros(2, 20, dtype=torch.bool)
    pad_mask[1, :3] = True
    return model_class(config), (torch.randint(3, 262, (2, 20)), 12, pad_mask)


def symbolic_audio():
    return causal_lm(symbolic.SymbolicAudioModel, symbolic.SymbolicAudioModelConfig)


def image_classifier():
    encoder = ic.ImageEncoderConfig(
        image_shape=(8, 8, 1),
        num_frequency_bands=4,
        num_cross_attention_heads=1,
        num_cross_attention_qk_channels=32,
        num_self_attention_heads=2,
        num_self_attention_layers_per_block=1,
    )
    decoder = ic.ClassificationDecoderConfig(num_classes=10, num_output_query_channels=32, num_cross_attention_heads=1)
    config = ic.ImageClassifierConfig(encoder, decoder, num_latents=8, num_latent_channels=32)
    return ic.ImageClassifier(config), (torch.randn(2, 8, 8, 1),)


def optical_flow():
    encoder = of.OpticalFlowEncoderConfig(
        image_shape=(8, 12),
        num_patch_hidden_channels=8,
        num_frequency_bands=2,
        num_cross_attention_heads=1,
        num_cross_attention_qk_channels=16,
        num_self_attention_heads=2,
        num_self_attention_layers_per_block=1,
    )
    decoder = of.OpticalFlowDecoderConfig(image_shape=(8, 12), num_cross_attention_heads=1)
    config = of.OpticalFlowConfig(encoder, decoder, num_latents=4, num_latent_channels=16)
    return of.OpticalFlow(config), (torch.randn(1, 2, 27, 8, 12),)


MODELS = [masked_lm, text_classifier, causal_lm, symbolic_audio, image_classifier, optical_flow]


def outputs(result):
    return result.logits if hasattr(result, "logits") else result


@pytest.mark.parametrize("make", MODELS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("grad", [False, True], ids=["inference", "training"])
def test_forward_compiles_to_one_graph(make, grad):
    torch.manual_seed(0)
    model, args = make()
    model.eval()
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="eager", fullgraph=True, dynamic=False)
    with torch.set_grad_enabled(grad):
        torch.testing.assert_close(outputs(compiled(*args)), outputs(model(*args)), atol=ATOL, rtol=0)


@pytest.mark.slow
def test_cached_generation_step_compiles_to_one_graph():
    torch.manual_seed(0)
    model, (x, prefix_len, _) = causal_lm()
    model.eval()
    eager_cache, compiled_cache = model.empty_kv_cache(2), model.empty_kv_cache(2)
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="eager", fullgraph=True, dynamic=False)
    with torch.no_grad():
        model(x, prefix_len, kv_cache=eager_cache)
        model(x, prefix_len, kv_cache=compiled_cache)
        token = torch.randint(3, 262, (2, 1))
        expected = model(token, 0, kv_cache=eager_cache).logits
        torch.testing.assert_close(compiled(token, 0, kv_cache=compiled_cache).logits, expected, atol=ATOL, rtol=0)
    assert compiled_cache[0].seq_len == eager_cache[0].seq_len == 21


@pytest.mark.slow
def test_explain_reports_no_graph_break():
    model, args = masked_lm()
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model.eval())(*args)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


@pytest.mark.slow
def test_inductor_compiled_masked_lm_equals_eager():
    torch.manual_seed(0)
    model, args = masked_lm()
    model.eval()
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(*args), model(*args), atol=ATOL, rtol=0)


def test_lightning_compile_option_keeps_state_dict_and_outputs(monkeypatch):
    from perceiver.model.text.clm import LitCausalLanguageModel

    compile_module = torch.nn.Module.compile
    calls = []

    def eager_compile(self, *args, **kwargs):
        # dynamo tracing without inductor code generation keeps the test fast
        calls.append(type(self).__name__)
        return compile_module(self, *args, **{**kwargs, "backend": "eager", "fullgraph": True})

    monkeypatch.setattr(torch.nn.Module, "compile", eager_compile)
    model, (x, prefix_len, pad_mask) = causal_lm()
    torch._dynamo.reset()
    lit = LitCausalLanguageModel.create(model.config, compile=True).eval()
    plain = LitCausalLanguageModel.create(model.config).eval()
    assert calls == ["CausalLanguageModel"]
    assert list(lit.state_dict()) == list(plain.state_dict())  # compiled in place: no `_orig_mod.` keys
    plain.load_state_dict(lit.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(lit(x, prefix_len, pad_mask), plain(x, prefix_len, pad_mask), atol=ATOL, rtol=0)
