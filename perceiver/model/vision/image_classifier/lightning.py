"""Lightning wrapper of the image classifier."""

from typing import Any, Tuple, Union

import torch
from torchmetrics.classification import MulticlassAccuracy

from perceiver.model.core.lightning import LitModel
from perceiver.model.core.loss import token_cross_entropy
from perceiver.model.vision.image_classifier.backend import (
    ClassificationDecoderConfig,
    ImageClassifier,
    ImageClassifierConfig,
    ImageEncoderConfig,
)


class LitImageClassifier(LitModel):
    """Trains an `ImageClassifier` on batches of channels-last images and labels: a tuple `(images, labels)` or a
    dict with `pixel_values` (or `image`) and `labels` (or `label`). Logs loss and accuracy."""

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
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.train_acc = MulticlassAccuracy(num_classes=decoder.num_classes)
        self.val_acc = MulticlassAccuracy(num_classes=decoder.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backend_model(x)

    def _step(self, batch: Union[Tuple, dict]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = _unpack(batch)
        logits = self(x)
        return token_cross_entropy(logits, y), logits, y

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss, logits, y = self._step(batch)
        self.train_acc(logits.argmax(dim=-1), y)
        self.log("train_loss", loss, prog_bar=True)
        self.log("train_acc", self.train_acc, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss, logits, y = self._step(batch)
        self.val_acc(logits.argmax(dim=-1), y)
        self.log("val_loss", loss, prog_bar=True, sync_dist=True)
        self.log("val_acc", self.val_acc, prog_bar=True)
        return loss

    test_step = validation_step


def _unpack(batch: Union[Tuple, dict]) -> Tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, dict):
        x = batch["pixel_values"] if "pixel_values" in batch else batch["image"]
        y = batch["labels"] if "labels" in batch else batch["label"]
        return x, y
    x, y = batch
    return x, y
