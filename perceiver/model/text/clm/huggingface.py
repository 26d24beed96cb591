"""🤗 wrapper of the Perceiver AR causal language model (`AutoModelForCausalLM`, `text-generation` pipeline).

Cache, generation and loss are Perceiver AR's, shared with the symbolic audio model: see
`perceiver.model.core.perceiver_ar.huggingface` (its names stay importable from here).
"""

import os
from typing import Any, Optional, Union

from transformers import AutoModelForCausalLM

from perceiver.model.core.huggingface import (
    PerceiverBackendConfig,
    convert_lightning_checkpoint,
    load_tokenizer,
    register_auto_class,
)
from perceiver.model.core.perceiver_ar.huggingface import (  # noqa: F401 (also importable from here)
    PerceiverARCache,
    PerceiverARCacheLayer,
    PerceiverCausalSequenceModel,
)
from perceiver.model.text.clm.backend import CausalLanguageModel, CausalLanguageModelConfig


class PerceiverCausalLanguageModelConfig(PerceiverBackendConfig):
    model_type = "perceiver-ar-causal-language-model"
    backend_config_class = CausalLanguageModelConfig


class PerceiverCausalLanguageModel(PerceiverCausalSequenceModel):
    """🤗 Perceiver AR causal language model (`AutoModelForCausalLM`, `text-generation` pipeline)."""

    config_class = PerceiverCausalLanguageModelConfig
    backend_model_class = CausalLanguageModel


register_auto_class(PerceiverCausalLanguageModelConfig, PerceiverCausalLanguageModel, AutoModelForCausalLM)


def convert_checkpoint(
    save_dir: Union[str, os.PathLike],
    ckpt_url: Union[str, os.PathLike],
    tokenizer_name: Optional[str] = None,
    **kwargs: Any,
) -> PerceiverCausalLanguageModel:
    """Converts a `LitCausalLanguageModel` checkpoint (local path or URL) into a `PerceiverCausalLanguageModel` saved
    in `save_dir` with tokenizer `tokenizer_name` (name or path; None or "perceiver-bytes": UTF-8 bytes), set to
    left padding for batched generation. `kwargs` go to `save_pretrained`."""
    from perceiver.model.text.clm.lightning import LitCausalLanguageModel

    tokenizer = load_tokenizer(tokenizer_name, padding_side="left")
    return convert_lightning_checkpoint(
        LitCausalLanguageModel, PerceiverCausalLanguageModel, save_dir, ckpt_url, tokenizer, **kwargs
    )
