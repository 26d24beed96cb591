"""Conversion of transformers' official Perceiver models (DeepMind's) into this library's: their configs read from
the source's layers, their weights copied into this library's modules, the result saved.

transformers' `PerceiverLayer` = attention (`attention.self` with `layernorm1`/`layernorm2`, `query`, `key`,
`value`, and `attention.output.dense`) followed by `layernorm` + `mlp` (`dense1`, `dense2`). This maps one such
layer onto a `CrossAttentionLayer` or `SelfAttentionLayer`, whatever model it belongs to.
"""

import logging
import os
from typing import Any, Dict, Tuple, Union

import torch
import torch.nn as nn

from perceiver.model.core.attention import CrossAttentionLayer, MultiHeadAttention, Residual, SelfAttentionLayer
from perceiver.model.core.huggingface import atomic_directory, source_details

logger = logging.getLogger(__name__)


def load_source_model(source_repo_id: str, *expected_architectures: str):
    """Loads an official 🤗 Perceiver model (hub id or local directory) after checking its architecture."""
    import transformers

    config = transformers.PerceiverConfig.from_pretrained(source_repo_id)
    architectures = config.architectures or []
    matches = [name for name in architectures if name in expected_architectures]
    if not matches:
        raise ValueError(
            f"source_repo_id={source_repo_id!r} holds a model of architectures {architectures}; "
            f"expected one of {list(expected_architectures)}"
        )
    model_class = getattr(transformers, matches[0])
    return model_class.from_pretrained(source_repo_id).eval()


def save_converted(
    model: Any, save_dir: Union[str, os.PathLike], source_repo_id: str, *preprocessors: Any, **kwargs: Any
) -> None:
    """Saves `model`, converted from `source_repo_id`, in `save_dir` with its tokenizer or image processor
    (`preprocessors`), all or nothing, with a model card naming the source. `kwargs` go to `save_pretrained` (e.g.
    `push_to_hub=True`)."""
    with atomic_directory(save_dir, **source_details(source_repo_id)) as tmp_dir:
        model.save_pretrained(tmp_dir, **kwargs)
        for preprocessor in preprocessors:
            preprocessor.save_pretrained(tmp_dir)
    logger.info("converted %s into %s", source_repo_id, save_dir)


def source_model(source: Any, architecture: str) -> nn.Module:
    """`source` itself if it is a transformers model, else (a `transformers.PerceiverConfig`, what perceiver-io 0.11's
    `convert_config` took) a model of class `architecture` built from it on the meta device, which allocates no
    memory, so that channel counts can be read from its layers."""
    import transformers

    if not isinstance(source, transformers.PerceiverConfig):
        return source
    with torch.device("meta"):
        return getattr(transformers, architecture)(source)


def encoder_config_fields(source: nn.Module) -> Dict[str, Any]:
    """The `EncoderConfig` fields equivalent to the encoder of transformers Perceiver model `source`: attention heads
    and channel counts read from its layers, the rest from its config. Raises a ValueError for what this library's
    encoder cannot do."""
    config, encoder = source.config, source.perceiver.encoder
    if not encoder.cross_attention.attention.use_query_residual:
        raise ValueError("source model uses use_query_residual=False, which this library's encoder does not support")
    if config.hidden_act != "gelu":
        raise ValueError(f"source model uses hidden_act={config.hidden_act!r}, only 'gelu' is supported")
    cross_attention = attention_shape(encoder.cross_attention)
    self_attention = attention_shape(encoder.self_attends[0])
    return dict(
        num_cross_attention_heads=cross_attention["num_heads"],
        num_cross_attention_qk_channels=cross_attention["num_qk_channels"],
        num_cross_attention_v_channels=cross_attention["num_v_channels"],
        cross_attention_widening_factor=widening_factor(encoder.cross_attention),
        num_self_attention_heads=self_attention["num_heads"],
        num_self_attention_qk_channels=self_attention["num_qk_channels"],
        num_self_attention_v_channels=self_attention["num_v_channels"],
        self_attention_widening_factor=widening_factor(encoder.self_attends[0]),
        num_self_attention_layers_per_block=len(encoder.self_attends),
        # transformers applies the same self-attention layers in each of its `num_blocks` blocks
        num_self_attention_blocks=config.num_blocks,
        first_self_attention_block_shared=True,
        dropout=config.attention_probs_dropout_prob,
        init_scale=config.initializer_range,
    )


def decoder_config_fields(decoding_cross_attention: nn.Module, source_config: Any) -> Dict[str, Any]:
    """The `DecoderConfig` fields equivalent to `decoding_cross_attention`, the `PerceiverLayer` of a transformers
    decoder, read from its layers (dropout and init scale from `source_config`, the model's `PerceiverConfig`)."""
    attention = attention_shape(decoding_cross_attention)
    return dict(
        num_cross_attention_heads=attention["num_heads"],
        num_cross_attention_qk_channels=attention["num_qk_channels"],
        num_cross_attention_v_channels=attention["num_v_channels"],
        cross_attention_widening_factor=widening_factor(decoding_cross_attention),
        cross_attention_residual=decoding_cross_attention.attention.use_query_residual,
        dropout=source_config.attention_probs_dropout_prob,
        init_scale=source_config.initializer_range,
    )


def fourier_position_fields(position_encoding: nn.Module) -> Dict[str, Union[int, Tuple[int, ...]]]:
    """`num_frequency_bands` and `max_resolution` of a transformers `PerceiverFourierPositionEncoding` (its Fourier
    features are this library's `FourierPositionEncoding` when positions are concatenated and cosines kept)."""
    if not position_encoding.concat_pos or position_encoding.sine_only:
        raise ValueError(
            f"source model's Fourier position encoding has concat_pos={position_encoding.concat_pos} and "
            f"sine_only={position_encoding.sine_only}; only concat_pos=True, sine_only=False are supported"
        )
    return {
        "num_frequency_bands": position_encoding.num_bands,
        "max_resolution": tuple(position_encoding.max_resolution),
    }


def widening_factor(source: nn.Module) -> int:
    """MLP widening factor of a transformers `PerceiverLayer`, read from its weights."""
    return source.mlp.dense1.out_features // source.mlp.dense1.in_features


def attention_shape(source: nn.Module) -> Dict[str, int]:
    """Heads and query/key and value channel counts of a transformers `PerceiverLayer`, read from its weights
    (transformers derives defaults differently from this library, e.g. cross-attention qk from the kv input)."""
    attention = source.attention.self
    return {
        "num_heads": attention.num_heads,
        "num_qk_channels": attention.query.out_features,
        "num_v_channels": attention.value.out_features,
    }


def copy_encoder_weights(src: nn.Module, target: nn.Module) -> None:
    """Copies the latents and the attention layers of a transformers `PerceiverModel` `src` (the `perceiver` of an
    official model) into a `PerceiverEncoder` built from `encoder_config_fields` (its input adapter is the
    caller's)."""
    _copy_param(src.embeddings.latents, target.latent_provider._query)
    copy_cross_attention_layer(src.encoder.cross_attention, target.cross_attn_1)
    for src_layer, dst_layer in zip(src.encoder.self_attends, target.self_attn_1, strict=True):
        copy_self_attention_layer(src_layer, dst_layer)


def copy_cross_attention_layer(source: nn.Module, target: CrossAttentionLayer) -> None:
    attention, mlp = target
    cross_attention = attention.module if isinstance(attention, Residual) else attention
    _copy_layer_norm(source.attention.self.layernorm1, cross_attention.q_norm)
    _copy_layer_norm(source.attention.self.layernorm2, cross_attention.kv_norm)
    _copy_attention(source.attention, cross_attention.attention)
    _copy_mlp(source, mlp.module)


def copy_self_attention_layer(source: nn.Module, target: SelfAttentionLayer) -> None:
    attention, mlp = target
    _copy_layer_norm(source.attention.self.layernorm1, attention.module.norm)
    _copy_attention(source.attention, attention.module.attention)
    _copy_mlp(source, mlp.module)


def _copy_attention(source: nn.Module, target: MultiHeadAttention) -> None:
    _copy_linear(source.self.query, target.q_proj)
    _copy_linear(source.self.key, target.k_proj)
    _copy_linear(source.self.value, target.v_proj)
    _copy_linear(source.output.dense, target.o_proj)


def _copy_mlp(source: nn.Module, target: nn.Sequential) -> None:
    norm, dense1, _, dense2 = target
    _copy_layer_norm(source.layernorm, norm)
    _copy_linear(source.mlp.dense1, dense1)
    _copy_linear(source.mlp.dense2, dense2)


def _copy_linear(source: nn.Linear, target: nn.Linear) -> None:
    _copy_param(source.weight, target.weight)
    _copy_param(source.bias, target.bias)


def _copy_layer_norm(source: nn.LayerNorm, target: nn.LayerNorm) -> None:
    _copy_param(source.weight, target.weight)
    _copy_param(source.bias, target.bias)
    if source.eps != target.eps:
        target.eps = source.eps


def _copy_param(source: torch.Tensor, target: torch.Tensor) -> None:
    if source.shape != target.shape:
        raise ValueError(f"cannot copy a parameter of shape {tuple(source.shape)} into one of {tuple(target.shape)}")
    with torch.no_grad():
        target.copy_(source)
