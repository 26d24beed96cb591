"""Perceiver AR causal language model (arXiv 2202.07765): a `CausalSequenceModel` over text tokens."""

from dataclasses import dataclass

from perceiver.model.core.perceiver_ar.backend import CausalSequenceModel, CausalSequenceModelConfig


@dataclass
class CausalLanguageModelConfig(CausalSequenceModelConfig):
    """Config of `CausalLanguageModel`; fields as in perceiver-io 0.11's `model_config` (see `CausalSequenceModelConfig`
    and `PerceiverARConfig`)."""


class CausalLanguageModel(CausalSequenceModel):
    """Perceiver AR causal language model: `forward(x, prefix_len, pad_mask=None, kv_cache=None)` returns the logits
    `(b, n - prefix_len, vocab_size)` of the latent positions (the last `n - prefix_len` of `x`)."""

    def __init__(self, config: CausalLanguageModelConfig):
        super().__init__(config)
