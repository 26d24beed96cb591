"""perceiver-io 0.11's public API beyond its package names: names at its module paths (core, conversion helpers,
scripts, data), its positional parameter orders and parameter names. Each shim delegates to the one implementation
and warns with the new spelling; where a shim computes, it is compared numerically with the new spelling or with
transformers' official classes."""

import dataclasses
import functools
import importlib
import inspect
import sys
import warnings
from types import SimpleNamespace

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import transformers
from PIL import Image
from safetensors.torch import load_file
from transformers.models.perceiver.modeling_perceiver import PerceiverLayer

from perceiver.model.core import (
    ActivationCheckpointing,
    ClassificationOutputAdapter,
    CrossAttention,
    CrossAttentionLayer,
    DecoderConfig,
    EncoderConfig,
    PerceiverDecoder,
    PerceiverEncoder,
    SelfAttention,
    SelfAttentionBlock,
    SelfAttentionLayer,
    TokenInputAdapter,
    TrainableQueryProvider,
)
from perceiver.model.text import mlm
from perceiver.model.vision import image_classifier as ic
from perceiver.model.vision import optical_flow as of

pytestmark = pytest.mark.usefixtures("one_thread")


def old_name(module: str, name: str, new: str):
    """Resolves 0.11's `module.name`, checking that it warns with the new spelling `new`."""
    with pytest.warns(DeprecationWarning, match=f"{module}.{name} is deprecated, use {new}"):
        return getattr(importlib.import_module(module), name)


# ---- names at 0.11's module paths ----


@pytest.mark.parametrize(
    "module,name,new,target",
    [
        ("perceiver.model.core.config", "CausalSequenceModelConfig", "perceiver.model.core.CausalSequenceModelConfig",
         "perceiver.model.core:CausalSequenceModelConfig"),
        ("perceiver.model.core.modules", "AbstractAttentionLayer", "perceiver.model.core.attention.AttentionLayer",
         "perceiver.model.core.attention:AttentionLayer"),
        ("perceiver.model.core.utils", "Residual", "perceiver.model.core.Residual", "perceiver.model.core:Residual"),
        ("perceiver.model.core.lightning", "LitPerceiverIO", "perceiver.model.core.lightning.LitModel",
         "perceiver.model.core.lightning:LitModel"),
        ("perceiver.model.core.lightning", "LitCausalSequenceModel",
         "perceiver.model.core.perceiver_ar.lightning.LitCausalSequenceModel",
         "perceiver.model.core.perceiver_ar.lightning:LitCausalSequenceModel"),
        ("perceiver.model.core.lightning", "is_checkpoint", "perceiver.model.core.checkpoint.is_checkpoint_path",
         "perceiver.model.core.checkpoint:is_checkpoint_path"),
        ("perceiver.model.core.huggingface", "PerceiverCausalSequenceModel",
         "perceiver.model.core.perceiver_ar.huggingface.PerceiverCausalSequenceModel",
         "perceiver.model.core.perceiver_ar.huggingface:PerceiverCausalSequenceModel"),
        ("perceiver.model.core.huggingface", "PerceiverCausalSequenceModelOutput",
         "transformers.modeling_outputs.CausalLMOutputWithPast",
         "transformers.modeling_outputs:CausalLMOutputWithPast"),
        ("perceiver.model.core.classifier", "ClassificationDecoder", "perceiver.model.core.PerceiverDecoder",
         "perceiver.model.core:PerceiverDecoder"),
        ("perceiver.model.core.classifier", "ClassificationOutputAdapter",
         "perceiver.model.core.ClassificationOutputAdapter", "perceiver.model.core:ClassificationOutputAdapter"),
        ("perceiver.model.core.classifier", "ClassificationDecoderConfig",
         "perceiver.model.core.ClassificationDecoderConfig", "perceiver.model.core:ClassificationDecoderConfig"),
    ],
)  # fmt: skip
def test_moved_names_resolve_to_the_one_implementation(module, name, new, target):
    target_module, attribute = target.split(":")
    assert old_name(module, name, new) is getattr(importlib.import_module(target_module), attribute)
    with pytest.raises(AttributeError):
        _ = importlib.import_module(module).NoSuchName


def test_is_checkpoint(tmp_path):
    is_checkpoint = old_name(
        "perceiver.model.core.lightning", "is_checkpoint", "perceiver.model.core.checkpoint.is_checkpoint_path"
    )
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(b"")
    assert is_checkpoint(str(ckpt))
    assert not is_checkpoint(str(tmp_path))  # a saved 🤗 model directory


def test_module_output_is_an_attribute_dict():
    from perceiver.model.core.utils import ModuleOutput

    output = ModuleOutput(last_hidden_state=torch.ones(1), kv_cache=None)
    assert output.last_hidden_state is output["last_hidden_state"]
    output.logits = torch.zeros(2)
    assert list(output) == ["last_hidden_state", "kv_cache", "logits"]
    del output.kv_cache
    with pytest.raises(AttributeError, match="kv_cache"):
        _ = output.kv_cache
    with pytest.raises(AttributeError):
        del output.kv_cache


# ---- positional orders of the core modules ----


def same_init(make_a, make_b):
    torch.manual_seed(0)
    a = make_a()
    torch.manual_seed(0)
    b = make_b()
    assert a.state_dict().keys() == b.state_dict().keys()
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    return a.eval(), b.eval()


def test_cross_and_self_attention_have_0_11_parameter_order():
    """0.11's positional calls `CrossAttention(num_heads, num_q_input_channels, num_kv_input_channels, num_qk_channels,
    num_v_channels, max_heads_parallel, causal_attention, ...)` and `SelfAttention(num_heads, num_channels, ...)`
    build the modules their keywords build, without a warning (the order is this library's too)."""
    x_q, x_kv = torch.randn(2, 3, 16), torch.randn(2, 5, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.manual_seed(0)
        keywords = CrossAttention(
            num_heads=2, num_q_input_channels=16, num_kv_input_channels=8, num_qk_channels=8, num_v_channels=4,
            causal_attention=True,
        ).eval()  # fmt: skip
        torch.manual_seed(0)
        positional = CrossAttention(2, 16, 8, 8, 4, None, True).eval()
        assert positional.attention.causal_attention and positional.attention.num_v_channels == 4
        assert torch.equal(keywords(x_q, x_kv), positional(x_q, x_kv))

        x = torch.randn(2, 5, 16)
        torch.manual_seed(0)
        keywords = SelfAttention(num_heads=4, num_channels=16, num_qk_channels=8, max_heads_parallel=2, qkv_bias=False)
        torch.manual_seed(0)
        positional = SelfAttention(4, 16, 8, None, 2, False, 0.0, False)
        assert positional.attention.q_proj.bias is None and positional.attention.max_heads_parallel == 2
        assert torch.equal(keywords.eval()(x), positional.eval()(x))


def test_self_attention_block_has_0_11_parameter_order():
    # 0.11: (num_layers, num_heads, num_channels, num_qk_channels, num_v_channels, num_rotary_layers,
    #        max_heads_parallel, causal_attention, widening_factor, dropout, residual_dropout, ...)
    block = SelfAttentionBlock(2, 2, 16, 8, 4, 1, None, True, 3, 0.0, 0.2)
    layer = block[0]
    attention = layer.attention
    assert (attention.num_qk_channels, attention.num_v_channels, attention.causal_attention) == (8, 4, True)
    assert block.num_rotary_layers == 1 and layer[1].module[1].out_features == 48 and layer[0].dropout.p == 0.2
    params = list(inspect.signature(SelfAttentionBlock).parameters)
    assert params[:6] == [
        "num_layers", "num_heads", "num_channels", "num_qk_channels", "num_v_channels", "num_rotary_layers"
    ]  # fmt: skip


def tiny_adapter():
    return TokenInputAdapter(vocab_size=10, max_seq_len=5, num_input_channels=8)


def test_perceiver_encoder_0_11_positional_order():
    adapter, x = tiny_adapter(), torch.randint(0, 10, (2, 5))
    config = EncoderConfig(
        num_cross_attention_heads=2,
        num_cross_attention_layers=2,
        num_self_attention_heads=2,
        num_self_attention_layers_per_block=1,
        num_self_attention_blocks=2,
        first_self_attention_block_shared=False,
        init_scale=0.05,
    )
    # 0.11's order after num_latent_channels: the EncoderConfig fields, residual_dropout before init_scale, then the
    # activation flags
    old_args = (2, None, None, 2, False, 1, 2, None, None, 1, 2, False, 1, 0.0, 0.0, 0.05, True, False)
    with pytest.warns(DeprecationWarning, match="PerceiverEncoder"):
        new, old = same_init(
            lambda: PerceiverEncoder(adapter, 4, 16, config, checkpointing=ActivationCheckpointing(enabled=True)),
            lambda: PerceiverEncoder(adapter, 4, 16, *old_args),
        )
    assert old.checkpointing == new.checkpointing == ActivationCheckpointing(enabled=True)
    assert hasattr(old, "self_attn_n") and hasattr(old, "cross_attn_n")
    assert torch.equal(new(x), old(x))
    # our own positional call (config, checkpointing) works without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert PerceiverEncoder(adapter, 4, 16, config, ActivationCheckpointing(enabled=True)).checkpointing.enabled


def test_perceiver_encoder_residual_dropout():
    # 0.11 took residual_dropout as a constructor argument (not a config field)
    encoder = PerceiverEncoder(tiny_adapter(), 4, 16, EncoderConfig(num_self_attention_layers_per_block=1),
                               residual_dropout=0.3)  # fmt: skip
    assert encoder.cross_attn_1[0].dropout.p == encoder.cross_attn_1[1].dropout.p == 0.3
    assert encoder.self_attn_1[0][0].dropout.p == encoder.self_attn_1[0][1].dropout.p == 0.3
    with pytest.warns(DeprecationWarning):
        encoder = PerceiverEncoder(tiny_adapter(), 4, 16, num_self_attention_layers_per_block=1, residual_dropout=0.2)
    assert encoder.self_attn_1[0][1].dropout.p == 0.2


def test_perceiver_decoder_0_11_positional_order():
    x_latent = torch.randn(2, 4, 16)

    def decoder(*args, **kwargs):
        adapter = ClassificationOutputAdapter(num_classes=3, num_output_query_channels=12)
        return PerceiverDecoder(adapter, TrainableQueryProvider(1, 12), 16, *args, **kwargs)

    config = DecoderConfig(
        num_cross_attention_heads=2, num_cross_attention_qk_channels=8, cross_attention_residual=False
    )
    with pytest.warns(DeprecationWarning, match="PerceiverDecoder"):
        new, old = same_init(lambda: decoder(config), lambda: decoder(2, 8, None, 1, False, 0.0, 0.02))
    assert isinstance(old.cross_attn[0], CrossAttention)  # no attention residual
    assert torch.equal(new(x_latent), old(x_latent))


# ---- 0.11's weight-copy helpers, compared with transformers' official classes ----


def perturbed(module):
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(0.0, 0.3)
    return module.eval()


@pytest.mark.parametrize("query_residual", [True, False])
def test_copy_cross_attention_layer_params_equals_transformers(query_residual):
    config = transformers.PerceiverConfig(d_latents=16, d_model=12, num_cross_attention_heads=2)
    source = perturbed(
        PerceiverLayer(config, is_cross_attention=True, qk_channels=8, v_channels=16, num_heads=2, q_dim=16, kv_dim=12,
                       widening_factor=2, use_query_residual=query_residual)
    )  # fmt: skip
    target = CrossAttentionLayer(2, 16, 12, num_qk_channels=8, num_v_channels=16, widening_factor=2,
                                 attention_residual=query_residual).eval()  # fmt: skip
    copy = old_name("perceiver.model.core.huggingface", "copy_cross_attention_layer_params",
                    "perceiver.model.core.convert.copy_cross_attention_layer")  # fmt: skip
    copy(source, target, query_residual=query_residual)
    x_q, x_kv = torch.randn(2, 3, 16), torch.randn(2, 7, 12)
    with torch.no_grad():
        expected = source(x_q, inputs=x_kv)[0]
        assert (target(x_q, x_kv) - expected).abs().max() <= 1e-4
    with pytest.raises(ValueError, match="query_residual"):
        copy(source, target, query_residual=not query_residual)


def test_copy_self_attention_block_params_equals_transformers():
    config = transformers.PerceiverConfig(d_latents=16)
    sources = [perturbed(PerceiverLayer(config, qk_channels=16, v_channels=16, num_heads=4, q_dim=16, kv_dim=16,
                                        widening_factor=2)) for _ in range(2)]  # fmt: skip
    target = SelfAttentionBlock(2, 4, 16, widening_factor=2).eval()
    copy = old_name("perceiver.model.core.huggingface", "copy_self_attention_block_params",
                    "perceiver.model.core.convert.copy_self_attention_layer")  # fmt: skip
    copy(sources, target)
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        expected = sources[1](sources[0](x)[0])[0]
        assert (target(x) - expected).abs().max() <= 1e-4
    with pytest.raises(ValueError, match="1 self-attention layers, target has 2"):
        copy(sources[:1], target)

    # the single-layer helpers
    copy_layer = old_name("perceiver.model.core.huggingface", "copy_self_attention_layer_params",
                          "perceiver.model.core.convert.copy_self_attention_layer")  # fmt: skip
    layer = SelfAttentionLayer(4, 16, widening_factor=2).eval()
    copy_layer(sources[0], layer)
    with torch.no_grad():
        assert (layer(x) - sources[0](x)[0]).abs().max() <= 1e-4
    fresh = SelfAttentionLayer(4, 16, widening_factor=2).eval()
    old_name("perceiver.model.core.huggingface", "copy_attention_params", "perceiver.model.core.convert")(
        sources[0], fresh.attention
    )
    old_name("perceiver.model.core.huggingface", "copy_mlp_params", "perceiver.model.core.convert")(
        sources[0], fresh[1].module
    )
    old_name("perceiver.model.core.huggingface", "copy_params", "perceiver.model.core.convert")(
        sources[0].attention.self.layernorm1, fresh[0].module.norm
    )
    with torch.no_grad():
        assert (fresh(x) - sources[0](x)[0]).abs().max() <= 1e-4
    copy_param = old_name("perceiver.model.core.huggingface", "copy_param", "perceiver.model.core.convert")
    with pytest.raises(ValueError, match="shape"):
        copy_param(torch.zeros(3), fresh[0].module.norm.weight)


def image_source():
    config = transformers.PerceiverConfig(
        num_latents=8, d_latents=24, num_blocks=2, num_self_attends_per_block=2, num_self_attention_heads=4,
        num_cross_attention_heads=1, self_attention_widening_factor=2, num_labels=5, image_size=16,
        architectures=["PerceiverForImageClassificationFourier"],
    )  # fmt: skip
    return perturbed(transformers.PerceiverForImageClassificationFourier(config))


def test_copy_image_classifier_params_equals_transformers():
    torch.manual_seed(1)
    source = image_source()
    target = ic.ImageClassifier(ic.convert_config(source.config)).eval()
    copy_encoder = old_name("perceiver.model.vision.image_classifier.huggingface", "copy_image_encoder_params",
                            "perceiver.model.vision.image_classifier.convert.copy_weights")  # fmt: skip
    copy_decoder = old_name("perceiver.model.core.huggingface", "copy_classification_decoder_params",
                            "perceiver.model.core.convert")  # fmt: skip
    copy_encoder(source.perceiver, target.encoder)
    copy_decoder(source.perceiver, target.decoder)
    x = torch.randn(2, 16, 16, 3)
    with torch.no_grad():
        expected = source(inputs=x.permute(0, 3, 1, 2)).logits
        assert expected.abs().max() > 0.1
        assert (target(x) - expected).abs().max() <= 1e-4


def test_copy_optical_flow_params_equals_transformers():
    torch.manual_seed(2)
    config = transformers.PerceiverConfig(num_latents=8, d_latents=16, num_blocks=2, num_self_attends_per_block=2,
                                          num_self_attention_heads=2, train_size=[8, 12], num_cross_attention_heads=2,
                                          architectures=["PerceiverForOpticalFlow"])  # fmt: skip
    source = perturbed(transformers.PerceiverForOpticalFlow(config))
    target = of.OpticalFlow(of.convert_config(source.config)).eval()
    module = "perceiver.model.vision.optical_flow.huggingface"
    new = "perceiver.model.vision.optical_flow.convert.copy_weights"
    old_name(module, "copy_flow_encoder_params", new)(source.perceiver, target.encoder)
    old_name(module, "copy_flow_decoder_params", new)(source.perceiver, target.decoder)
    x = torch.randn(2, 2, 27, 8, 12)
    with torch.no_grad():
        expected = source(inputs=x).logits
        assert expected.abs().max() > 0.01
        assert (target(x) - expected).abs().max() <= 1e-4


def test_copy_text_params_equals_transformers():
    torch.manual_seed(3)
    config = transformers.PerceiverConfig(vocab_size=262, max_position_embeddings=12, num_latents=8, d_latents=24,
                                          d_model=16, num_blocks=1, num_self_attends_per_block=2,
                                          num_self_attention_heads=2, num_cross_attention_heads=2, qk_channels=16,
                                          v_channels=24)  # fmt: skip
    source = perturbed(transformers.PerceiverForMaskedLM(config))
    target = mlm.MaskedLanguageModel(mlm.convert_config(config)).eval()
    old_name("perceiver.model.text.common.huggingface", "copy_text_encoder_params",
             "perceiver.model.text.mlm.convert.copy_text_encoder")(source.perceiver, target.encoder)  # fmt: skip
    old_name("perceiver.model.text.mlm.huggingface", "copy_text_decoder_params",
             "perceiver.model.text.mlm.convert.copy_text_decoder")(source, target.decoder)  # fmt: skip
    x = torch.randint(0, 262, (2, 12))
    with torch.no_grad():
        expected = source(inputs=x).logits
        assert (target(x) - expected).abs().max() <= 1e-4


# ---- 0.11's parameter names and orders of task APIs ----


@pytest.mark.parametrize(
    "convert_config,source_config",
    [
        (mlm.convert_config, transformers.PerceiverConfig(num_latents=4, d_latents=16, d_model=16,
                                                          num_self_attends_per_block=1, max_position_embeddings=8)),
        (ic.convert_config, image_source().config),
        (of.convert_config, transformers.PerceiverConfig(num_latents=4, d_latents=16, num_self_attends_per_block=1,
                                                         num_cross_attention_heads=2, train_size=[8, 12])),
    ],
)  # fmt: skip
def test_convert_config_takes_0_11_parameter_name(convert_config, source_config):
    assert "config" in inspect.signature(convert_config).parameters
    with pytest.warns(DeprecationWarning, match=r"convert_config\(config=\.\.\.\) is deprecated, use convert_config"):
        converted = convert_config(config=source_config)
    assert converted == convert_config(source_config)  # 0.11's positional call
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="multiple values"):
        convert_config(source_config, config=source_config)


def test_image_processor_0_11_positional_order():
    processor = ic.PerceiverImageClassifierInputProcessor(False, True)
    assert (processor.channels_last, processor.single_channel) == (False, True)
    default = ic.PerceiverImageClassifierInputProcessor()
    assert (default.channels_last, default.single_channel) == (True, False)


def test_optical_flow_output_adapter_output_channels():
    from perceiver.model.vision.optical_flow.backend import OpticalFlowOutputAdapter

    adapter = OpticalFlowOutputAdapter((2, 3), 8, 3, 10.0)  # 0.11's order
    x = torch.randn(1, 6, 8)
    assert adapter(x).shape == (1, 2, 3, 3)
    assert torch.allclose(adapter(x), adapter.linear(x).unflatten(1, (2, 3)) / 10.0)
    assert OpticalFlowOutputAdapter((2, 3), 8).linear.out_features == 2


# ---- scripts ----


class TinyClmData(pl.LightningDataModule):
    """Random token batches for a tiny causal LM."""

    def __init__(self, num_batches: int = 4):
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.batches = [{"input_ids": torch.randint(0, 32, (2, 12), generator=generator)} for _ in range(num_batches)]

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.batches, batch_size=None)


def tiny_clm_args():
    return ["--model.vocab_size=32", "--model.max_seq_len=12", "--model.max_latents=4", "--model.num_channels=16",
            "--model.num_heads=2", "--model.num_self_attention_layers=1"]  # fmt: skip


def test_cli_takes_0_11_positional_run_and_any_data_module(monkeypatch, tmp_path):
    from perceiver.model.text.clm import LitCausalLanguageModel
    from perceiver.scripts.cli import CLI

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["script", f"--data={__name__}.TinyClmData", *tiny_clm_args()])
    with pytest.warns(DeprecationWarning, match=r"CLI\(model_class, run\) is deprecated.*CLI\(model_class, run=run\)"):
        cli = CLI(LitCausalLanguageModel, False)  # 0.11: CLI(model_class, run=True, **LightningCLI kwargs)
    assert isinstance(cli.model, LitCausalLanguageModel) and isinstance(cli.datamodule, TinyClmData)
    assert cli.model.hparams.num_channels == 16
    # 0.11 passed further LightningCLI arguments on
    cli = CLI(LitCausalLanguageModel, run=False, seed_everything_default=7, args=tiny_clm_args()[:2] + [
        f"--data={__name__}.TinyClmData", *tiny_clm_args()[2:]])  # fmt: skip
    assert cli.config.seed_everything == 7


def test_cosine_with_warmup_0_11_positional_order():
    from perceiver.scripts.lrs import CosineWithWarmupLR

    def lrs(scheduler, n):
        values = []
        for _ in range(n):
            values.append(scheduler.get_last_lr()[0])
            scheduler.optimizer.step()
            scheduler.step()
        return values

    def optimizer():
        return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)

    # 0.11: (optimizer, training_steps, warmup_steps, num_cycles, min_fraction)
    old = lrs(CosineWithWarmupLR(optimizer(), 10, 2, 0.5, 0.1), 12)
    new = lrs(CosineWithWarmupLR(optimizer(), warmup_steps=2, training_steps=10, num_cycles=0.5, min_fraction=0.1), 12)
    assert old == new and old[2] == 1.0 and old[10] == pytest.approx(0.1)
    # 0.11's default training_steps=0 means "not set yet" (the CLI or the FSDP model sets it from the trainer)
    scheduler = CosineWithWarmupLR(optimizer(), warmup_steps=2, min_fraction=0.1)
    assert scheduler.training_steps == 0 and scheduler.length_unset and scheduler.get_last_lr() == [0.0]
    scheduler.training_steps = 10
    assert lrs(scheduler, 12) == new


@pytest.mark.slow
def test_lit_causal_language_model_fsdp_of_0_11(tmp_path):
    from perceiver.scripts.lrs import CosineWithWarmupLR
    from perceiver.scripts.text.clm_fsdp import LitCausalLanguageModelFSDP

    norms = []
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning, match="LitCausalLanguageModelFSDP is deprecated"):
        model = LitCausalLanguageModelFSDP(
            functools.partial(torch.optim.SGD, lr=0.5),
            functools.partial(CosineWithWarmupLR, warmup_steps=1),
            max_grad_norm=1e-3,
            vocab_size=32, max_seq_len=12, max_latents=4, num_channels=16, num_heads=2, num_self_attention_layers=1,
        )  # fmt: skip
    original = model.on_before_optimizer_step

    def record(optimizer):
        original(optimizer)
        norms.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])).item())

    model.on_before_optimizer_step = record
    trainer = pl.Trainer(accelerator="cpu", max_steps=3, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(model, datamodule=TinyClmData())
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(trainer.optimizers[0], torch.optim.SGD) and isinstance(scheduler, CosineWithWarmupLR)
    assert scheduler.training_steps == 3 and scheduler.last_epoch == 3  # stepped per optimizer step
    assert len(norms) == 3 and max(norms) <= 1e-3 * (1 + 1e-4)  # clipped to max_grad_norm


def test_side_by_side_video_of_0_11(tmp_path):
    from perceiver.processing.video import write_video
    from perceiver.scripts.video import create_side_by_side_video

    rng = np.random.default_rng(0)
    frames_1 = [rng.integers(0, 256, (40, 60, 3), dtype=np.uint8) for _ in range(4)]
    frames_2 = [rng.integers(0, 256, (40, 60, 3), dtype=np.uint8) for _ in range(3)]
    write_video(tmp_path / "a.avi", frames_1, fps=24)
    write_video(tmp_path / "b.avi", frames_2, fps=24)
    out = tmp_path / "sbs.avi"
    assert create_side_by_side_video(tmp_path / "a.avi", tmp_path / "b.avi", max_size=30, axis=1, output_path=out) == 3
    from perceiver.processing.video import read_frame_pairs

    pairs = list(read_frame_pairs(out))
    assert len(pairs) == 2 and pairs[0][0].shape == (20, 60, 3)  # each scaled to 20x30, side by side


# ---- data ----


def test_vision_transform_helpers_of_0_11():
    module = "perceiver.data.vision.common"
    ImagePreprocessor = old_name(module, "ImagePreprocessor", "perceiver.data.vision.preprocessor.ImagePreprocessor")
    lift_transform = old_name(module, "lift_transform", "perceiver.data.vision.preprocessor.lift_transform")
    channels_to_last = old_name(module, "channels_to_last", "perceiver.data.vision.preprocessor.channels_to_last")

    x = torch.arange(24.0).reshape(2, 3, 4)
    assert torch.equal(channels_to_last(x), x.permute(1, 2, 0))
    # 0.11: ImagePreprocessor(transform) applies any per-image transform, batches stack
    preprocessor = ImagePreprocessor(lambda img: torch.as_tensor(np.asarray(img), dtype=torch.float32) / 2)
    images = [np.full((2, 2), 4, np.uint8), np.full((2, 2), 8, np.uint8)]
    assert torch.equal(preprocessor.preprocess(images[0]), torch.full((2, 2), 2.0))
    assert torch.equal(preprocessor.preprocess_batch(images), torch.stack([torch.full((2, 2), v) for v in (2.0, 4.0)]))
    examples = lift_transform(lambda img: img * 2)({"image": [1, 2], "label": [0, 1]})
    assert examples == {"image": [2, 4], "label": [0, 1]}


def test_mnist_and_imagenet_transforms_of_0_11():
    from perceiver.data.vision import ImageNetPreprocessor, MNISTPreprocessor

    image = Image.fromarray(np.arange(28 * 28, dtype=np.uint8).reshape(28, 28) % 251)
    mnist_transform = old_name("perceiver.data.vision.mnist", "mnist_transform",
                               r"MNISTDataModule\(normalize=...\).image_processor")  # fmt: skip
    with pytest.warns(DeprecationWarning):
        expected = MNISTPreprocessor(normalize=True, channels_last=False).preprocess(image)
    assert torch.equal(mnist_transform(True, False)(image), expected)
    assert mnist_transform()(image).shape == (28, 28, 1)
    torch.manual_seed(0)
    cropped = mnist_transform(normalize=False, random_crop=20)(image)
    assert cropped.shape == (20, 20, 1)
    # the crop is a window of the image (values in [0, 1] without normalize)
    full = np.asarray(image, dtype=np.float32) / 255.0
    windows = [full[y : y + 20, x : x + 20] for y in range(9) for x in range(9)]
    assert min(np.abs(w - cropped[..., 0].numpy()).max() for w in windows) < 1e-6
    with pytest.raises(ValueError, match="random_crop=30 is larger than the image"):
        mnist_transform(random_crop=30)(image)

    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 320, 3), dtype=np.uint8))
    valid_transform = old_name("perceiver.data.vision.imagenet", "imagenet_valid_transform",
                               r"ImageNetDataModule\(\).image_processor")  # fmt: skip
    with pytest.warns(DeprecationWarning):
        expected = ImageNetPreprocessor(crop_size=256, size=64).preprocess(rgb)
    assert torch.equal(valid_transform(256, 64, True)(rgb), expected)
    assert valid_transform(256, 64, False)(rgb).shape == (3, 64, 64)
    assert (
        old_name("perceiver.data.vision.imagenet", "ImageNetPreprocessor", "perceiver.data.vision.ImageNetPreprocessor")
        is ImageNetPreprocessor
    )
    assert old_name("perceiver.data.vision.mnist", "MNISTPreprocessor", "perceiver.data.vision.MNISTPreprocessor") is (
        MNISTPreprocessor
    )


def mnist_folder(tmp_path):
    from tests.test_data_vision import digit_images, write_image_folder

    images, targets = digit_images()
    write_image_folder(tmp_path / "mnist" / "train", images[:60], targets[:60], size=(28, 28))
    write_image_folder(tmp_path / "mnist" / "test", images[60:80], targets[60:80], size=(28, 28))
    return str(tmp_path / "mnist")


def test_mnist_data_module_options_of_0_11(tmp_path):
    from perceiver.data.vision import MNISTDataModule

    source = mnist_folder(tmp_path)
    common = dict(source=source, valid_size=10, batch_size=50, num_workers=0, dataset_dir=str(tmp_path / "d"))
    dm = MNISTDataModule(**common, normalize=True, random_crop=24, shuffle=False)
    dm.setup()
    train, again = next(iter(dm.train_dataloader())), next(iter(dm.train_dataloader()))
    assert train["pixel_values"].shape == (50, 24, 24, 1)  # 0.11: random crops of training images, no resize
    assert torch.equal(train["labels"], again["labels"])  # shuffle=False
    valid = next(iter(dm.val_dataloader()))["pixel_values"]
    image = dm.splits()["valid"][0]["image"]
    expected = torch.from_numpy(np.asarray(image.convert("L"), dtype=np.float32) / 255.0 * 2 - 1)  # 0.11: [-1, 1]
    assert valid.shape == (10, 28, 28, 1) and (valid[0, ..., 0] - expected).abs().max() < 1e-6

    dm = MNISTDataModule(**common, normalize=False, channels_last=False)
    dm.setup()
    assert dm.image_shape == (1, 28, 28)
    valid = next(iter(dm.val_dataloader()))["pixel_values"]
    assert valid.shape == (10, 1, 28, 28) and 0.0 <= valid.min() and valid.max() <= 1.0
    with pytest.raises(ValueError, match="random_crop=29"):
        MNISTDataModule(**common, random_crop=29)


def test_mnist_data_module_0_11_positional_order(tmp_path):
    from perceiver.data.vision import MNISTDataModule

    # 0.11: (dataset_dir, normalize, channels_last, random_crop, batch_size, num_workers, pin_memory, shuffle)
    with pytest.warns(DeprecationWarning, match=r"MNISTDataModule\(\) with perceiver-io 0.11's positional order"):
        dm = MNISTDataModule(str(tmp_path / "d"), False, True, None, 16, 0, False, False)
    h = dm.hparams
    assert (h.dataset_dir, h.normalize, h.channels_last, h.random_crop) == (str(tmp_path / "d"), False, True, None)
    assert (h.batch_size, h.num_workers, h.pin_memory, h.shuffle, h.source) == (16, 0, False, False, "ylecun/mnist")
    with pytest.raises(TypeError, match="multiple values"):
        MNISTDataModule(str(tmp_path / "d"), False, batch_size=4, num_workers=0, normalize=True)


def test_optical_flow_processor_of_0_11():
    sys.modules.pop("perceiver.data.vision.optical_flow", None)
    with pytest.warns(DeprecationWarning, match="perceiver.data.vision.optical_flow is deprecated"):
        from perceiver.data.vision.optical_flow import OpticalFlowProcessor, write_optical_flow_video  # noqa: F401
    torch.manual_seed(4)
    config = transformers.PerceiverConfig(num_latents=8, d_latents=16, num_blocks=1, num_self_attends_per_block=1,
                                          num_self_attention_heads=2, num_cross_attention_heads=2, train_size=[8, 12],
                                          architectures=["PerceiverForOpticalFlow"])  # fmt: skip
    source = perturbed(transformers.PerceiverForOpticalFlow(config))
    model = of.OpticalFlow(of.convert_config(source.config)).eval()
    of.huggingface.copy_weights(source, model)
    rng = np.random.default_rng(0)
    pairs = [tuple(rng.integers(0, 256, (14, 20, 3), dtype=np.uint8) for _ in range(2)) for _ in range(2)]

    processor = OpticalFlowProcessor(patch_size=(8, 12), patch_min_overlap=4, flow_scale_factor=20)
    inputs = processor.preprocess_batch(pairs)
    assert inputs.shape == (2, 6, 2, 27, 8, 12)  # 3x2 patches of 8x12 cover 14x20
    assert torch.equal(processor.preprocess(pairs[1]), inputs[1])
    flow = processor.process(model, pairs, batch_size=3)
    assert flow.shape == (2, 14, 20, 2)
    # the same as the `optical-flow` pipeline's tiling and blending, by the transformers source model itself
    from perceiver.model.vision.optical_flow.pipeline import blend_tiles, tile_origins

    origins = tile_origins((14, 20), (8, 12), 4)
    with torch.no_grad():
        for i in range(2):
            tiles = source(inputs=inputs[i]).logits.numpy() * 20
            assert np.abs(flow[i].numpy() - blend_tiles(tiles, origins, (14, 20))).max() <= 1e-4
    with pytest.raises(ValueError, match="patch_min_overlap=12"):
        OpticalFlowProcessor(patch_size=(8, 12), patch_min_overlap=12)
    with pytest.raises(ValueError, match=r"at least patch_size \(8, 12\)"):
        processor.preprocess((np.zeros((6, 20, 3)), np.zeros((6, 20, 3))))
    with pytest.raises(ValueError, match="predictions hold 3 patches"):
        processor.postprocess(torch.zeros(3, 8, 12, 2), (14, 20))


def test_midi_event_classes_of_0_11():
    from perceiver.processing import midi

    module, new = "perceiver.data.audio.midi_processor", "perceiver.processing.midi.MidiTokenizer"
    Event = old_name(module, "Event", new)
    for token, (kind, value) in {0: ("note_on", 0), 128: ("note_off", 0), 300: ("time_shift", 44),
                                 midi.VELOCITY_OFFSET + 31: ("velocity", 31)}.items():  # fmt: skip
        event = Event.from_int(token)
        assert (event.type, event.value, event.to_int()) == (kind, value, token)
    SplitNote = old_name(module, "SplitNote", new)
    assert SplitNote("note_on", 0.5, 60, 100).value == 60
    assert old_name(module, "SustainAdapter", new)(1.0, "down").start == 1.0
    manager = old_name(module, "SustainDownManager", new)(1.0, 3.0)
    notes = [SimpleNamespace(start=1.1, end=1.2, pitch=60), SimpleNamespace(start=1.5, end=1.6, pitch=60),
             SimpleNamespace(start=1.7, end=3.5, pitch=62)]  # fmt: skip
    for note in notes:
        manager.add_managed_note(note)
    manager.transposition_notes()
    # held until the next onset of the same pitch, else until the release (or longer if played longer)
    assert [note.end for note in notes] == [1.5, 3.0, 3.5]


def test_bookcorpusopen_module_of_0_11():
    from perceiver.data.text import BookCorpusOpenDataModule

    assert (
        old_name(
            "perceiver.data.text.bookcorpusopen",
            "BookCorpusOpenDataModule",
            "perceiver.data.text.BookCorpusOpenDataModule",
        )  # fmt: skip
        is BookCorpusOpenDataModule
    )


def test_token_input_adapter_with_rotary_support_0_11_arguments():
    from perceiver.model.core import TokenInputAdapterWithRotarySupport

    # 0.11: (rotated_channels_per_head, vocab_size, max_seq_len, num_input_channels, abs_pos_emb)
    adapter = TokenInputAdapterWithRotarySupport(4, 10, 8, 16, False)
    keywords = TokenInputAdapterWithRotarySupport(
        rotated_channels_per_head=4, vocab_size=10, max_seq_len=8, num_input_channels=16, abs_pos_emb=False
    )
    assert (
        set(adapter.state_dict()) == set(keywords.state_dict()) == {"txt_embedding.weight", "frq_pos_encoding.inv_freq"}
    )
    x, frq = adapter(torch.randint(0, 10, (2, 5)))
    assert x.shape == (2, 5, 16) and frq.shape[:2] == (2, 5)


# ---- 0.11's key/value cache protocol of the attention modules ----


def rotary(b: int, n: int, shift=None):
    from perceiver.model.core import FrequencyPositionEncoding, RotaryPositionEmbedding, positions

    return RotaryPositionEmbedding(FrequencyPositionEncoding(dim=4)(positions(b, n, shift=shift)), right_align=True)


def test_cross_attention_layer_0_11_cache_protocol():
    torch.manual_seed(0)
    layer = CrossAttentionLayer(2, 16, 16, num_qk_channels=8, num_v_channels=8, causal_attention=True).eval()
    x_q, prefix = torch.randn(2, 5, 16), torch.randn(2, 3, 16)
    pad_mask = torch.zeros(2, 8, dtype=torch.bool)
    pad_mask[1, :1] = True
    empty = layer.empty_kv_cache(x_q)
    assert isinstance(empty, tuple) and empty[0].shape == (2, 0, 8)
    with pytest.warns(DeprecationWarning, match="0.11's protocol"):
        full = layer(x_q, x_kv_prefix=prefix, pad_mask=pad_mask, rot_pos_emb_q=rotary(2, 8, pad_mask.sum(1, True)),
                     rot_pos_emb_k=rotary(2, 8, pad_mask.sum(1, True)), kv_cache=empty)  # fmt: skip
    assert full.kv_cache[0].shape == (2, 8, 8) and empty[0].shape == (2, 0, 8)  # the cache passed is not changed
    # incremental: prefix and one latent, then one latent at a time (positions without the padding shift: the
    # cached keys are 0.11's, before rotary embedding, so the shift cancels out)
    with pytest.warns(DeprecationWarning):
        output = layer(x_q[:, :1], x_kv_prefix=prefix, pad_mask=pad_mask[:, :4], rot_pos_emb_q=rotary(2, 4),
                       rot_pos_emb_k=rotary(2, 4), kv_cache=empty)  # fmt: skip
        hidden, cache = [output.last_hidden_state], output.kv_cache
        for i in range(1, 5):
            output = layer(x_q[:, i : i + 1], x_kv_prefix=prefix[:, :0], pad_mask=pad_mask[:, : 4 + i],
                           rot_pos_emb_q=rotary(2, 4 + i), rot_pos_emb_k=rotary(2, 4 + i), kv_cache=cache)  # fmt: skip
            hidden.append(output.last_hidden_state)
            cache = output.kv_cache
    assert (torch.cat(hidden, dim=1) - full.last_hidden_state).abs().max() <= 1e-5
    assert (cache[0] - full.kv_cache[0]).abs().max() <= 1e-5 and (cache[1] - full.kv_cache[1]).abs().max() <= 1e-5
    # the same computation as this library's cache
    new_cache = layer.attention.empty_kv_cache(2)
    expected = layer(x_q, x_kv_prefix=prefix, pad_mask=pad_mask, rot_pos_emb_q=rotary(2, 8, pad_mask.sum(1, True)),
                     rot_pos_emb_k=rotary(2, 8, pad_mask.sum(1, True)), kv_cache=new_cache)  # fmt: skip
    assert torch.equal(expected, full.last_hidden_state) and torch.equal(new_cache.values, full.kv_cache[1])


def test_self_attention_block_0_11_cache_protocol():
    torch.manual_seed(0)
    block = SelfAttentionBlock(3, 2, 16, num_rotary_layers=2, causal_attention=True).eval()
    x = torch.randn(2, 6, 16)
    with pytest.warns(DeprecationWarning, match="0.11's protocol"):
        init = []
        full = block(x, rot_pos_emb=rotary(2, 6), kv_cache=init)
        hidden, cache = [], init
        for i in range(6):
            output = block(x[:, i : i + 1], rot_pos_emb=rotary(2, i + 1), kv_cache=cache)
            hidden.append(output.last_hidden_state)
            cache = output.kv_cache
    assert init == [] and len(full.kv_cache) == 3 and full.kv_cache[0][0].shape == (2, 6, 16)
    assert (torch.cat(hidden, dim=1) - full.last_hidden_state).abs().max() <= 1e-5
    for (k, v), (k_ref, v_ref) in zip(cache, full.kv_cache):
        assert (k - k_ref).abs().max() <= 1e-5 and (v - v_ref).abs().max() <= 1e-5
    assert torch.equal(block(x, rot_pos_emb=rotary(2, 6)), full.last_hidden_state)


def test_causal_sequence_model_0_11_cache_protocol_passes_prefix_len_on():
    from perceiver.model.core import CausalSequenceModel, CausalSequenceModelConfig

    torch.manual_seed(0)
    config = CausalSequenceModelConfig(vocab_size=50, max_seq_len=12, max_latents=8, num_channels=16, num_heads=2,
                                       num_self_attention_layers=2, output_norm=True)  # fmt: skip
    model = CausalSequenceModel(config).eval()
    x = torch.randint(50, (2, 12))
    pad_mask = torch.zeros(2, 12, dtype=torch.bool)
    pad_mask[1, :2] = True
    init = []
    with pytest.warns(DeprecationWarning):
        reference = model(x, prefix_len=4, pad_mask=pad_mask, kv_cache=init)
        assert init == []  # 0.11 left the list passed empty: it starts the next sequence, too
        output = model(x[:, :6], prefix_len=4, pad_mask=pad_mask[:, :6], kv_cache=init)
    logits, cache = [output.logits], output.kv_cache
    for i in range(6, 12):  # 0.11 passed the prompt's prefix_len on with the cache
        output = model(x[:, i : i + 1], prefix_len=4, pad_mask=pad_mask[:, : i + 1], kv_cache=cache)
        logits.append(output.logits)
        cache = output.kv_cache
    assert (torch.cat(logits, dim=1) - reference.logits).abs().max() <= 1e-5
    # this library's caches still refuse a prefix_len with cached positions
    own = model.empty_kv_cache(2)
    model(x[:, :6], prefix_len=4, kv_cache=own)
    with pytest.raises(ValueError, match="prefix_len=4 must be 0 when kv_cache holds positions"):
        model(x[:, 6:7], prefix_len=4, kv_cache=own)


class MockImageData(pl.LightningDataModule):
    """A data module of the user's own, as 0.11's tests passed to the scripts' CLIs."""

    def __init__(self):
        super().__init__()
        self.image_shape = (8, 8, 1)
        self.num_classes = 3


def test_script_cli_instantiates_a_given_data_module_class_as_0_11(monkeypatch, tmp_path):
    from perceiver.model.vision.image_classifier import LitImageClassifier
    from perceiver.scripts.vision.image_classifier import ImageClassifierCLI

    monkeypatch.chdir(tmp_path)
    args = ["--trainer.accelerator=cpu", "--trainer.devices=1", "--model.num_latents=4",
            "--model.num_latent_channels=16", "--model.encoder.num_frequency_bands=2"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["script", *args])
    # 0.11: a data module class that is no base of the script's data modules is used as it is (no --data=...)
    cli = ImageClassifierCLI(model_class=LitImageClassifier, datamodule_class=MockImageData, run=False)
    assert type(cli.datamodule) is MockImageData
    assert (
        tuple(cli.model.hparams.encoder["image_shape"]) == (8, 8, 1) and cli.model.hparams.decoder["num_classes"] == 3
    )
    # 0.11's name of the backend model
    with pytest.warns(DeprecationWarning, match=r"LitImageClassifier.model is deprecated.*backend_model"):
        assert cli.model.model is cli.model.backend_model


# ---- 0.11's conversion of Lightning checkpoints in memory, config helpers ----


@pytest.mark.parametrize(
    "name,model_class",
    [
        ("mlm", "perceiver.model.text.mlm:PerceiverMaskedLanguageModel"),
        ("txt_clf", "perceiver.model.text.classifier:PerceiverTextClassifier"),
        ("clm", "perceiver.model.text.clm:PerceiverCausalLanguageModel"),
        ("img_clf", "perceiver.model.vision.image_classifier:PerceiverImageClassifier"),
    ],
)
def test_from_checkpoint_of_0_11(fixtures_dir, tmp_path, name, model_class):
    from tests.test_compat_0_11_checkpoint import _outputs, write_legacy_checkpoint

    module_name, class_name = model_class.split(":")
    model_class = getattr(importlib.import_module(module_name), class_name)
    path = write_legacy_checkpoint(fixtures_dir, name, tmp_path / f"{name}.ckpt")
    with pytest.warns(DeprecationWarning, match=f"{class_name}.from_checkpoint is deprecated"):
        model = model_class.from_checkpoint(str(path))
    assert type(model) is model_class and not model.training
    expected = load_file(fixtures_dir / name / "expected.safetensors")
    assert (_outputs(model, name, expected, fixtures_dir) - expected["logits"]).abs().max() <= 1e-4


def test_from_checkpoint_without_lightning_wrapper():
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="OpticalFlowPerceiver has no Lightning"):
        of.OpticalFlowPerceiver.from_checkpoint("flow.ckpt")


def test_config_helpers_of_0_11():
    from perceiver.model.core import CausalSequenceModelConfig, PerceiverARConfig

    config = CausalSequenceModelConfig.create(vocab_size=100, num_heads=2, lr=1e-3, params=None)  # hparams of 0.11
    assert (config.vocab_size, config.num_heads, config.max_seq_len) == (100, 2, 4096)
    base = config.base_kwargs()
    assert set(base) == {f.name for f in dataclasses.fields(PerceiverARConfig)} and base["num_heads"] == 2
    assert "num_heads" not in config.base_kwargs(exclude=("num_heads",))

    adapter = tiny_adapter()
    shared = PerceiverEncoder(
        adapter, 4, 16, EncoderConfig(num_self_attention_blocks=2, num_self_attention_layers_per_block=1)
    )
    assert not shared.extra_self_attention_block and not shared.extra_cross_attention_layer
    own = PerceiverEncoder(adapter, 4, 16, EncoderConfig(num_cross_attention_layers=2, num_self_attention_blocks=2,
                                                         first_self_attention_block_shared=False,
                                                         num_self_attention_layers_per_block=1))  # fmt: skip
    assert own.extra_self_attention_block and own.extra_cross_attention_layer


def test_lit_causal_language_model_to_hgf_model_of_0_11():
    from perceiver.model.text.clm import LitCausalLanguageModel, PerceiverCausalLanguageModel

    torch.manual_seed(0)
    lit_model = LitCausalLanguageModel(vocab_size=32, max_seq_len=12, max_latents=4, num_channels=16, num_heads=2,
                                       num_self_attention_layers=1).eval()  # fmt: skip
    with pytest.warns(DeprecationWarning, match="to_hgf_model is deprecated"):
        model = lit_model.to_hgf_model()
    assert isinstance(model, PerceiverCausalLanguageModel) and model.backend_model is lit_model.backend_model
    x = torch.randint(0, 32, (2, 12))
    with torch.no_grad():
        expected = lit_model.backend_model(x, prefix_len=8).logits
        assert torch.equal(model.eval()(input_ids=x, prefix_len=8).logits, expected)
