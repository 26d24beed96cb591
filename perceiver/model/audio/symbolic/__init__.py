"""Perceiver AR symbolic audio model (MIDI event tokens). Importing registers its 🤗 config with `AutoConfig`."""

from perceiver.model.audio.symbolic.backend import SymbolicAudioModel, SymbolicAudioModelConfig
from perceiver.model.audio.symbolic.huggingface import (
    PerceiverSymbolicAudioModel,
    PerceiverSymbolicAudioModelConfig,
    convert_checkpoint,
)
from perceiver.model.audio.symbolic.lightning import LitSymbolicAudioModel

__all__ = [
    "LitSymbolicAudioModel",
    "PerceiverSymbolicAudioModel",
    "PerceiverSymbolicAudioModelConfig",
    "SymbolicAudioModel",
    "SymbolicAudioModelConfig",
    "convert_checkpoint",
]
