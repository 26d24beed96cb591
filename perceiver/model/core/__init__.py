"""Generic Perceiver building blocks (plain PyTorch; no Lightning or 🤗 imports here)."""

from perceiver.model.core.adapter import (
    ClassificationOutputAdapter,
    InputAdapter,
    OutputAdapter,
    QueryProvider,
    RotarySupport,
    TiedTokenOutputAdapter,
    TokenInputAdapter,
    TokenInputAdapterWithRotarySupport,
    TokenOutputAdapter,
    TrainableQueryProvider,
)
from perceiver.model.core.attention import (
    MLP,
    CrossAttention,
    CrossAttentionLayer,
    KVCache,
    MultiHeadAttention,
    Residual,
    SelfAttention,
    SelfAttentionBlock,
    SelfAttentionLayer,
)
from perceiver.model.core.config import (
    ClassificationDecoderConfig,
    DecoderConfig,
    EncoderConfig,
    PerceiverARConfig,
    PerceiverIOConfig,
    config_from_dict,
    config_to_dict,
)
from perceiver.model.core.modules import PerceiverDecoder, PerceiverEncoder, PerceiverIO
from perceiver.model.core.perceiver_ar.backend import CausalSequenceModel, CausalSequenceModelConfig, PerceiverAR
from perceiver.model.core.position import (
    FourierPositionEncoding,
    FrequencyPositionEncoding,
    RotaryPositionEmbedding,
    positions,
)
from perceiver.model.core.utils import ActivationCheckpointing

__all__ = [
    "ActivationCheckpointing",
    "CausalSequenceModel",
    "CausalSequenceModelConfig",
    "ClassificationDecoderConfig",
    "ClassificationOutputAdapter",
    "CrossAttention",
    "CrossAttentionLayer",
    "DecoderConfig",
    "EncoderConfig",
    "FourierPositionEncoding",
    "FrequencyPositionEncoding",
    "InputAdapter",
    "KVCache",
    "MLP",
    "MultiHeadAttention",
    "OutputAdapter",
    "PerceiverAR",
    "PerceiverARConfig",
    "PerceiverDecoder",
    "PerceiverEncoder",
    "PerceiverIO",
    "PerceiverIOConfig",
    "QueryProvider",
    "Residual",
    "RotaryPositionEmbedding",
    "RotarySupport",
    "SelfAttention",
    "SelfAttentionBlock",
    "SelfAttentionLayer",
    "TiedTokenOutputAdapter",
    "TokenInputAdapter",
    "TokenInputAdapterWithRotarySupport",
    "TokenOutputAdapter",
    "TrainableQueryProvider",
    "config_from_dict",
    "config_to_dict",
    "positions",
]
