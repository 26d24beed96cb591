"""Lightning wrapper of the Perceiver AR causal language model.

Training, perplexity and validation samples are Perceiver AR's, shared with the symbolic audio model: see
`perceiver.model.core.perceiver_ar.lightning` (its names stay importable from here).
"""

from perceiver.model.core.perceiver_ar.lightning import LitCausalSequenceModel, LossPerplexity  # noqa: F401
from perceiver.model.text.clm.backend import CausalLanguageModel, CausalLanguageModelConfig


class LitCausalLanguageModel(LitCausalSequenceModel):
    """Lightning wrapper of `CausalLanguageModel`; see `LitCausalSequenceModel`."""

    backend_config_class = CausalLanguageModelConfig
    backend_model_class = CausalLanguageModel
