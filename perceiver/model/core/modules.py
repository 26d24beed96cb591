"""Generic Perceiver IO encoder and decoder, and PerceiverIO (encoder + decoder).

perceiver-io 0.11 defined all core modules here; its names that now live in `attention` and `perceiver_ar` are
still importable from this module (with a DeprecationWarning naming `perceiver.model.core`).
"""

from typing import Any, Dict, Optional, Tuple, TypeVar

import torch
import torch.nn as nn

from perceiver._compat import deprecated_aliases, positional_0_11
from perceiver.model.core.adapter import (
    ClassificationOutputAdapter,
    InputAdapter,
    QueryProvider,
    TrainableQueryProvider,
)
from perceiver.model.core.attention import CrossAttentionLayer, SelfAttentionBlock
from perceiver.model.core.config import (
    ClassificationDecoderConfig,
    DecoderConfig,
    EncoderConfig,
    config_from_0_11_kwargs,
)
from perceiver.model.core.utils import (
    ActivationCheckpointing,
    checkpointing_from,
    freeze,
    init_parameters,
    maybe_checkpoint,
    without_empty_pad_mask,
)

C = TypeVar("C")

# perceiver-io 0.11's constructor defaults where they differ from the config dataclasses' defaults
_ENCODER_0_11_DEFAULTS = dict(
    num_cross_attention_heads=4, num_self_attention_heads=4, num_self_attention_layers_per_block=6
)
_DECODER_0_11_DEFAULTS = dict(num_cross_attention_heads=4)

# perceiver-io 0.11's positional order of the constructor arguments after `num_latent_channels`
_ENCODER_0_11_ORDER = (
    "num_cross_attention_heads",
    "num_cross_attention_qk_channels",
    "num_cross_attention_v_channels",
    "num_cross_attention_layers",
    "first_cross_attention_layer_shared",
    "cross_attention_widening_factor",
    "num_self_attention_heads",
    "num_self_attention_qk_channels",
    "num_self_attention_v_channels",
    "num_self_attention_layers_per_block",
    "num_self_attention_blocks",
    "first_self_attention_block_shared",
    "self_attention_widening_factor",
    "dropout",
    "residual_dropout",
    "init_scale",
    "activation_checkpointing",
    "activation_offloading",
)
_DECODER_0_11_ORDER = (
    "num_cross_attention_heads",
    "num_cross_attention_qk_channels",
    "num_cross_attention_v_channels",
    "cross_attention_widening_factor",
    "cross_attention_residual",
    "dropout",
    "init_scale",
    "activation_checkpointing",
    "activation_offloading",
)


def _constructor_arguments(
    owner: str,
    order: Tuple[str, ...],
    config_class: type,
    config: Any,
    args: tuple,
    config_0_11: Dict[str, Any],
    checkpointing: Optional[ActivationCheckpointing],
) -> Tuple[Any, ActivationCheckpointing, Dict[str, Any]]:
    """`(config, checkpointing, config_0_11)` of an encoder's or decoder's constructor call: this library's `config`
    and `checkpointing` (also positional), or perceiver-io 0.11's config fields, as keywords (`config_0_11`) or
    positionally in 0.11's `order`, with `activation_checkpointing` / `activation_offloading` among them
    (deprecated: a DeprecationWarning names the new spelling)."""
    if config is not None and not isinstance(config, config_class):
        config_0_11 = positional_0_11(owner, order, (config, *args), config_0_11, f"{owner}(config=...)")
        config, args = None, ()
    return config, checkpointing_from(checkpointing, config_0_11, owner, args), config_0_11


class PerceiverEncoder(nn.Module):
    """Perceiver IO encoder: the input adapter, the latent array, cross-attention layers and self-attention blocks.

    Block `i` (of `num_self_attention_blocks`) is preceded by a cross-attention to the input when
    `i < num_cross_attention_layers`. Block 1 and cross-attention layer 1 have their own weights; all later ones
    share the weights of `self_attn_n` / `cross_attn_n` (or of the first ones when `first_*_shared`).

    :param checkpointing: activation checkpointing of the attention layers in training (default: off).
    :param residual_dropout: dropout of the residual branches of all layers (as in 0.11, not a config field).

    perceiver-io 0.11 took the `EncoderConfig` fields as arguments instead of `config` (with 4 heads and 6 layers
    per block by default), as keywords or positionally in its order, and `activation_checkpointing` /
    `activation_offloading` instead of `checkpointing`; that still works, with a DeprecationWarning.
    """

    def __init__(
        self,
        input_adapter: InputAdapter,
        num_latents: int,
        num_latent_channels: int,
        config: Optional[EncoderConfig] = None,
        *args: Any,
        checkpointing: Optional[ActivationCheckpointing] = None,
        residual_dropout: float = 0.0,
        **config_0_11: Any,
    ):
        super().__init__()
        config, checkpointing, config_0_11 = _constructor_arguments(
            "PerceiverEncoder", _ENCODER_0_11_ORDER, EncoderConfig, config, args, config_0_11, checkpointing
        )
        residual_dropout = config_0_11.pop("residual_dropout", residual_dropout)
        if config is None:
            config = config_from_0_11_kwargs(EncoderConfig, _ENCODER_0_11_DEFAULTS, config_0_11, "PerceiverEncoder")
        elif config_0_11:
            raise TypeError(f"PerceiverEncoder() got config and keyword arguments {sorted(config_0_11)}; pass one")
        if config.num_cross_attention_layers <= 0:
            raise ValueError(f"num_cross_attention_layers={config.num_cross_attention_layers} must be >= 1")
        if config.num_self_attention_blocks <= 0:
            raise ValueError(f"num_self_attention_blocks={config.num_self_attention_blocks} must be >= 1")
        if config.num_cross_attention_layers > config.num_self_attention_blocks:
            raise ValueError(
                f"num_cross_attention_layers={config.num_cross_attention_layers} must be <= "
                f"num_self_attention_blocks={config.num_self_attention_blocks}"
            )
        self.num_cross_attention_layers = config.num_cross_attention_layers
        self.num_self_attention_blocks = config.num_self_attention_blocks
        self.checkpointing = checkpointing

        self.input_adapter = input_adapter
        self.latent_provider = TrainableQueryProvider(num_latents, num_latent_channels, init_scale=config.init_scale)

        def cross_attn():
            return CrossAttentionLayer(
                num_heads=config.num_cross_attention_heads,
                num_q_input_channels=num_latent_channels,
                num_kv_input_channels=input_adapter.num_input_channels,
                num_qk_channels=config.num_cross_attention_qk_channels,
                num_v_channels=config.num_cross_attention_v_channels,
                widening_factor=config.cross_attention_widening_factor,
                dropout=config.dropout,
                residual_dropout=residual_dropout,
            )

        def self_attn():
            return SelfAttentionBlock(
                num_layers=config.num_self_attention_layers_per_block,
                num_heads=config.num_self_attention_heads,
                num_channels=num_latent_channels,
                num_qk_channels=config.num_self_attention_qk_channels,
                num_v_channels=config.num_self_attention_v_channels,
                widening_factor=config.self_attention_widening_factor,
                dropout=config.dropout,
                residual_dropout=residual_dropout,
                checkpointing=checkpointing,
            )

        self.cross_attn_1 = cross_attn()
        self.self_attn_1 = self_attn()
        if config.num_cross_attention_layers > 1 and not config.first_cross_attention_layer_shared:
            self.cross_attn_n = cross_attn()
        if config.num_self_attention_blocks > 1 and not config.first_self_attention_block_shared:
            self.self_attn_n = self_attn()

        init_parameters(self, config.init_scale)
        if config.freeze:
            freeze(self)

    @property
    def extra_cross_attention_layer(self) -> bool:
        """Whether cross-attention layers after the first have their own weights (`cross_attn_n`)."""
        return hasattr(self, "cross_attn_n")

    @property
    def extra_self_attention_block(self) -> bool:
        """Whether self-attention blocks after the first have their own weights (`self_attn_n`)."""
        return hasattr(self, "self_attn_n")

    def forward(self, x: torch.Tensor, pad_mask: Optional[torch.Tensor] = None, return_adapted_input: bool = False):
        """Encodes task input `x` into latents `(b, num_latents, num_latent_channels)`.

        :param pad_mask: `(b, n)`, True marks padding positions of the adapted input.
        :param return_adapted_input: also return the input adapter's output (used as decoder query by some tasks).
        """
        x_adapted = self.input_adapter(x)
        x_latent = self.latent_provider().expand(x_adapted.shape[0], -1, -1)
        pad_mask = without_empty_pad_mask(pad_mask)

        cross_attn_n = getattr(self, "cross_attn_n", self.cross_attn_1)
        self_attn_n = getattr(self, "self_attn_n", self.self_attn_1)
        for i in range(self.num_self_attention_blocks):
            if i < self.num_cross_attention_layers:
                cross_attn = self.cross_attn_1 if i == 0 else cross_attn_n
                x_latent = maybe_checkpoint(
                    cross_attn,
                    x_latent,
                    x_adapted,
                    pad_mask=pad_mask,
                    checkpointing=self.checkpointing,
                )
            x_latent = (self.self_attn_1 if i == 0 else self_attn_n)(x_latent)

        if return_adapted_input:
            return x_latent, x_adapted
        return x_latent


class PerceiverDecoder(nn.Module):
    """Perceiver IO decoder: cross-attention from output queries to the latents, then the output adapter.

    :param checkpointing: activation checkpointing of the cross-attention in training (default: off).

    perceiver-io 0.11 took the `DecoderConfig` fields as arguments instead of `config` (with 4 heads by default), as
    keywords or positionally in its order, and `activation_checkpointing` / `activation_offloading` instead of
    `checkpointing`; that still works, with a DeprecationWarning.
    """

    def __init__(
        self,
        output_adapter: nn.Module,
        output_query_provider: QueryProvider,
        num_latent_channels: int,
        config: Optional[DecoderConfig] = None,
        *args: Any,
        checkpointing: Optional[ActivationCheckpointing] = None,
        **config_0_11: Any,
    ):
        super().__init__()
        config, checkpointing, config_0_11 = _constructor_arguments(
            "PerceiverDecoder", _DECODER_0_11_ORDER, DecoderConfig, config, args, config_0_11, checkpointing
        )
        if config is None:
            config = config_from_0_11_kwargs(DecoderConfig, _DECODER_0_11_DEFAULTS, config_0_11, "PerceiverDecoder")
        elif config_0_11:
            raise TypeError(f"PerceiverDecoder() got config and keyword arguments {sorted(config_0_11)}; pass one")
        self.output_query_provider = output_query_provider
        self.output_adapter = output_adapter
        self.checkpointing = checkpointing
        self.cross_attn = CrossAttentionLayer(
            num_heads=config.num_cross_attention_heads,
            num_q_input_channels=output_query_provider.num_query_channels,
            num_kv_input_channels=num_latent_channels,
            num_qk_channels=config.num_cross_attention_qk_channels,
            num_v_channels=config.num_cross_attention_v_channels,
            widening_factor=config.cross_attention_widening_factor,
            attention_residual=config.cross_attention_residual,
            dropout=config.dropout,
        )
        init_parameters(self, config.init_scale)
        if config.freeze:
            freeze(self)

    def forward(
        self,
        x_latent: torch.Tensor,
        output_query: Optional[torch.Tensor] = None,
        max_queries_parallel: Optional[int] = 4096,
        **adapter_kwargs,
    ):
        """Decodes latents `(b, n_latent, c)`; `output_query` `(b|1, n_out, c_q)` defaults to the provider's.

        Output queries attend to the latents only, never to each other, so any subset of them (e.g. the masked
        positions of a fill-mask) decodes to exactly what the full set gives at those positions, and they are
        processed `max_queries_parallel` at a time (None: all at once), which bounds the memory of the attention
        scores and MLP activations for long outputs.
        """
        if output_query is None:
            output_query = self.output_query_provider()
        output_query = output_query.expand(x_latent.shape[0], -1, -1)
        chunk = output_query.shape[1] if max_queries_parallel is None else max_queries_parallel
        outputs = [
            maybe_checkpoint(
                self.cross_attn,
                query,
                x_latent,
                checkpointing=self.checkpointing,
            )
            for query in output_query.split(max(chunk, 1), dim=1)
        ]
        output = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)
        return self.output_adapter(output, **adapter_kwargs)


def classification_decoder(
    config: ClassificationDecoderConfig,
    num_latent_channels: int,
    checkpointing: Optional[ActivationCheckpointing] = None,
    **flags_0_11: Any,
) -> PerceiverDecoder:
    """A decoder with `num_output_queries` learned queries and a linear classification output adapter."""
    checkpointing = checkpointing_from(checkpointing, flags_0_11, "classification_decoder")
    if flags_0_11:
        raise TypeError(f"classification_decoder() got unexpected keyword arguments {sorted(flags_0_11)}")
    return PerceiverDecoder(
        output_adapter=ClassificationOutputAdapter(
            num_classes=config.num_classes, num_output_query_channels=config.num_output_query_channels
        ),
        output_query_provider=TrainableQueryProvider(
            num_queries=config.num_output_queries,
            num_query_channels=config.num_output_query_channels,
            init_scale=config.init_scale,
        ),
        num_latent_channels=num_latent_channels,
        config=config,
        checkpointing=checkpointing,
    )


class PerceiverIO(nn.Sequential):
    """Encoder followed by decoder (`self[0]`, `self[1]`, as in the 0.11 state-dict layout)."""

    def __init__(self, encoder: PerceiverEncoder, decoder: PerceiverDecoder):
        super().__init__(encoder, decoder)

    @property
    def encoder(self) -> PerceiverEncoder:
        return self[0]

    @property
    def decoder(self) -> PerceiverDecoder:
        return self[1]


# perceiver-io 0.11 names of this module that now live elsewhere in core
_MOVED_0_11 = {
    "attention": (
        "MultiHeadAttention",
        "CrossAttention",
        "SelfAttention",
        "SelfAttentionLayer",
        "MLP",
        "Residual",
        "KVCache",
    ),
    "perceiver_ar": ("PerceiverAR", "CausalSequenceModel", "CausalSequenceModelConfig"),
}
__getattr__ = deprecated_aliases(
    __name__,
    {
        **{
            name: (f"perceiver.model.core.{name}", f"perceiver.model.core.{module}:{name}")
            for module, names in _MOVED_0_11.items()
            for name in names
        },
        "AbstractAttentionLayer": (
            "perceiver.model.core.attention.AttentionLayer",
            "perceiver.model.core.attention:AttentionLayer",
        ),
    },
)

# `from perceiver.model.core.modules import *` gives 0.11's names (the moved ones with a DeprecationWarning)
__all__ = [
    "CrossAttentionLayer",
    "PerceiverDecoder",
    "PerceiverEncoder",
    "PerceiverIO",
    "SelfAttentionBlock",
    "classification_decoder",
    *(name for names in _MOVED_0_11.values() for name in names),
]
