"""Perceiver IO masked language model. Importing registers it with `AutoModelForMaskedLM` and `fill-mask`."""

from perceiver._compat import deprecated_names
from perceiver.model.text.common import TextEncoder, TextEncoderConfig
from perceiver.model.text.mlm.backend import MaskedLanguageModel, MaskedLanguageModelConfig, TextDecoderConfig
from perceiver.model.text.mlm.huggingface import (
    PerceiverMaskedLanguageModel,
    PerceiverMaskedLanguageModelConfig,
    convert_checkpoint,
    convert_config,
    convert_model,
)
from perceiver.model.text.mlm.lightning import LitMaskedLanguageModel

__all__ = [
    "LitMaskedLanguageModel",
    "MaskedLanguageModel",
    "MaskedLanguageModelConfig",
    "PerceiverMaskedLanguageModel",
    "PerceiverMaskedLanguageModelConfig",
    "TextDecoderConfig",
    "TextEncoder",
    "TextEncoderConfig",
    "convert_checkpoint",
    "convert_config",
    "convert_model",
]

# perceiver-io 0.11's names
__getattr__ = deprecated_names(__name__, {"TextDecoder": ("perceiver.model.core", "PerceiverDecoder")})
