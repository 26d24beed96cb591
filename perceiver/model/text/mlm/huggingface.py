"""🤗 wrapper of the masked language model (with the `fill-mask` pipeline), and conversion of Lightning checkpoints.
Conversion of DeepMind's official model: `perceiver.model.text.mlm.convert`."""

import logging
import os
from typing import Optional, Union

import torch
from transformers import AutoModelForMaskedLM, FillMaskPipeline
from transformers.modeling_outputs import MaskedLMOutput
from transformers.pipelines import PIPELINE_REGISTRY

from perceiver._compat import deprecated_aliases
from perceiver.model.core.huggingface import (
    PerceiverBackendConfig,
    PerceiverBackendModel,
    convert_lightning_checkpoint,
    load_tokenizer,
    register_auto_class,
)
from perceiver.model.core.loss import token_cross_entropy
from perceiver.model.core.utils import pad_mask_from
from perceiver.model.core.validation import check_input_ids, check_labels
from perceiver.model.text.mlm.backend import MaskedLanguageModel, MaskedLanguageModelConfig

logger = logging.getLogger(__name__)


class PerceiverMaskedLanguageModelConfig(PerceiverBackendConfig):
    model_type = "perceiver-io-masked-language-model"
    backend_config_class = MaskedLanguageModelConfig


class PerceiverMaskedLanguageModel(PerceiverBackendModel):
    """🤗 masked language model: `input_ids`, `attention_mask` (1 = token, 0 = padding), optional `labels`."""

    config_class = PerceiverMaskedLanguageModelConfig
    backend_model_class = MaskedLanguageModel
    main_input_name = "input_ids"

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.LongTensor] = None,
        return_dict: Optional[bool] = None,
        output_positions: Optional[torch.LongTensor] = None,
        **kwargs,
    ) -> MaskedLMOutput:
        """:param output_positions: decode only these positions, `(k,)` or `(b, k)`: logits are `(b, k, vocab)`,
        equal to the full logits at those positions, and `labels` (aligned with `input_ids`) are read there."""
        check_input_ids(input_ids)
        pad_mask = pad_mask_from(attention_mask)
        logits = self.backend_model(input_ids, pad_mask=pad_mask, output_positions=output_positions)
        loss = None
        if labels is not None:
            check_labels(labels, input_ids.shape, logits.shape[-1], allow_ignore=True)
            if output_positions is not None:
                index = output_positions
                labels = labels.gather(1, index.expand(labels.shape[0], -1) if index.dim() == 1 else index)
            loss = token_cross_entropy(logits, labels)
        return MaskedLMOutput(loss=loss, logits=logits)


class PerceiverFillMaskPipeline(FillMaskPipeline):
    """🤗 `fill-mask` pipeline that decodes only the masked positions of a Perceiver IO masked language model.

    The logits it hands to post-processing hold the decoded rows at the masked positions (the only ones read there)
    and zeros elsewhere. Other models run as in `FillMaskPipeline`.
    """

    def _forward(self, model_inputs):
        if not isinstance(self.model, PerceiverMaskedLanguageModel):
            return super()._forward(model_inputs)
        input_ids = model_inputs["input_ids"]
        masked = input_ids == self.tokenizer.mask_token_id
        # the pipeline takes one text at a time (batch of 1), so the masked positions are one index list
        positions = masked[0].nonzero().squeeze(-1)
        inputs = {k: v for k, v in model_inputs.items() if k in ("input_ids", "attention_mask")}
        decoded = self.model(**inputs, output_positions=positions).logits
        logits = decoded.new_zeros(*input_ids.shape, decoded.shape[-1])
        logits[:, positions] = decoded
        return {"logits": logits, "input_ids": input_ids}


register_auto_class(PerceiverMaskedLanguageModelConfig, PerceiverMaskedLanguageModel, AutoModelForMaskedLM)
_fill_mask = PIPELINE_REGISTRY.supported_tasks["fill-mask"]
if _fill_mask["impl"] in (FillMaskPipeline, "transformers.pipelines.fill_mask.FillMaskPipeline"):
    # `pipeline("fill-mask", ...)` builds this subclass, which behaves as its base for every other model
    _fill_mask["impl"] = PerceiverFillMaskPipeline


def convert_checkpoint(
    save_dir: Union[str, os.PathLike],
    ckpt_url: Union[str, os.PathLike],
    tokenizer_name: Optional[str] = None,
    **kwargs,
) -> PerceiverMaskedLanguageModel:
    """Converts a `LitMaskedLanguageModel` checkpoint (local path or URL) into a `PerceiverMaskedLanguageModel`
    saved in `save_dir` with tokenizer `tokenizer_name` (name or path; None or "perceiver-bytes": UTF-8 bytes)."""
    from perceiver.model.text.mlm.lightning import LitMaskedLanguageModel

    return convert_lightning_checkpoint(
        LitMaskedLanguageModel,
        PerceiverMaskedLanguageModel,
        save_dir,
        ckpt_url,
        load_tokenizer(tokenizer_name),
        **kwargs,
    )


# conversion from DeepMind's official model lives in `convert.py` (0.11 imported it from here)
_CONVERT = "perceiver.model.text.mlm.convert"
__getattr__ = deprecated_aliases(
    __name__,
    {
        **{
            name: (f"{_CONVERT}.{name}", f"{_CONVERT}:{name}")
            for name in ("convert_config", "convert_model", "copy_weights")
        },
        "copy_text_decoder_params": (f"{_CONVERT}.copy_text_decoder", f"{_CONVERT}:copy_text_decoder"),
    },
)
