"""perceiver-io 0.11 model classes whose constructor changed (thin subclasses of the current ones), and its weight-copy
helpers (thin wrappers of `perceiver.model.core.convert`)."""

from typing import Sequence

import torch
import torch.nn as nn

from perceiver.model.core.adapter import TokenOutputAdapter
from perceiver.model.core.attention import CrossAttentionLayer, MultiHeadAttention, Residual, SelfAttentionLayer
from perceiver.model.core.convert import (
    _copy_attention,
    _copy_linear,
    _copy_mlp,
    _copy_param,
    copy_cross_attention_layer,
    copy_self_attention_layer,
)


class TextOutputAdapter(TokenOutputAdapter):
    """perceiver-io 0.11's causal LM output layer: a `TokenOutputAdapter` with arguments in 0.11's order."""

    def __init__(self, num_channels: int, vocab_size: int):
        super().__init__(vocab_size=vocab_size, num_output_query_channels=num_channels)


# ---- perceiver-io 0.11's weight-copy helpers (perceiver.model.core.huggingface.copy_*) ----
# They map transformers' official Perceiver modules onto this library's, through the one copy implementation in
# `perceiver.model.core.convert`. They read attributes only and import nothing from transformers.


def copy_param(src: torch.Tensor, tgt: torch.Tensor) -> None:
    """Copies parameter `src` into `tgt` (same shape)."""
    _copy_param(src, tgt)


def copy_params(src: nn.Module, tgt: nn.Module) -> None:
    """Copies all parameters and buffers of `src` into `tgt` (same structure)."""
    tgt.load_state_dict(src.state_dict())


def copy_attention_params(src: nn.Module, tgt: MultiHeadAttention) -> None:
    """Copies the q/k/v/output projections of a transformers `PerceiverLayer` `src` into `tgt`."""
    _copy_attention(src.attention, tgt)


def copy_mlp_params(src: nn.Module, tgt: nn.Sequential) -> None:
    """Copies the MLP (with its layer norm) of a transformers `PerceiverLayer` `src` into `tgt`."""
    _copy_mlp(src, tgt)


def copy_cross_attention_layer_params(src: nn.Module, tgt: CrossAttentionLayer, query_residual: bool) -> None:
    """Copies a transformers cross-attention `PerceiverLayer` into `tgt`; `query_residual` must match whether `tgt`
    has an attention residual (as 0.11 required)."""
    if query_residual != isinstance(tgt[0], Residual):
        raise ValueError(f"query_residual={query_residual} does not match the target layer's attention residual")
    copy_cross_attention_layer(src, tgt)


def copy_self_attention_layer_params(src: nn.Module, tgt: SelfAttentionLayer) -> None:
    """Copies a transformers self-attention `PerceiverLayer` into `tgt`."""
    copy_self_attention_layer(src, tgt)


def copy_self_attention_block_params(src: Sequence[nn.Module], tgt: Sequence[SelfAttentionLayer]) -> None:
    """Copies a sequence of transformers self-attention `PerceiverLayer`s into the layers of a block."""
    if len(src) != len(tgt):
        raise ValueError(f"source has {len(src)} self-attention layers, target has {len(tgt)}")
    for src_layer, tgt_layer in zip(src, tgt):
        copy_self_attention_layer(src_layer, tgt_layer)


def copy_latent_provider_params(src: nn.Module, tgt: nn.Module) -> None:
    """Copies the latents of a transformers `PerceiverModel` into a `PerceiverEncoder`'s latent provider."""
    _copy_param(src.embeddings.latents, tgt.latent_provider._query)


def copy_classification_decoder_params(src: nn.Module, tgt: nn.Module, query_residual: bool = True) -> None:
    """Copies the classification decoder of a transformers `PerceiverModel` into a `PerceiverDecoder` with a
    `ClassificationOutputAdapter` and a `TrainableQueryProvider`."""
    source = src.decoder.decoder
    copy_cross_attention_layer_params(source.decoding_cross_attention, tgt.cross_attn, query_residual=query_residual)
    _copy_linear(source.final_layer, tgt.output_adapter.linear)
    _copy_param(source.output_position_encodings.position_embeddings, tgt.output_query_provider._query)
