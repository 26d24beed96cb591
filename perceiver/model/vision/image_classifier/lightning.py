"""Lightning wrapper of the image classifier."""

from typing import Dict, Optional, Tuple, Union

import torch

from perceiver.model.core.lightning import LitClassifier
from perceiver.model.vision.image_classifier.backend import (
    ClassificationDecoderConfig,
    ImageClassifier,
    ImageClassifierConfig,
    ImageEncoderConfig,
)


class LitImageClassifier(LitClassifier):
    """Trains an `ImageClassifier` on batches of channels-last images and labels: a tuple `(images, labels)` or a
    dict with `pixel_values` (or `image`) and `labels` (or `label`). Logs loss and accuracy.

    :param id2label: class names by label id, saved in the checkpoint's hyperparameters so that `convert_checkpoint`
        gives the 🤗 model these names. Default: the training data module's `id2label`, when it has one.
    """

    backend_config_class = ImageClassifierConfig
    backend_model_class = ImageClassifier

    def __init__(
        self,
        encoder: ImageEncoderConfig,
        decoder: ClassificationDecoderConfig,
        num_latents: int,
        num_latent_channels: int,
        activation_checkpointing: bool = False,
        activation_offloading: bool = False,
        id2label: Optional[Dict[int, str]] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backend_model(x)

    def classify(self, batch: Union[Tuple, dict]) -> Tuple[torch.Tensor, torch.Tensor]:
        x, y = _unpack(batch)
        return self(x), y


def _unpack(batch: Union[Tuple, dict]) -> Tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, dict):
        x = batch["pixel_values"] if "pixel_values" in batch else batch["image"]
        y = batch["labels"] if "labels" in batch else batch["label"]
        return x, y
    x, y = batch
    return x, y
