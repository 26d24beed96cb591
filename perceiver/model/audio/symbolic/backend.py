"""Perceiver AR symbolic audio model: a `CausalSequenceModel` over MIDI event tokens."""

from dataclasses import dataclass

from perceiver.model.core.perceiver_ar.backend import CausalSequenceModel, CausalSequenceModelConfig


@dataclass
class SymbolicAudioModelConfig(CausalSequenceModelConfig):
    """Config of `SymbolicAudioModel` (fields as in perceiver-io 0.11); the default vocabulary is the 388 MIDI events
    of the Music Transformer encoding plus a padding token."""

    vocab_size: int = 389


class SymbolicAudioModel(CausalSequenceModel):
    """Perceiver AR symbolic audio model: `forward(x, prefix_len, pad_mask=None, kv_cache=None)` returns the logits
    of the latent positions (see `CausalSequenceModel`)."""

    def __init__(self, config: SymbolicAudioModelConfig):
        super().__init__(config)
