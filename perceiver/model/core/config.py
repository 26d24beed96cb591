"""Config dataclasses of the generic models, and the one place where configs turn into dicts and back."""

import dataclasses
import typing
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional, Tuple, Type, TypeVar

from perceiver._compat import deprecated_aliases

C = TypeVar("C")


@dataclass
class EncoderConfig:
    """Perceiver IO encoder: repeated cross-attention from latents to the input, blocks of latent self-attention.

    The first cross-attention layer and first self-attention block come first; further blocks (and cross-attention
    layers, at most one per block) reuse the weights of the first, or of one extra shared layer/block when
    `first_cross_attention_layer_shared` / `first_self_attention_block_shared` is False.

    :param num_cross_attention_heads: attention heads of the cross-attention from latents to the input.
    :param num_cross_attention_qk_channels: query/key channels of the cross-attention (None: the latent channels).
    :param num_cross_attention_v_channels: value channels of the cross-attention (None: its query/key channels).
    :param num_cross_attention_layers: cross-attention layers, at most one per self-attention block.
    :param first_cross_attention_layer_shared: later cross-attention layers share the first layer's weights.
    :param cross_attention_widening_factor: hidden channels of the cross-attention MLP, as a multiple of its
        input channels.
    :param num_self_attention_heads: attention heads of the latent self-attention.
    :param num_self_attention_qk_channels: query/key channels of the self-attention (None: the latent channels).
    :param num_self_attention_v_channels: value channels of the self-attention (None: its query/key channels).
    :param num_self_attention_layers_per_block: self-attention layers per block.
    :param num_self_attention_blocks: self-attention blocks (repeated, see above).
    :param first_self_attention_block_shared: later self-attention blocks share the first block's weights.
    :param self_attention_widening_factor: hidden channels of the self-attention MLP, as a multiple of the latent
        channels.
    :param dropout: dropout on attention probabilities.
    :param init_scale: standard deviation of the normal initialization of the weights.
    :param freeze: freeze the encoder's parameters (e.g. to train only the decoder on a pretrained encoder).
    """

    num_cross_attention_heads: int = 8
    num_cross_attention_qk_channels: Optional[int] = None
    num_cross_attention_v_channels: Optional[int] = None
    num_cross_attention_layers: int = 1
    first_cross_attention_layer_shared: bool = False
    cross_attention_widening_factor: int = 1
    num_self_attention_heads: int = 8
    num_self_attention_qk_channels: Optional[int] = None
    num_self_attention_v_channels: Optional[int] = None
    num_self_attention_layers_per_block: int = 8
    num_self_attention_blocks: int = 1
    first_self_attention_block_shared: bool = True
    self_attention_widening_factor: int = 1
    dropout: float = 0.0
    init_scale: float = 0.02
    freeze: bool = False

    def __post_init__(self):
        validate_config(self)

    def base_kwargs(self, exclude=("freeze",)) -> Dict[str, Any]:
        """perceiver-io 0.11: the `EncoderConfig` fields (of a subclass instance) as a dict, without `exclude`."""
        return _base_kwargs(self, EncoderConfig, exclude)


@dataclass
class DecoderConfig:
    """Perceiver IO decoder: one cross-attention from output queries to the latents.

    :param num_cross_attention_heads: attention heads of the cross-attention from output queries to the latents.
    :param num_cross_attention_qk_channels: query/key channels of the cross-attention (None: the output query
        channels).
    :param num_cross_attention_v_channels: value channels of the cross-attention (None: its query/key channels).
    :param cross_attention_widening_factor: hidden channels of the cross-attention MLP, as a multiple of the output
        query channels.
    :param cross_attention_residual: add the output queries to the cross-attention output (residual connection).
    :param dropout: dropout on attention probabilities.
    :param init_scale: standard deviation of the normal initialization of the weights.
    :param freeze: freeze the decoder's parameters.
    """

    num_cross_attention_heads: int = 8
    num_cross_attention_qk_channels: Optional[int] = None
    num_cross_attention_v_channels: Optional[int] = None
    cross_attention_widening_factor: int = 1
    cross_attention_residual: bool = True
    dropout: float = 0.0
    init_scale: float = 0.02
    freeze: bool = False

    def __post_init__(self):
        validate_config(self)

    def base_kwargs(self, exclude=("freeze",)) -> Dict[str, Any]:
        """perceiver-io 0.11: the `DecoderConfig` fields (of a subclass instance) as a dict, without `exclude`."""
        return _base_kwargs(self, DecoderConfig, exclude)


@dataclass
class ClassificationDecoderConfig(DecoderConfig):
    """Decoder config of classifiers: learned output queries, each mapped to class logits (one query: `(b, classes)`).

    :param num_output_queries: number of learned output queries (classifiers use 1).
    :param num_output_query_channels: channels of each output query.
    :param num_classes: number of classes.
    """

    num_output_queries: int = 1
    num_output_query_channels: int = 256
    num_classes: int = 100


@dataclass
class PerceiverIOConfig:
    """Encoder and decoder configs plus the latent array shape. Task configs narrow the types of both.

    :param encoder: encoder config.
    :param decoder: decoder config.
    :param num_latents: number of latent vectors (the size of the latent array; not Perceiver AR's `num_latents` of
        `generate`, the number of latent positions at the end of a prompt).
    :param num_latent_channels: channels of each latent vector.
    :param activation_checkpointing: recompute activations of the attention layers in the backward pass instead of
        storing them (less memory, more compute).
    :param activation_offloading: with activation checkpointing, keep the stored layer inputs in CPU memory.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    num_latents: int = 512
    num_latent_channels: int = 1024
    activation_checkpointing: bool = False
    activation_offloading: bool = False

    def __post_init__(self):
        validate_config(self)

    def __class_getitem__(cls, item: Any) -> type:
        # perceiver-io 0.11 made this class generic: PerceiverIOConfig[TextEncoderConfig, TextDecoderConfig]
        return cls


@dataclass
class PerceiverARConfig:
    """Perceiver AR: causal cross-attention of latents (the last positions) to the whole sequence, then causal
    latent self-attention.

    :param num_heads: attention heads of the cross-attention and the self-attention layers.
    :param max_heads_parallel: attend with at most this many heads at once to bound memory (None: all heads).
    :param num_self_attention_layers: latent self-attention layers.
    :param num_self_attention_rotary_layers: number of the first self-attention layers with rotary position
        embedding (the cross-attention always has it).
    :param self_attention_widening_factor: hidden channels of the self-attention MLPs, as a multiple of the model
        channels.
    :param cross_attention_widening_factor: hidden channels of the cross-attention MLP, as a multiple of the model
        channels.
    :param cross_attention_dropout: fraction of prefix positions dropped from the cross-attention in training.
    :param post_attention_dropout: dropout on attention probabilities.
    :param residual_dropout: dropout on the output of each residual branch.
    :param activation_checkpointing: recompute activations of the attention layers in the backward pass instead of
        storing them (less memory, more compute).
    :param activation_offloading: with activation checkpointing, keep the stored layer inputs in CPU memory.
    """

    num_heads: int = 8
    max_heads_parallel: Optional[int] = None
    num_self_attention_layers: int = 6
    num_self_attention_rotary_layers: int = 1
    self_attention_widening_factor: int = 4
    cross_attention_widening_factor: int = 4
    cross_attention_dropout: float = 0.5
    post_attention_dropout: float = 0.0
    residual_dropout: float = 0.0
    activation_checkpointing: bool = False
    activation_offloading: bool = False

    def __post_init__(self):
        validate_config(self)

    def base_kwargs(self, exclude: Tuple[str, ...] = ()) -> Dict[str, Any]:
        """The `PerceiverARConfig` fields of this config (perceiver-io 0.11 passed them to `PerceiverAR`)."""
        return _base_kwargs(self, PerceiverARConfig, exclude)


def config_from_0_11_kwargs(
    config_class: Type[C], defaults: Dict[str, Any], kwargs: Dict[str, Any], module_name: str
) -> C:
    """Builds `config_class` from the keyword arguments that 0.11's `module_name` constructor took (its defaults where
    they differ from the dataclass's in `defaults`), warning with the new spelling."""
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


def _base_kwargs(config: Any, base_class: type, exclude: Tuple[str, ...]) -> Dict[str, Any]:
    names = {f.name for f in dataclasses.fields(base_class)} - set(exclude)
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.name in names}


def config_to_dict(config: Any) -> Dict[str, Any]:
    """A (nested) config dataclass as a plain dict, as stored in `config.json` under `model_config`."""
    return asdict(config)


def config_from_dict(cls: Type[C], values: Dict[str, Any]) -> C:
    """Builds config dataclass `cls` from a (nested) dict; nested dataclass fields are built from their dicts.

    Keys that `cls` does not know raise a ValueError naming them, so that typos and incompatible files are caught.
    """
    if not isinstance(values, dict):
        raise TypeError(f"config values for {cls.__name__} must be a dict, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}; allowed fields are {sorted(names)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        field_type = hints[name]
        if dataclasses.is_dataclass(field_type):
            if not isinstance(value, dict):
                raise TypeError(f"{cls.__name__}.{name} must be a dict of {field_type.__name__} fields, got {value!r}")
            value = config_from_dict(field_type, value)
        elif _is_tuple_type(_strip_optional(field_type)) and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    config = cls(**kwargs)
    validate_config(config)
    return config


# lower bounds that differ from 1 (the bound of all other int fields named num_*, max_*, *_channels, *_factor and
# vocab_size); -1 rotary layers means all layers
_LOWER_BOUNDS = {"num_self_attention_rotary_layers": -1}


def validate_config(config: Any) -> None:
    """Raises a TypeError or ValueError naming the field, the value and what is allowed, for fields of config
    dataclass `config` whose value has the wrong type (e.g. `"8"` for an int, None for a nested config) or lies
    outside its range (counts and sizes >= 1, dropout in [0, 1), `init_scale` > 0)."""
    cls_name = type(config).__name__
    for f in dataclasses.fields(config):
        field_type = typing.get_type_hints(type(config))[f.name]
        value = getattr(config, f.name)
        where = f"{cls_name}.{f.name}={value!r}"
        if not _type_matches(value, field_type):
            raise TypeError(f"{where} must be of type {_type_name(field_type)}, got {type(value).__name__}")
        if isinstance(value, bool) or value is None:
            continue
        name = f.name
        if isinstance(value, int) and (
            name.startswith(("num_", "max_")) or name.endswith(("_channels", "_factor")) or name == "vocab_size"
        ):
            low = _LOWER_BOUNDS.get(name, 1)
            if value < low:
                raise ValueError(f"{where} is out of range, allowed is >= {low}")
        elif isinstance(value, float) and "dropout" in name and not 0.0 <= value < 1.0:
            raise ValueError(f"{where} is out of range, allowed is [0, 1)")
        elif name in ("init_scale", "rescale_factor") and not value > 0:
            raise ValueError(f"{where} is out of range, allowed is > 0")
        elif name.endswith("image_shape") or name == "max_resolution":
            if any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in value):
                raise ValueError(f"{where} must hold positive ints")


def _strip_optional(tp: Any) -> Any:
    args = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Union and type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None))
    return tp


def _is_tuple_type(tp: Any) -> bool:
    return tp in (tuple, typing.Tuple) or typing.get_origin(tp) is tuple


def _type_matches(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:
        return any(_type_matches(value, a) for a in args)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if _is_tuple_type(tp):
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_type_matches(v, args[0]) for v in value)
        return not args or (len(args) == len(value) and all(_type_matches(v, a) for v, a in zip(value, args)))
    if dataclasses.is_dataclass(tp):
        return isinstance(value, tp)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True  # types this check does not know


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


# perceiver-io 0.11 defined the Perceiver AR config here
__getattr__ = deprecated_aliases(
    __name__,
    {
        "CausalSequenceModelConfig": (
            "perceiver.model.core.CausalSequenceModelConfig",
            "perceiver.model.core.perceiver_ar:CausalSequenceModelConfig",
        )
    },
)
