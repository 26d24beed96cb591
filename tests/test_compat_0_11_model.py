"""perceiver-io 0.11 compatibility, model side: every 0.11 config field (the rows of docs/0.11-config-fields.md),
0.11's public model names at their 0.11 import paths, converted image classifiers at any resolution."""

import dataclasses
import importlib
import warnings

import pytest
import torch
import transformers
from safetensors.torch import load_file

from perceiver.model.core import (
    ClassificationDecoderConfig,
    DecoderConfig,
    EncoderConfig,
    PerceiverDecoder,
    PerceiverEncoder,
    PerceiverIOConfig,
    TokenInputAdapter,
    TrainableQueryProvider,
    utils,
)
from perceiver.model.text import classifier, clm, mlm
from perceiver.model.vision import image_classifier as ic
from perceiver.model.vision import optical_flow as of

# ---------------------------------------------------------------- tiny configs

TEXT_ENCODER = classifier.TextEncoderConfig(
    vocab_size=50,
    max_seq_len=12,
    num_input_channels=16,
    num_cross_attention_heads=1,
    num_self_attention_heads=2,
    num_self_attention_layers_per_block=1,
)


def text_classifier(encoder=None, decoder=None, **kwargs) -> classifier.TextClassifier:
    decoder = decoder or ClassificationDecoderConfig(num_classes=3, num_output_query_channels=16)
    config = classifier.TextClassifierConfig(
        encoder or TEXT_ENCODER, decoder, **{"num_latents": 4, "num_latent_channels": 16, **kwargs}
    )
    return classifier.TextClassifier(config)


def run_text(model, batch_size: int = 2) -> torch.Tensor:
    x = torch.randint(0, 50, (batch_size, 12))
    output = model(x, pad_mask=torch.zeros_like(x, dtype=torch.bool))
    assert torch.isfinite(output).all()
    return output


def shapes(model) -> dict:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- EncoderConfig rows


def check_encoder_field(field, value, model):
    s = shapes(model)
    enc = model.encoder
    if field == "num_cross_attention_heads":
        assert enc.cross_attn_1[0].module.attention.num_heads == value
    elif field == "num_cross_attention_qk_channels":
        assert s["0.cross_attn_1.0.module.attention.q_proj.weight"] == (value, 16)
        assert s["0.cross_attn_1.0.module.attention.v_proj.weight"] == (value, 16)  # v defaults to qk
    elif field == "num_cross_attention_v_channels":
        assert s["0.cross_attn_1.0.module.attention.v_proj.weight"] == (value, 16)
        assert s["0.cross_attn_1.0.module.attention.o_proj.weight"] == (16, value)
    elif field == "num_cross_attention_layers":
        assert "0.cross_attn_n.0.module.attention.q_proj.weight" in s  # layers 2.. share one extra layer
    elif field == "first_cross_attention_layer_shared":
        assert not any(k.startswith("0.cross_attn_n.") for k in s)
    elif field == "cross_attention_widening_factor":
        assert s["0.cross_attn_1.1.module.1.weight"] == (16 * value, 16)
    elif field == "num_self_attention_heads":
        assert enc.self_attn_1[0][0].module.attention.num_heads == value
    elif field == "num_self_attention_qk_channels":
        assert s["0.self_attn_1.0.0.module.attention.k_proj.weight"] == (value, 16)
    elif field == "num_self_attention_v_channels":
        assert s["0.self_attn_1.0.0.module.attention.v_proj.weight"] == (value, 16)
    elif field == "num_self_attention_layers_per_block":
        assert len(enc.self_attn_1) == value
    elif field == "num_self_attention_blocks":
        # blocks 2.. share the first block's weights by default (first_self_attention_block_shared=True)
        assert not any(k.startswith("0.self_attn_n.") for k in s)
    elif field == "first_self_attention_block_shared":
        assert any(k.startswith("0.self_attn_n.") for k in s) != value
    elif field == "self_attention_widening_factor":
        assert s["0.self_attn_1.0.1.module.1.weight"] == (16 * value, 16)
    elif field == "dropout":
        assert enc.cross_attn_1[0].module.attention.dropout == value
    elif field == "init_scale":
        weight = enc.self_attn_1[0][0].module.attention.q_proj.weight
        assert abs(weight.std().item() - value) < 0.2 * value
    elif field == "freeze":
        assert not any(p.requires_grad for p in enc.parameters())
        assert all(p.requires_grad for p in model.decoder.parameters())
    else:
        raise AssertionError(f"no check for {field}")


ENCODER_ROWS = [
    ("num_cross_attention_heads", 2),
    ("num_cross_attention_qk_channels", 8),
    ("num_cross_attention_v_channels", 24),
    ("num_cross_attention_layers", 2),
    ("first_cross_attention_layer_shared", True),
    ("cross_attention_widening_factor", 3),
    ("num_self_attention_heads", 4),
    ("num_self_attention_qk_channels", 8),
    ("num_self_attention_v_channels", 24),
    ("num_self_attention_layers_per_block", 3),
    ("num_self_attention_blocks", 2),
    ("first_self_attention_block_shared", False),
    ("self_attention_widening_factor", 2),
    ("dropout", 0.25),
    ("init_scale", 0.1),
    ("freeze", True),
]


def test_encoder_rows_cover_every_0_11_field():
    assert {f for f, _ in ENCODER_ROWS} == {f.name for f in dataclasses.fields(EncoderConfig)}


@pytest.mark.parametrize("field,value", ENCODER_ROWS)
def test_encoder_config_field(field, value):
    extra = {}
    if field in ("num_cross_attention_layers", "first_cross_attention_layer_shared"):
        extra = {"num_cross_attention_layers": 2, "num_self_attention_blocks": 2}
    if field in ("first_self_attention_block_shared",):
        extra = {"num_self_attention_blocks": 2}
    encoder = dataclasses.replace(TEXT_ENCODER, **{**extra, field: value})
    model = text_classifier(encoder).eval()
    assert run_text(model).shape == (2, 3)
    check_encoder_field(field, value, model)


def test_encoder_blocks_share_weights_as_configured():
    """Two blocks with `first_self_attention_block_shared`: the second block is the first one's weights applied
    again (hand-computed from block 1)."""
    encoder = dataclasses.replace(TEXT_ENCODER, num_self_attention_blocks=2, num_cross_attention_layers=2)
    enc = text_classifier(encoder).encoder.eval()
    x = torch.randint(0, 50, (2, 12))
    with torch.no_grad():
        x_in = enc.input_adapter(x)
        latent = enc.latent_provider().expand(2, -1, -1)
        latent = enc.self_attn_1(enc.cross_attn_1(latent, x_in))
        latent = enc.self_attn_1(enc.cross_attn_n(latent, x_in))  # shared self-attention block, own cross-attention
        torch.testing.assert_close(enc(x), latent)


# ---------------------------------------------------------------- DecoderConfig / ClassificationDecoderConfig rows

DECODER_ROWS = [
    ("num_cross_attention_heads", 2),
    ("num_cross_attention_qk_channels", 8),
    ("num_cross_attention_v_channels", 24),
    ("cross_attention_widening_factor", 2),
    ("cross_attention_residual", False),
    ("dropout", 0.25),
    ("init_scale", 0.1),
    ("freeze", True),
    ("num_output_queries", 3),
    ("num_output_query_channels", 8),
    ("num_classes", 5),
]


def test_decoder_rows_cover_every_0_11_field():
    assert {f for f, _ in DECODER_ROWS} == {f.name for f in dataclasses.fields(ClassificationDecoderConfig)}


@pytest.mark.parametrize("field,value", DECODER_ROWS)
def test_decoder_config_field(field, value):
    decoder = dataclasses.replace(
        ClassificationDecoderConfig(num_classes=3, num_output_query_channels=16), **{field: value}
    )
    model = text_classifier(decoder=decoder).eval()
    output = run_text(model)
    s = shapes(model)
    dec = model.decoder
    if field == "num_cross_attention_heads":
        assert dec.cross_attn[0].module.attention.num_heads == value
    elif field == "num_cross_attention_qk_channels":
        assert s["1.cross_attn.0.module.attention.k_proj.weight"] == (value, 16)
    elif field == "num_cross_attention_v_channels":
        assert s["1.cross_attn.0.module.attention.v_proj.weight"] == (value, 16)
    elif field == "cross_attention_widening_factor":
        assert s["1.cross_attn.1.module.1.weight"] == (16 * value, 16)
    elif field == "cross_attention_residual":
        # no residual around the attention (0.11's layout: the attention module directly at index 0)
        assert "1.cross_attn.0.attention.q_proj.weight" in s
        with torch.no_grad():
            latent = model.encoder(torch.randint(0, 50, (1, 12)))
            query = dec.output_query_provider()
            attended = dec.cross_attn[0](query, latent)
            expected = dec.output_adapter(attended + dec.cross_attn[1].module(attended))
            torch.testing.assert_close(dec(latent), expected)
    elif field == "dropout":
        assert dec.cross_attn[0].module.attention.dropout == value
    elif field == "init_scale":
        assert abs(dec.output_adapter.linear.weight.std().item() - value) < 0.2 * value
    elif field == "freeze":
        assert not any(p.requires_grad for p in dec.parameters())
    elif field == "num_output_queries":
        assert output.shape == (2, 3, 3)  # one prediction per output query, as in 0.11
    elif field == "num_output_query_channels":
        assert s["1.output_query_provider._query"] == (1, value) and s["1.output_adapter.linear.weight"] == (3, value)
    elif field == "num_classes":
        assert output.shape == (2, value)


# ---------------------------------------------------------------- PerceiverIOConfig rows


def test_perceiver_io_config_fields(monkeypatch):
    assert {f.name for f in dataclasses.fields(PerceiverIOConfig)} == {
        "encoder",
        "decoder",
        "num_latents",
        "num_latent_channels",
        "activation_checkpointing",
        "activation_offloading",
    }
    model = text_classifier(num_latents=6, num_latent_channels=24)
    assert shapes(model)["0.latent_provider._query"] == (6, 24)
    run_text(model)

    calls = []
    original = utils.checkpoint
    monkeypatch.setattr(utils, "checkpoint", lambda *a, **k: calls.append(1) or original(*a, **k))
    for offloading in (False, True):
        model = text_classifier(activation_checkpointing=True, activation_offloading=offloading).train()
        calls.clear()
        run_text(model).sum().backward()
        assert len(calls) == 3  # encoder cross-attention, self-attention layer, decoder cross-attention


def test_0_11_generic_config_spelling():
    """0.11 wrote task configs as `PerceiverIOConfig[EncoderType, DecoderType]` and passed `base_kwargs()`."""
    config_class = PerceiverIOConfig[classifier.TextEncoderConfig, ClassificationDecoderConfig]
    config = config_class(
        TEXT_ENCODER, ClassificationDecoderConfig(num_classes=3), num_latents=4, num_latent_channels=16
    )
    assert classifier.TextClassifier(config).config is config
    kwargs = TEXT_ENCODER.base_kwargs()
    assert "vocab_size" not in kwargs and "freeze" not in kwargs
    assert kwargs["num_self_attention_layers_per_block"] == 1
    expected = {k: v for k, v in dataclasses.asdict(DecoderConfig()).items() if k != "freeze"}
    assert ClassificationDecoderConfig(num_classes=3).base_kwargs() == expected


# ---------------------------------------------------------------- text encoder / masked LM rows


def test_text_encoder_fields_and_params(tmp_path):
    model = text_classifier(dataclasses.replace(TEXT_ENCODER, vocab_size=70, max_seq_len=20, num_input_channels=8))
    s = shapes(model)
    assert s["0.input_adapter.txt_embedding.weight"] == (70, 8) and s["0.input_adapter.pos_embedding.weight"] == (20, 8)

    # params: the encoder starts from a saved masked language model
    mlm_config = mlm.MaskedLanguageModelConfig(
        TEXT_ENCODER, mlm.TextDecoderConfig(vocab_size=50, max_seq_len=12, num_cross_attention_heads=1), 4, 16
    )
    source = mlm.PerceiverMaskedLanguageModel(mlm.PerceiverMaskedLanguageModelConfig(mlm_config))
    source.save_pretrained(tmp_path / "mlm")
    model = text_classifier(dataclasses.replace(TEXT_ENCODER, params=str(tmp_path / "mlm")))
    for name, tensor in model.encoder.state_dict().items():
        torch.testing.assert_close(tensor, source.backend_model.encoder.state_dict()[name])


def test_text_encoder_takes_0_11_positional_checkpointing_flags():
    """0.11's `TextEncoder(config, num_latents, num_latent_channels, activation_checkpointing, activation_offloading)`
    builds the `ActivationCheckpointing` that this library passes as `checkpointing` (also positionally)."""
    from perceiver.model.core import ActivationCheckpointing
    from perceiver.model.text.common import TextEncoder

    with pytest.warns(DeprecationWarning, match=r"TextEncoder\(activation_checkpointing=..., activation_offloading"):
        old = TextEncoder(TEXT_ENCODER, 4, 16, True, True)
    assert old.checkpointing == ActivationCheckpointing(enabled=True, offload=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TextEncoder(TEXT_ENCODER, 4, 16, ActivationCheckpointing(enabled=True)).checkpointing.enabled
        assert not TextEncoder(TEXT_ENCODER, 4, 16).checkpointing.enabled
    with pytest.raises(TypeError, match="at most 2"):
        TextEncoder(TEXT_ENCODER, 4, 16, True, True, True)


def mlm_config(**decoder_kwargs) -> mlm.MaskedLanguageModelConfig:
    decoder_kwargs = {"vocab_size": 50, "max_seq_len": 12, "num_cross_attention_heads": 1, **decoder_kwargs}
    decoder = mlm.TextDecoderConfig(**decoder_kwargs)
    return mlm.MaskedLanguageModelConfig(TEXT_ENCODER, decoder, num_latents=4, num_latent_channels=16)


@pytest.mark.parametrize("num_output_query_channels", [24, 16])
def test_masked_lm_with_untied_output_layer(tmp_path, num_output_query_channels):
    """0.11: a decoder that sets `num_output_query_channels` (even to the embedding's width) has output queries of
    that width and an output layer of its own, `decoder.output_adapter.linear`."""
    config = mlm_config(num_output_query_channels=num_output_query_channels)
    model = mlm.PerceiverMaskedLanguageModel(mlm.PerceiverMaskedLanguageModelConfig(config)).eval()
    keys = shapes(model)
    assert keys["backend_model.1.output_query_provider._query"] == (12, num_output_query_channels)
    assert keys["backend_model.1.output_adapter.linear.weight"] == (50, num_output_query_channels)
    assert keys["backend_model.1.output_adapter.linear.bias"] == (50,)
    assert "backend_model.1.output_adapter.bias" not in keys  # the tied adapter's bias

    input_ids = torch.randint(0, 50, (2, 9))
    backend = model.backend_model
    with torch.no_grad():
        logits = model(input_ids=input_ids).logits
        # hand-computed: decoder cross-attention output of the first 9 queries, then the linear layer
        latent = backend.encoder(input_ids)
        attended = backend.decoder.cross_attn(backend.decoder.output_query_provider()[:, :9].expand(2, -1, -1), latent)
        expected = (
            attended @ backend.decoder.output_adapter.linear.weight.T + backend.decoder.output_adapter.linear.bias
        )
    assert logits.shape == (2, 9, 50)
    torch.testing.assert_close(logits, expected)

    # saved with 0.11's keys and config, and loaded back unchanged
    model.save_pretrained(tmp_path / "untied")
    assert set(load_file(tmp_path / "untied" / "model.safetensors")) == set(keys)
    loaded = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "untied").eval()
    assert loaded.config.backend_config.decoder.num_output_query_channels == num_output_query_channels
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=input_ids).logits, logits)


def test_masked_lm_decoder_fields():
    model = mlm.MaskedLanguageModel(mlm_config(max_seq_len=10))
    assert shapes(model)["1.output_query_provider._query"] == (10, 16)
    assert model(torch.randint(0, 50, (2, 10))).shape == (2, 10, 50)
    with pytest.raises(ValueError, match="decoder.vocab_size=60 must equal encoder.vocab_size=50"):
        mlm.MaskedLanguageModel(dataclasses.replace(mlm_config(), decoder=mlm.TextDecoderConfig(vocab_size=60)))


# ---------------------------------------------------------------- Perceiver AR rows (clm; symbolic audio shares them)


def ar_logits(model, x, prefix_len: int) -> torch.Tensor:
    output = model(x, prefix_len=prefix_len)
    return getattr(output, "logits", output)  # 0.11's output object, or the logits tensor


def clm_config(**kwargs) -> clm.CausalLanguageModelConfig:
    values = dict(vocab_size=50, max_seq_len=16, max_latents=8, num_channels=16, num_heads=2)
    values.update(num_self_attention_layers=2, cross_attention_dropout=0.0)
    return clm.CausalLanguageModelConfig(**{**values, **kwargs})


AR_ROWS = [
    ("num_heads", 4),
    ("max_heads_parallel", 1),
    ("num_self_attention_layers", 3),
    ("num_self_attention_rotary_layers", -1),
    ("self_attention_widening_factor", 2),
    ("cross_attention_widening_factor", 2),
    ("cross_attention_dropout", 0.5),
    ("post_attention_dropout", 0.25),
    ("residual_dropout", 0.25),
    ("activation_checkpointing", True),
    ("activation_offloading", True),
    ("vocab_size", 70),
    ("max_seq_len", 20),
    ("max_latents", 6),
    ("num_channels", 32),
    ("output_norm", True),
    ("output_bias", False),
    ("abs_pos_emb", False),
    ("init_scale", 0.1),
]


def test_perceiver_ar_rows_cover_every_0_11_field():
    assert {f for f, _ in AR_ROWS} == {f.name for f in dataclasses.fields(clm.CausalLanguageModelConfig)}


@pytest.mark.parametrize("field,value", AR_ROWS)
def test_perceiver_ar_config_field(field, value):
    config = clm_config(**{field: value})
    model = clm.CausalLanguageModel(config).eval()
    x = torch.randint(0, config.vocab_size, (2, 12))
    with torch.no_grad():
        logits = ar_logits(model, x, 6)
    assert logits.shape == (2, 6, config.vocab_size) and torch.isfinite(logits).all()
    s = shapes(model)
    if field == "max_heads_parallel":
        reference = clm.CausalLanguageModel(clm_config())
        reference.load_state_dict(model.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(ar_logits(reference.eval(), x, 6), logits)
    elif field == "num_self_attention_layers":
        assert len(model.self_attention) == value
    elif field in ("self_attention_widening_factor", "cross_attention_widening_factor"):
        name = "self_attention.0.1" if field.startswith("self") else "cross_attention.1"
        assert s[f"{name}.module.1.weight"] == (16 * value, 16)
    elif field == "max_seq_len":
        assert s["input_adapter.pos_embedding.weight"] == (20, 16)
    elif field == "num_channels":
        assert s["input_adapter.txt_embedding.weight"] == (50, 32)
    elif field == "output_norm":
        assert "out_norm.weight" in s
    elif field == "output_bias":
        assert "output_adapter.bias" not in s
    elif field == "abs_pos_emb":
        assert "input_adapter.pos_embedding.weight" not in s
        assert s["input_adapter.frq_pos_encoding.inv_freq"] == (4,)  # rotary over all 8 channels of a head
    elif field == "init_scale":
        assert abs(model.input_adapter.txt_embedding.weight.std().item() - value) < 0.2 * value
    elif field in ("cross_attention_dropout", "post_attention_dropout", "residual_dropout"):
        # dropout only while training: outputs in eval mode do not depend on it
        reference = clm.CausalLanguageModel(clm_config())
        reference.load_state_dict(model.state_dict())
        with torch.no_grad():
            torch.testing.assert_close(ar_logits(reference.eval(), x, 6), logits)
            model.train()
            assert not torch.equal(ar_logits(model, x, 6), ar_logits(model, x, 6))
    if config.activation_checkpointing or config.activation_offloading:
        model.train()
        ar_logits(model, x, 6).sum().backward()


# ---------------------------------------------------------------- vision rows


def test_image_encoder_fields():
    encoder = ic.ImageEncoderConfig(
        image_shape=(6, 5, 2), num_frequency_bands=3, num_cross_attention_heads=1, num_self_attention_heads=1
    )
    encoder = dataclasses.replace(encoder, num_self_attention_layers_per_block=1)
    config = ic.ImageClassifierConfig(encoder, ClassificationDecoderConfig(num_classes=4, num_output_query_channels=8))
    config = dataclasses.replace(config, num_latents=4, num_latent_channels=8)
    config.decoder.num_cross_attention_heads = 1
    model = ic.ImageClassifier(config)
    # pixels plus (2 spatial dims) x (2 * 3 bands + position): 2 + 14 channels; qk channels default to those (0.11)
    assert model.encoder.input_adapter.num_input_channels == 16
    assert shapes(model)["0.cross_attn_1.0.module.attention.q_proj.weight"] == (16, 8)
    assert shapes(model)["0.input_adapter.position_encoding.position_encoding"] == (30, 14)
    assert model(torch.rand(2, 6, 5, 2)).shape == (2, 4)


def test_optical_flow_fields():
    encoder = of.OpticalFlowEncoderConfig(
        image_shape=(4, 6),
        num_patch_input_channels=9,
        num_patch_hidden_channels=10,
        num_frequency_bands=2,
        num_cross_attention_heads=1,
        num_self_attention_heads=1,
        num_self_attention_layers_per_block=1,
    )
    decoder = of.OpticalFlowDecoderConfig(image_shape=(4, 6), rescale_factor=10.0, num_cross_attention_heads=1)
    model = of.OpticalFlow(of.OpticalFlowConfig(encoder, decoder, num_latents=4, num_latent_channels=8)).eval()
    s = shapes(model)
    assert s["0.input_adapter.linear.weight"] == (10, 18)  # two frames of 9 patch channels
    assert model.encoder.input_adapter.num_input_channels == 10 + 2 * (2 * 2 + 1)
    x = torch.randn(2, 2, 9, 4, 6)
    with torch.no_grad():
        flow = model(x)
        assert flow.shape == (2, 4, 6, 2)
        model.decoder.output_adapter.rescale_factor = 20.0  # the flow scales with 1 / rescale_factor
        torch.testing.assert_close(model(x), flow / 2)


# ---------------------------------------------------------------- 0.11 constructors of the core modules


def test_0_11_keyword_constructors_warn_and_build_the_same_modules():
    adapter = TokenInputAdapter(50, 12, 16)
    with pytest.warns(DeprecationWarning, match=r"PerceiverEncoder\(\.\.\., config=EncoderConfig\(\.\.\.\)\)"):
        old = PerceiverEncoder(adapter, 4, 16, num_cross_attention_heads=2, num_self_attention_layers_per_block=2)
    new = PerceiverEncoder(
        adapter,
        4,
        16,
        config=EncoderConfig(
            num_cross_attention_heads=2, num_self_attention_heads=4, num_self_attention_layers_per_block=2
        ),
    )
    assert shapes(old) == shapes(new)
    assert old.cross_attn_1[0].module.attention.num_heads == 2 and old.self_attn_1[0][0].module.attention.num_heads == 4
    with pytest.warns(DeprecationWarning):
        assert len(PerceiverEncoder(adapter, 4, 16).self_attn_1) == 6  # 0.11's default layers per block

    query = TrainableQueryProvider(3, 16)
    with pytest.warns(DeprecationWarning, match="PerceiverDecoder"):
        decoder = PerceiverDecoder(torch.nn.Identity(), query, 16, num_cross_attention_heads=2, init_scale=0.05)
    assert decoder.cross_attn[0].module.attention.num_heads == 2
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['num_heads'\\]"):
        PerceiverDecoder(torch.nn.Identity(), query, 16, num_heads=2)
    with pytest.raises(TypeError, match="got config and keyword arguments"):
        PerceiverDecoder(torch.nn.Identity(), query, 16, DecoderConfig(), num_cross_attention_heads=2)


def test_perceiver_ar_takes_0_11_arguments_by_keyword_and_position():
    from perceiver.model.core import PerceiverAR, PerceiverARConfig, TokenInputAdapterWithRotarySupport

    def adapter():
        return TokenInputAdapterWithRotarySupport(rotated_channels_per_head=4, vocab_size=50, max_seq_len=12,
                                                  num_input_channels=16)  # fmt: skip

    config = PerceiverARConfig(num_heads=2, num_self_attention_layers=3, cross_attention_dropout=0.25)
    torch.manual_seed(0)
    new = PerceiverAR(adapter(), config)
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning, match=r"PerceiverAR\(\) with perceiver-io 0.11's positional order"):
        positional = PerceiverAR(adapter(), 2, None, 3, 1, 4, 4, 0.25)  # (num_heads, max_heads_parallel, layers, ...)
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning, match=r"PerceiverAR\(\.\.\., config=PerceiverARConfig"):
        keywords = PerceiverAR(adapter(), num_heads=2, num_self_attention_layers=3, cross_attention_dropout=0.25)
    assert positional.config == keywords.config == config
    for model in (positional, keywords):
        for name, tensor in new.state_dict().items():
            assert torch.equal(model.state_dict()[name], tensor), name
    with pytest.raises(TypeError, match="2 positional arguments"):
        PerceiverAR(adapter(), config, 3)


def test_positions_takes_0_11_keywords():
    from perceiver.model.core import positions

    expected = positions(2, 4)
    with pytest.warns(DeprecationWarning, match=r"positions\(b=\.\.\.\) is deprecated, use positions\(batch_size"):
        torch.testing.assert_close(positions(b=2, n=4), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(positions(batch_size=2, seq_len=4), expected)
    shift = torch.tensor([[0], [2]])
    with pytest.warns(DeprecationWarning):
        assert positions(b=2, n=4, shift=shift).tolist() == [[0, 1, 2, 3], [0, 0, 0, 1]]
    with pytest.raises(TypeError, match="unexpected keyword argument 'm'"):
        positions(m=2)
    with pytest.raises(TypeError, match="multiple values for argument 'batch_size'"):
        positions(2, 4, b=2)


# ---------------------------------------------------------------- 0.11's public names


# names that 0.11's `__init__` files export (and 0.11's `perceiver.model.core.modules` defines), per module
NAMES_0_11 = {
    "perceiver.model.core": [
        # adapter
        "InputAdapter",
        "RotarySupport",
        "OutputAdapter",
        "ClassificationOutputAdapter",
        "QueryProvider",
        "TrainableQueryProvider",
        # config
        "EncoderConfig",
        "DecoderConfig",
        "ClassificationDecoderConfig",
        "PerceiverIOConfig",
        "PerceiverARConfig",
        # modules
        "MultiHeadAttention",
        "CrossAttention",
        "SelfAttention",
        "CrossAttentionLayer",
        "SelfAttentionLayer",
        "SelfAttentionBlock",
        "MLP",
        "Residual",
        "KVCache",
        "PerceiverEncoder",
        "PerceiverDecoder",
        "PerceiverIO",
        "PerceiverAR",
        "CausalSequenceModel",
        "CausalSequenceModelConfig",
        # position
        "positions",
        "RotaryPositionEmbedding",
        "FrequencyPositionEncoding",
        "FourierPositionEncoding",
    ],
    "perceiver.model.core.modules": [
        "MultiHeadAttention",
        "CrossAttention",
        "SelfAttention",
        "CrossAttentionLayer",
        "SelfAttentionLayer",
        "SelfAttentionBlock",
        "MLP",
        "Residual",
        "KVCache",
        "PerceiverEncoder",
        "PerceiverDecoder",
        "PerceiverIO",
        "PerceiverAR",
        "CausalSequenceModel",
    ],
    "perceiver.model.text.common": ["TextEncoder", "TextEncoderConfig", "TextInputAdapter", "TiedTextOutputAdapter"],
    "perceiver.model.text.mlm": [
        "MaskedLanguageModel",
        "MaskedLanguageModelConfig",
        "TextDecoder",
        "TextDecoderConfig",
        "TextEncoder",
        "TextEncoderConfig",
        "convert_checkpoint",
        "convert_config",
        "convert_model",
        "PerceiverMaskedLanguageModel",
        "PerceiverMaskedLanguageModelConfig",
        "LitMaskedLanguageModel",
    ],
    "perceiver.model.text.classifier": [
        "ClassificationDecoderConfig",
        "TextClassifier",
        "TextClassifierConfig",
        "TextEncoderConfig",
        "convert_checkpoint",
        "PerceiverTextClassifier",
        "PerceiverTextClassifierConfig",
        "LitTextClassifier",
        "convert_imdb_classifier_checkpoint",
    ],
    "perceiver.model.text.clm": [
        "CausalLanguageModel",
        "CausalLanguageModelConfig",
        "TextInputAdapter",
        "TextOutputAdapter",
        "convert_checkpoint",
        "PerceiverCausalLanguageModel",
        "PerceiverCausalLanguageModelConfig",
        "LitCausalLanguageModel",
    ],
    "perceiver.model.vision.image_classifier": [
        "ClassificationDecoderConfig",
        "ImageClassifier",
        "ImageClassifierConfig",
        "ImageEncoderConfig",
        "convert_checkpoint",
        "convert_config",
        "convert_model",
        "PerceiverImageClassifier",
        "PerceiverImageClassifierConfig",
        "PerceiverImageClassifierInputProcessor",
        "LitImageClassifier",
        "convert_mnist_classifier_checkpoint",
    ],
    "perceiver.model.vision.optical_flow": [
        "OpticalFlow",
        "OpticalFlowConfig",
        "OpticalFlowDecoderConfig",
        "OpticalFlowEncoderConfig",
        "convert_config",
        "convert_model",
        "OpticalFlowPerceiver",
        "OpticalFlowPerceiverConfig",
        "OpticalFlowPipeline",
    ],
    # exported by the package `__init__` files of earlier versions
    "perceiver.model.audio.symbolic": [
        "LitSymbolicAudioModel",
        "PerceiverSymbolicAudioModel",
        "PerceiverSymbolicAudioModelConfig",
        "SymbolicAudioModel",
        "SymbolicAudioModelConfig",
        "convert_checkpoint",
    ],
    "perceiver.data.audio": ["GiantMidiPianoDataModule", "MaestroV3DataModule"],
    "perceiver.data.text": [
        "BookCorpusDataModule",
        "BookCorpusOpenDataModule",
        "C4DataModule",
        "Enwik8DataModule",
        "ImdbDataModule",
        "Task",
        "TextPreprocessor",
        "WikiTextDataModule",
        "WikipediaDataModule",
    ],
    "perceiver.data.vision": ["MNISTDataModule", "MNISTPreprocessor"],
    # 0.11's script packages re-exported their data modules
    "perceiver.scripts.audio": ["GiantMidiPianoDataModule", "MaestroV3DataModule"],
    "perceiver.scripts.text": [
        "BookCorpusDataModule",
        "BookCorpusOpenDataModule",
        "C4DataModule",
        "Enwik8DataModule",
        "ImdbDataModule",
        "WikiTextDataModule",
        "WikipediaDataModule",
    ],
    "perceiver.scripts.vision": ["MNISTDataModule"],
    "perceiver.model.text": ["TextEncoderConfig", "TextInputAdapter"],
    "perceiver.model.vision": ["ImageEncoderConfig", "ImageInputAdapter"],
    # 0.11 backend-module names beyond the `__init__` exports
    "perceiver.model.text.mlm.backend": ["TextDecoder", "TextOutputAdapter", "TextDecoderConfig"],
    "perceiver.model.vision.image_classifier.backend": ["ImageEncoder", "ImageInputAdapter"],
    "perceiver.model.vision.optical_flow.backend": [
        "OpticalFlowInputAdapter",
        "OpticalFlowOutputAdapter",
        "OpticalFlowQueryProvider",
    ],
}

# old name -> the new spelling the warning names (names not listed are unchanged and must not warn)
RENAMED = {
    ("perceiver.model.core.modules", name): f"perceiver.model.core.{name}"
    for name in [
        "MultiHeadAttention",
        "CrossAttention",
        "SelfAttention",
        "SelfAttentionLayer",
        "MLP",
        "Residual",
        "KVCache",
        "PerceiverAR",
        "CausalSequenceModel",
    ]
}
RENAMED.update(
    {
        ("perceiver.model.text.common", "TextInputAdapter"): "perceiver.model.core.TokenInputAdapter",
        ("perceiver.model.text", "TextInputAdapter"): "perceiver.model.core.TokenInputAdapter",
        ("perceiver.model.text", "TextEncoderConfig"): "perceiver.model.text.common.TextEncoderConfig",
        ("perceiver.model.vision", "ImageEncoderConfig"): "perceiver.model.vision.image_classifier.ImageEncoderConfig",
        ("perceiver.model.vision", "ImageInputAdapter"): "image_classifier.backend.ImageInputAdapter",
        ("perceiver.model.text.common", "TiedTextOutputAdapter"): "perceiver.model.core.TiedTokenOutputAdapter",
        ("perceiver.model.text.mlm", "TextDecoder"): "perceiver.model.core.PerceiverDecoder",
        ("perceiver.model.text.mlm.backend", "TextDecoder"): "perceiver.model.core.PerceiverDecoder",
        ("perceiver.model.text.mlm.backend", "TextOutputAdapter"): "perceiver.model.core.TokenOutputAdapter",
        ("perceiver.model.text.clm", "TextInputAdapter"): "perceiver.model.core.TokenInputAdapterWithRotarySupport",
        ("perceiver.model.text.clm", "TextOutputAdapter"): "perceiver.model.core.TokenOutputAdapter",
        ("perceiver.model.vision.image_classifier.backend", "ImageEncoder"): "perceiver.model.core.PerceiverEncoder",
        ("perceiver.model.vision.optical_flow.backend", "OpticalFlowQueryProvider"): "InputQueryProvider",
    }
)


@pytest.mark.parametrize("module_name,name", [(m, n) for m, names in NAMES_0_11.items() for n in names])
def test_0_11_name_imports_and_warns_only_if_renamed(module_name, name):
    module = importlib.import_module(module_name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        obj = getattr(module, name)  # what `from module import name` does
    assert obj is not None
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    new_spelling = RENAMED.get((module_name, name))
    if new_spelling is None:
        assert not deprecations, [str(w.message) for w in deprecations]
    else:
        assert len(deprecations) == 1 and new_spelling in str(deprecations[0].message)
        assert f"{module_name}.{name} is deprecated" in str(deprecations[0].message)


def test_renamed_names_are_the_new_objects():
    import perceiver.model.core as core

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from perceiver.model.core.modules import MultiHeadAttention, PerceiverAR
        from perceiver.model.text.common import TextInputAdapter, TiedTextOutputAdapter
        from perceiver.model.text.mlm import TextDecoder

        assert MultiHeadAttention is core.MultiHeadAttention and PerceiverAR is core.PerceiverAR
        assert TextInputAdapter is core.TokenInputAdapter and TiedTextOutputAdapter is core.TiedTokenOutputAdapter
        assert TextDecoder is core.PerceiverDecoder
        # 0.11's causal LM output layer keeps its argument order (num_channels, vocab_size)
        adapter = clm.TextOutputAdapter(16, 50)
        assert isinstance(adapter, core.TokenOutputAdapter) and adapter.linear.weight.shape == (50, 16)
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchName'"):
        importlib.import_module("perceiver.model.text.mlm").NoSuchName  # noqa: B018


# ---------------------------------------------------------------- converted image classifiers at any resolution


@pytest.mark.slow
@pytest.mark.parametrize(
    "architecture,source_kwargs",
    [
        ("PerceiverForImageClassificationFourier", {}),
        ("PerceiverForImageClassificationConvProcessing", {"image_size": 16}),
    ],
)
def test_converted_image_classifier_takes_any_resolution(tmp_path, architecture, source_kwargs):
    from tests.test_image_classifier import tiny_source

    source = tiny_source(architecture, **source_kwargs)
    source.save_pretrained(tmp_path / "source")
    ic.convert_model(tmp_path / "converted", str(tmp_path / "source"))
    model = transformers.AutoModelForImageClassification.from_pretrained(tmp_path / "converted").eval()
    max_resolution = model.config.backend_config.encoder.max_resolution
    assert max_resolution == ((224, 224) if "Fourier" in architecture else (56, 56))  # the source's
    for height, width in [(12, 20), (32, 32), (9, 7), (40, 24)]:
        x = torch.randn(2, height, width, 3)
        with torch.no_grad():
            expected = source(inputs=x.permute(0, 3, 1, 2)).logits
            logits = model(pixel_values=x).logits
        assert expected.abs().max() > 0.1
        assert (logits - expected).abs().max() <= 1e-4, (height, width)
    # the saved image processor still gives the size the source used
    processor = transformers.AutoImageProcessor.from_pretrained(tmp_path / "converted")
    size = source.config.image_size
    assert (processor.size["height"], processor.size["width"]) == (size, size)
    assert model.config.backend_config.encoder.image_shape == (size, size, 3)


def test_image_classifier_without_max_resolution_takes_its_size_only():
    """0.11's models (no `max_resolution`): Fourier frequencies follow the configured grid, other sizes refused."""
    encoder = ic.ImageEncoderConfig(
        image_shape=(8, 8, 1),
        num_frequency_bands=2,
        num_cross_attention_heads=1,
        num_self_attention_heads=1,
        num_self_attention_layers_per_block=1,
    )
    decoder = ClassificationDecoderConfig(num_classes=2, num_output_query_channels=8, num_cross_attention_heads=1)
    config = ic.ImageClassifierConfig(encoder, decoder, num_latents=2, num_latent_channels=8)
    model = ic.ImageClassifier(config)
    with pytest.raises(ValueError, match=r"image size \(9, 8\), the model takes \(8, 8\) only"):
        model(torch.zeros(1, 9, 8, 1))
    conv = dataclasses.replace(encoder, input_adapter="conv", num_adapter_channels=4, max_resolution=(2, 2))
    model = ic.ImageClassifier(dataclasses.replace(config, encoder=conv))
    assert model(torch.zeros(1, 12, 10, 1)).shape == (1, 2)
    with pytest.raises(ValueError, match=r"image size \(4, 10\), height and width must be >= 5"):
        model(torch.zeros(1, 4, 10, 1))


def test_mlm_convert_config_takes_0_11_argument_a_perceiver_config():
    config = transformers.PerceiverConfig(
        num_latents=4,
        d_latents=16,
        d_model=8,
        num_blocks=1,
        num_self_attends_per_block=1,
        num_self_attention_heads=2,
        num_cross_attention_heads=1,
        qk_channels=8,
        vocab_size=30,
        max_position_embeddings=12,
    )
    converted = mlm.convert_config(config)  # 0.11 took the config, this library reads the model's layers
    assert converted == mlm.convert_config(transformers.PerceiverForMaskedLM(config))
    assert (converted.num_latents, converted.encoder.vocab_size, converted.decoder.max_seq_len) == (4, 30, 12)


@pytest.mark.parametrize(
    "architecture,kwargs",
    [
        ("PerceiverForImageClassificationFourier", dict(image_size=10, qk_channels=16)),
        ("PerceiverForImageClassificationLearned", dict(image_size=6)),
        ("PerceiverForImageClassificationConvProcessing", dict(image_size=20, cross_attention_shape_for_attention="q")),
        ("PerceiverForOpticalFlow", dict(train_size=[6, 10])),
    ],
)
def test_vision_convert_config_takes_0_11_argument_a_perceiver_config(architecture, kwargs):
    config = transformers.PerceiverConfig(
        num_latents=4,
        d_latents=16,
        num_blocks=1,
        num_self_attends_per_block=2,
        num_self_attention_heads=2,
        num_cross_attention_heads=1,
        num_labels=3,
        architectures=[architecture],
        **kwargs,
    )
    task = of if architecture == "PerceiverForOpticalFlow" else ic
    converted = task.convert_config(config)  # 0.11 took the config, this library reads the model's layers
    assert converted == task.convert_config(getattr(transformers, architecture)(config))
    assert (converted.num_latents, converted.num_latent_channels) == (4, 16)
    assert converted.encoder.num_self_attention_layers_per_block == 2


@pytest.mark.parametrize(
    "module,names",
    [
        ("image_classifier", ["convert_config", "convert_model", "copy_weights", "SOURCE_ARCHITECTURES"]),
        ("optical_flow", ["convert_config", "convert_model", "copy_weights"]),
    ],
)
def test_vision_conversion_names_at_their_0_11_module_warn(module, names):
    """0.11 had DeepMind conversion in `huggingface.py`; it is in `convert.py` now."""
    old = importlib.import_module(f"perceiver.model.vision.{module}.huggingface")
    new = importlib.import_module(f"perceiver.model.vision.{module}.convert")
    for name in names:
        with pytest.warns(DeprecationWarning, match=f"use perceiver.model.vision.{module}.convert.{name}"):
            assert getattr(old, name) is getattr(new, name)
    with pytest.raises(AttributeError, match="NoSuchName"):
        old.NoSuchName  # noqa: B018


def test_star_import_of_0_11_modules_path():
    scope = {}
    with pytest.warns(DeprecationWarning, match="use perceiver.model.core.MultiHeadAttention"):
        exec("from perceiver.model.core.modules import *", scope)
    import perceiver.model.core as core

    for name in ["MultiHeadAttention", "CrossAttentionLayer", "SelfAttentionBlock", "PerceiverEncoder", "PerceiverAR"]:
        assert scope[name] is getattr(core, name)
