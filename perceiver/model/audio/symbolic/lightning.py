"""Lightning wrapper of the symbolic audio model."""

from perceiver.model.audio.symbolic.backend import SymbolicAudioModel, SymbolicAudioModelConfig
from perceiver.model.core.perceiver_ar.lightning import LitCausalSequenceModel


class LitSymbolicAudioModel(LitCausalSequenceModel):
    """Trains a `SymbolicAudioModel` on batches of MIDI event tokens; see `LitCausalSequenceModel`."""

    backend_config_class = SymbolicAudioModelConfig
    backend_model_class = SymbolicAudioModel

    def __init__(self, vocab_size: int = 389, **kwargs):
        super().__init__(vocab_size=vocab_size, **kwargs)
