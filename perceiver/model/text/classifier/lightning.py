"""Lightning wrapper of the text classifier."""

from typing import Any, Dict, Optional, Tuple

import torch

from perceiver.model.core import ClassificationDecoderConfig
from perceiver.model.core.lightning import LitClassifier
from perceiver.model.core.utils import pad_mask_from
from perceiver.model.text.classifier.backend import TextClassifier, TextClassifierConfig
from perceiver.model.text.common import TextEncoderConfig


class LitTextClassifier(LitClassifier):
    """Trains a `TextClassifier` on batches `{"input_ids", "labels", "attention_mask"}`; logs loss and accuracy.

    :param id2label: class names by label id, saved in the checkpoint's hyperparameters so that `convert_checkpoint`
        gives the 🤗 model these names. Default: the training data module's `id2label`, when it has one.
    """

    backend_config_class = TextClassifierConfig
    backend_model_class = TextClassifier

    def __init__(
        self,
        encoder: TextEncoderConfig,
        decoder: ClassificationDecoderConfig,
        num_latents: int,
        num_latent_channels: int,
        activation_checkpointing: bool = False,
        activation_offloading: bool = False,
        id2label: Optional[Dict[int, str]] = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)

    def forward(self, input_ids: torch.Tensor, pad_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.backend_model(input_ids, pad_mask=pad_mask)

    def classify(self, batch: dict) -> Tuple[torch.Tensor, torch.Tensor]:
        pad_mask = pad_mask_from(batch.get("attention_mask"))
        return self(batch["input_ids"], pad_mask), batch["labels"]
