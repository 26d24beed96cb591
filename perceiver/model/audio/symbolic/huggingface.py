"""🤗 wrapper of the symbolic audio model; all Perceiver AR logic is shared with the causal language model."""

import os
from typing import Any, Optional, Union

from perceiver.model.audio.symbolic.backend import SymbolicAudioModel, SymbolicAudioModelConfig
from perceiver.model.core.huggingface import (
    PerceiverBackendConfig,
    convert_lightning_checkpoint,
    load_tokenizer,
    register_auto_class,
    special_token_ids,
)
from perceiver.model.core.perceiver_ar.huggingface import PerceiverCausalSequenceModel
from perceiver.processing.midi import PAD_TOKEN_ID


class PerceiverSymbolicAudioModelConfig(PerceiverBackendConfig):
    model_type = "perceiver-ar-symbolic-audio-model"
    backend_config_class = SymbolicAudioModelConfig


class PerceiverSymbolicAudioModel(PerceiverCausalSequenceModel):
    """🤗 Perceiver AR symbolic audio model (`input_ids` are MIDI event tokens); see `PerceiverCausalSequenceModel`."""

    config_class = PerceiverSymbolicAudioModelConfig
    backend_model_class = SymbolicAudioModel


register_auto_class(PerceiverSymbolicAudioModelConfig, PerceiverSymbolicAudioModel)


def convert_checkpoint(
    save_dir: Union[str, os.PathLike],
    ckpt_url: Union[str, os.PathLike],
    tokenizer_name: Optional[str] = None,
    **kwargs: Any,
) -> PerceiverSymbolicAudioModel:
    """Converts a `LitSymbolicAudioModel` checkpoint (local path or URL) into a `PerceiverSymbolicAudioModel` saved in
    `save_dir`. `kwargs` go to `save_pretrained`."""
    from perceiver.model.audio.symbolic.lightning import LitSymbolicAudioModel

    if tokenizer_name is None:
        # MIDI event tokens: the generation config pads with the MIDI vocabulary's pad token (there is no EOS token)
        tokenizer, token_ids = None, {"pad_token_id": PAD_TOKEN_ID}
    else:
        tokenizer = load_tokenizer(tokenizer_name, padding_side="left")
        token_ids = special_token_ids(tokenizer)
    return convert_lightning_checkpoint(
        LitSymbolicAudioModel,
        PerceiverSymbolicAudioModel,
        save_dir,
        ckpt_url,
        tokenizer,
        generation_token_ids=token_ids,
        **kwargs,
    )


# 0.11 defined the pipeline here: `from perceiver.model.audio.symbolic.huggingface import ReturnType` keeps working
from perceiver.model.audio.symbolic.pipeline import ReturnType, SymbolicAudioPipeline  # noqa: E402

__all__ = [
    "PerceiverSymbolicAudioModel",
    "PerceiverSymbolicAudioModelConfig",
    "ReturnType",
    "SymbolicAudioPipeline",
    "convert_checkpoint",
]
