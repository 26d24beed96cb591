"""Perceiver AR causal language model. Importing registers it with `AutoModelForCausalLM` (and so with the
`text-generation` pipeline)."""

from perceiver._compat import deprecated_aliases
from perceiver.model.text.clm.backend import CausalLanguageModel, CausalLanguageModelConfig
from perceiver.model.text.clm.huggingface import (
    PerceiverARCache,
    PerceiverCausalLanguageModel,
    PerceiverCausalLanguageModelConfig,
    convert_checkpoint,
)
from perceiver.model.text.clm.lightning import LitCausalLanguageModel

__all__ = [
    "CausalLanguageModel",
    "CausalLanguageModelConfig",
    "LitCausalLanguageModel",
    "PerceiverARCache",
    "PerceiverCausalLanguageModel",
    "PerceiverCausalLanguageModelConfig",
    "convert_checkpoint",
]

# perceiver-io 0.11 names
__getattr__ = deprecated_aliases(
    __name__,
    {
        "TextInputAdapter": (
            "perceiver.model.core.TokenInputAdapterWithRotarySupport",
            "perceiver.model.core:TokenInputAdapterWithRotarySupport",
        ),
        "TextOutputAdapter": (
            "perceiver.model.core.TokenOutputAdapter (arguments vocab_size, num_output_query_channels)",
            "perceiver.model.core.compat:TextOutputAdapter",
        ),
    },
)
