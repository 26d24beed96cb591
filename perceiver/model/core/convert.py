"""Weight copying from transformers' official Perceiver models (DeepMind's) into this library's modules.

transformers' `PerceiverLayer` = attention (`attention.self` with `layernorm1`/`layernorm2`, `query`, `key`,
`value`, and `attention.output.dense`) followed by `layernorm` + `mlp` (`dense1`, `dense2`). This maps one such
layer onto a `CrossAttentionLayer` or `SelfAttentionLayer`, whatever model it belongs to.
"""

from typing import Dict

import torch
import torch.nn as nn

from perceiver.model.core.attention import CrossAttentionLayer, MultiHeadAttention, Residual, SelfAttentionLayer


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


def attention_shape(source: nn.Module) -> Dict[str, int]:
    """Heads and query/key and value channel counts of a transformers `PerceiverLayer`, read from its weights
    (transformers derives defaults differently from this library, e.g. cross-attention qk from the kv input)."""
    attention = source.attention.self
    return {
        "num_heads": attention.num_heads,
        "num_qk_channels": attention.query.out_features,
        "num_v_channels": attention.value.out_features,
    }


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
