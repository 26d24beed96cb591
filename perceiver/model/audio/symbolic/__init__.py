"""Perceiver AR symbolic audio model (MIDI event tokens). Importing registers its 🤗 config with `AutoConfig` and the
`symbolic-audio-generation` pipeline with transformers' pipeline registry."""

from transformers.pipelines import PIPELINE_REGISTRY

from perceiver.model.audio.symbolic.backend import SymbolicAudioModel, SymbolicAudioModelConfig
from perceiver.model.audio.symbolic.huggingface import (
    PerceiverSymbolicAudioModel,
    PerceiverSymbolicAudioModelConfig,
    convert_checkpoint,
)
from perceiver.model.audio.symbolic.lightning import LitSymbolicAudioModel
from perceiver.model.audio.symbolic.pipeline import ReturnType, SymbolicAudioGenerationPipeline, SymbolicAudioPipeline

PIPELINE_REGISTRY.register_pipeline(
    "symbolic-audio-generation", pipeline_class=SymbolicAudioPipeline, pt_model=PerceiverSymbolicAudioModel
)

__all__ = [
    "LitSymbolicAudioModel",
    "PerceiverSymbolicAudioModel",
    "PerceiverSymbolicAudioModelConfig",
    "ReturnType",
    "SymbolicAudioModel",
    "SymbolicAudioGenerationPipeline",
    "SymbolicAudioModelConfig",
    "SymbolicAudioPipeline",
    "convert_checkpoint",
]
