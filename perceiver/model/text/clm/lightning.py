"""Lightning wrapper of the Perceiver AR causal language model.

Training, perplexity and validation samples are Perceiver AR's, shared with the symbolic audio model: see
`perceiver.model.core.perceiver_ar.lightning` (its names stay importable from here).
"""

import warnings

from perceiver.model.core.perceiver_ar.lightning import LitCausalSequenceModel, LossPerplexity  # noqa: F401
from perceiver.model.text.clm.backend import CausalLanguageModel, CausalLanguageModelConfig


class LitCausalLanguageModel(LitCausalSequenceModel):
    """Lightning wrapper of `CausalLanguageModel`; see `LitCausalSequenceModel`."""

    backend_config_class = CausalLanguageModelConfig
    backend_model_class = CausalLanguageModel

    def to_hgf_model(self):
        """perceiver-io 0.11's 🤗 view of this model: a `PerceiverCausalLanguageModel` sharing its backend model.
        Deprecated: `convert_checkpoint` saves a checkpoint as a 🤗 model with its tokenizer."""
        from perceiver.model.text.clm.huggingface import (
            PerceiverCausalLanguageModel,
            PerceiverCausalLanguageModelConfig,
        )

        warnings.warn(
            "LitCausalLanguageModel.to_hgf_model is deprecated (perceiver-io 0.11), use "
            "PerceiverCausalLanguageModel(PerceiverCausalLanguageModelConfig(lit_model.backend_config), "
            "backend_model=lit_model.backend_model) or perceiver.model.text.clm.convert_checkpoint",
            DeprecationWarning,
            stacklevel=2,
        )
        config = PerceiverCausalLanguageModelConfig(self.backend_config)
        return PerceiverCausalLanguageModel(config, backend_model=self.backend_model)
