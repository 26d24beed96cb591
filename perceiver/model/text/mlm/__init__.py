"""Perceiver IO masked language model. Importing registers it with `AutoModelForMaskedLM` and `fill-mask`."""

from perceiver._compat import deprecated_aliases
from perceiver.model.text.common import TextEncoder, TextEncoderConfig
from perceiver.model.text.mlm.backend import MaskedLanguageModel, MaskedLanguageModelConfig, TextDecoderConfig
from perceiver.model.text.mlm.convert import convert_config, convert_model
from perceiver.model.text.mlm.huggingface import (
    PerceiverMaskedLanguageModel,
    PerceiverMaskedLanguageModelConfig,
    convert_checkpoint,
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

# perceiver-io 0.11 names
__getattr__ = deprecated_aliases(
    __name__,
    {
        "TextDecoder": ("perceiver.model.core.PerceiverDecoder", "perceiver.model.core:PerceiverDecoder"),
        "TextOutputAdapter": ("perceiver.model.core.TokenOutputAdapter", "perceiver.model.core:TokenOutputAdapter"),
    },
)
