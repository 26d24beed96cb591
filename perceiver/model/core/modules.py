"""Generic Perceiver IO encoder and decoder, and PerceiverIO (encoder + decoder).

perceiver-io 0.11 defined all core modules here; its names that now live in `attention` and `perceiver_ar` are
still importable from this module (with a DeprecationWarning naming `perceiver.model.core`).
"""

import dataclasses
import warnings
from typing import Any, Dict, Optional, Tuple, Type, TypeVar

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
from perceiver.model.core.config import ClassificationDecoderConfig, DecoderConfig, EncoderConfig
from perceiver.model.core.utils import freeze, init_parameters, maybe_checkpoint

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


def _positional_flags(
    module_name: str, args: tuple, kwargs: Dict[str, Any], checkpointing: bool, offloading: bool
) -> Tuple[bool, bool]:
    """`activation_checkpointing` and `activation_offloading`, given positionally after `config`, as keywords, or
    (0.11) among the config keyword arguments `kwargs` (removed from them)."""
    if len(args) > 2:
        raise TypeError(f"{module_name}() takes at most 2 positional arguments after config ({len(args)} given)")
    checkpointing = args[0] if len(args) > 0 else kwargs.pop("activation_checkpointing", checkpointing)
    offloading = args[1] if len(args) > 1 else kwargs.pop("activation_offloading", offloading)
    return checkpointing, offloading


def _config_from_0_11_kwargs(
    config_class: Type[C], defaults: Dict[str, Any], kwargs: Dict[str, Any], module_name: str
) -> C:
    """Builds `config_class` from the keyword arguments that 0.11's `module_name` constructor took, warning with the
    new spelling."""
    names = {f.name for f in dataclasses.fields(config_class)} - {"freeze"}
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise TypeError(f"{module_name}() got unexpected keyword arguments {unknown}; allowed are {sorted(names)}")
    warnings.warn(
        f"{module_name}(..., {', '.join(f'{k}=...' for k in kwargs) or 'without config'}) is deprecated "
        f"(perceiver-io 0.11), use {module_name}(..., config={config_class.__name__}(...))",
        DeprecationWarning,
        stacklevel=3,
    )
    return config_class(**{**defaults, **kwargs})


class PerceiverEncoder(nn.Module):
    """Perceiver IO encoder: the input adapter, the latent array, cross-attention layers and self-attention blocks.

    Block `i` (of `num_self_attention_blocks`) is preceded by a cross-attention to the input when
    `i < num_cross_attention_layers`. Block 1 and cross-attention layer 1 have their own weights; all later ones
    share the weights of `self_attn_n` / `cross_attn_n` (or of the first ones when `first_*_shared`).

    perceiver-io 0.11 took the `EncoderConfig` fields as arguments instead of `config` (with 4 heads and 6 layers
    per block by default), as keywords or positionally in its order; both still work, with a DeprecationWarning.

    :param residual_dropout: dropout of the residual branches of all layers (as in 0.11, not a config field).
    """

    def __init__(
        self,
        input_adapter: InputAdapter,
        num_latents: int,
        num_latent_channels: int,
        config: Optional[EncoderConfig] = None,
        *args: Any,
        activation_checkpointing: bool = False,
        activation_offloading: bool = False,
        residual_dropout: float = 0.0,
        **config_0_11: Any,
    ):
        super().__init__()
        if config is not None and not isinstance(config, EncoderConfig):
            # perceiver-io 0.11's positional order: the config fields follow `num_latent_channels`
            config_0_11 = positional_0_11(
                "PerceiverEncoder", _ENCODER_0_11_ORDER, (config, *args), config_0_11, "PerceiverEncoder(config=...)"
            )
            config, args = None, ()
        activation_checkpointing, activation_offloading = _positional_flags(
            "PerceiverEncoder", args, config_0_11, activation_checkpointing, activation_offloading
        )
        residual_dropout = config_0_11.pop("residual_dropout", residual_dropout)
        if config is None:
            config = _config_from_0_11_kwargs(EncoderConfig, _ENCODER_0_11_DEFAULTS, config_0_11, "PerceiverEncoder")
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
        self.activation_checkpointing = activation_checkpointing
        self.activation_offloading = activation_offloading

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
                activation_checkpointing=activation_checkpointing,
                activation_offloading=activation_offloading,
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
                    enabled=self.activation_checkpointing and self.training,
                    offload=self.activation_offloading,
                )
            x_latent = (self.self_attn_1 if i == 0 else self_attn_n)(x_latent)

        if return_adapted_input:
            return x_latent, x_adapted
        return x_latent


class PerceiverDecoder(nn.Module):
    """Perceiver IO decoder: cross-attention from output queries to the latents, then the output adapter.

    perceiver-io 0.11 took the `DecoderConfig` fields as arguments instead of `config` (with 4 heads by default), as
    keywords or positionally in its order; both still work, with a DeprecationWarning.
    """

    def __init__(
        self,
        output_adapter: nn.Module,
        output_query_provider: QueryProvider,
        num_latent_channels: int,
        config: Optional[DecoderConfig] = None,
        *args: Any,
        activation_checkpointing: bool = False,
        activation_offloading: bool = False,
        **config_0_11: Any,
    ):
        super().__init__()
        if config is not None and not isinstance(config, DecoderConfig):
            # perceiver-io 0.11's positional order: the config fields follow `num_latent_channels`
            config_0_11 = positional_0_11(
                "PerceiverDecoder", _DECODER_0_11_ORDER, (config, *args), config_0_11, "PerceiverDecoder(config=...)"
            )
            config, args = None, ()
        activation_checkpointing, activation_offloading = _positional_flags(
            "PerceiverDecoder", args, config_0_11, activation_checkpointing, activation_offloading
        )
        if config is None:
            config = _config_from_0_11_kwargs(DecoderConfig, _DECODER_0_11_DEFAULTS, config_0_11, "PerceiverDecoder")
        elif config_0_11:
            raise TypeError(f"PerceiverDecoder() got config and keyword arguments {sorted(config_0_11)}; pass one")
        self.output_query_provider = output_query_provider
        self.output_adapter = output_adapter
        self.activation_checkpointing = activation_checkpointing
        self.activation_offloading = activation_offloading
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
                enabled=self.activation_checkpointing and self.training,
                offload=self.activation_offloading,
            )
            for query in output_query.split(max(chunk, 1), dim=1)
        ]
        output = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=1)
        return self.output_adapter(output, **adapter_kwargs)


def classification_decoder(
    config: ClassificationDecoderConfig,
    num_latent_channels: int,
    activation_checkpointing: bool = False,
    activation_offloading: bool = False,
) -> PerceiverDecoder:
    """A decoder with `num_output_queries` learned queries and a linear classification output adapter."""
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
        activation_checkpointing=activation_checkpointing,
        activation_offloading=activation_offloading,
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
