"""Lightning wrapper of the text classifier."""

from typing import Optional

import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from perceiver.model.core import ClassificationDecoderConfig
from perceiver.model.core.lightning import LitModel
from perceiver.model.text.classifier.backend import TextClassifier, TextClassifierConfig
from perceiver.model.text.common import TextEncoderConfig


class LitTextClassifier(LitModel):
    """Trains a `TextClassifier` on batches `{"input_ids", "labels", "attention_mask"}`; logs loss and accuracy."""

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
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.train_acc = MulticlassAccuracy(num_classes=decoder.num_classes)
        self.val_acc = MulticlassAccuracy(num_classes=decoder.num_classes)

    def forward(self, input_ids: torch.Tensor, pad_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.backend_model(input_ids, pad_mask=pad_mask)

    def _step(self, batch, accuracy: MulticlassAccuracy):
        pad_mask = None if batch.get("attention_mask") is None else ~batch["attention_mask"].bool()
        logits = self(batch["input_ids"], pad_mask)
        accuracy(logits, batch["labels"])
        return F.cross_entropy(logits, batch["labels"])

    def training_step(self, batch, batch_idx):
        loss = self._step(batch, self.train_acc)
        self.log("train_loss", loss, prog_bar=True)
        self.log("train_acc", self.train_acc, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss = self._step(batch, self.val_acc)
        self.log("val_loss", loss, prog_bar=True, sync_dist=True)
        self.log("val_acc", self.val_acc, prog_bar=True)

    def test_step(self, batch, batch_idx):
        loss = self._step(batch, self.val_acc)
        self.log("test_loss", loss, sync_dist=True)
        self.log("test_acc", self.val_acc)
