"""🤗 wrapper of the text classifier, and conversion of Lightning checkpoints."""

import os
from typing import Dict, Optional, Union

import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutput

from perceiver.model.core.huggingface import (
    PerceiverBackendConfig,
    PerceiverBackendModel,
    convert_lightning_checkpoint,
    load_tokenizer,
    register_auto_class,
)
from perceiver.model.core.utils import pad_mask_from
from perceiver.model.core.validation import check_input_ids, check_labels
from perceiver.model.text.classifier.backend import TextClassifier, TextClassifierConfig


class PerceiverTextClassifierConfig(PerceiverBackendConfig):
    model_type = "perceiver-io-text-classifier"
    backend_config_class = TextClassifierConfig


class PerceiverTextClassifier(PerceiverBackendModel):
    """🤗 text classifier: `input_ids`, `attention_mask` (1 = token, 0 = padding), optional `labels` `(b,)`."""

    config_class = PerceiverTextClassifierConfig
    backend_model_class = TextClassifier
    main_input_name = "input_ids"

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.LongTensor] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        check_input_ids(input_ids)
        pad_mask = pad_mask_from(attention_mask)
        logits = self.backend_model(input_ids, pad_mask=pad_mask)
        if labels is not None:
            check_labels(labels, input_ids.shape[:1], logits.shape[-1])
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


register_auto_class(PerceiverTextClassifierConfig, PerceiverTextClassifier, AutoModelForSequenceClassification)


def convert_checkpoint(
    save_dir: Union[str, os.PathLike],
    ckpt_url: Union[str, os.PathLike],
    tokenizer_name: Optional[str] = None,
    id2label: Optional[Dict[int, str]] = None,
    label2id: Optional[Dict[str, int]] = None,
    **kwargs,
) -> PerceiverTextClassifier:
    """Converts a `LitTextClassifier` checkpoint (local path or URL) into a `PerceiverTextClassifier` saved in
    `save_dir` with tokenizer `tokenizer_name` (name or path; None or "perceiver-bytes": UTF-8 bytes). Label names
    default to the class names saved in the checkpoint (see `LitTextClassifier`), else `LABEL_<i>`."""
    from perceiver.model.text.classifier.lightning import LitTextClassifier

    labels = {k: v for k, v in {"id2label": id2label, "label2id": label2id}.items() if v is not None}
    return convert_lightning_checkpoint(
        LitTextClassifier, PerceiverTextClassifier, save_dir, ckpt_url, load_tokenizer(tokenizer_name), labels, **kwargs
    )


def convert_imdb_classifier_checkpoint(
    save_dir: Union[str, os.PathLike], ckpt_url: Union[str, os.PathLike], tokenizer_name: Optional[str], **kwargs
) -> PerceiverTextClassifier:
    """Converts a `LitTextClassifier` checkpoint trained on IMDb sentiment into a `PerceiverTextClassifier` saved with
    tokenizer `tokenizer_name` and labels "negative" (0) and "positive" (1), as perceiver-io 0.11 named them."""
    id2label = {0: "negative", 1: "positive"}
    label2id = {label: i for i, label in id2label.items()}
    return convert_checkpoint(save_dir, ckpt_url, tokenizer_name, id2label=id2label, label2id=label2id, **kwargs)
