"""Perceiver AR, shared by its tasks (text `clm`, `audio.symbolic`): the plain PyTorch backend (`backend`, whose names
this package re-exports), its 🤗 side (`huggingface`) and its Lightning side (`lightning`). Importing this package
imports neither transformers nor Lightning; import those submodules explicitly."""

from perceiver.model.core.perceiver_ar.backend import (
    CausalSequenceModel,
    CausalSequenceModelConfig,
    CausalSequenceModelOutput,
    PerceiverAR,
    check_latents,
    generation_window,
    latent_targets,
)

__all__ = [
    "CausalSequenceModel",
    "CausalSequenceModelConfig",
    "CausalSequenceModelOutput",
    "PerceiverAR",
    "check_latents",
    "generation_window",
    "latent_targets",
]
