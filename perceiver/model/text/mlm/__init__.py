"""Perceiver IO masked language model. Importing registers it with `AutoModelForMaskedLM` and `fill-mask`."""

from perceiver.model.text.common import TextEncoderConfig
from perceiver.model.text.mlm.backend import MaskedLanguageModel, MaskedLanguageModelConfig, TextDecoderConfig
from perceiver.model.text.mlm.huggingface import (
    PerceiverMaskedLanguageModel,
    PerceiverMaskedLanguageModelConfig,
    convert_checkpoint,
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
    "TextEncoderConfig",
    "convert_checkpoint",
    "convert_model",
]
