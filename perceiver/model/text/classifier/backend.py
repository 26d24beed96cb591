"""Perceiver IO text classifier: a text encoder and a classification decoder."""

from dataclasses import dataclass, field
from typing import Optional

import torch

from perceiver.model.core import ClassificationDecoderConfig, PerceiverIO, PerceiverIOConfig
from perceiver.model.core.modules import classification_decoder
from perceiver.model.core.utils import ActivationCheckpointing
from perceiver.model.text.common import TextEncoder, TextEncoderConfig


@dataclass
class TextClassifierConfig(PerceiverIOConfig):
    encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    decoder: ClassificationDecoderConfig = field(default_factory=ClassificationDecoderConfig)


class TextClassifier(PerceiverIO):
    """Token ids `(b, n)` -> class logits `(b, num_classes)`.

    The encoder can start from a pretrained masked language model's encoder (`encoder.params`) and be frozen
    (`encoder.freeze`).
    """

    def __init__(self, config: TextClassifierConfig):
        encoder = TextEncoder(
            config.encoder,
            num_latents=config.num_latents,
            num_latent_channels=config.num_latent_channels,
            checkpointing=ActivationCheckpointing.of(config),
        )
        decoder = classification_decoder(
            config.decoder,
            num_latent_channels=config.num_latent_channels,
            checkpointing=ActivationCheckpointing.of(config),
        )
        super().__init__(encoder, decoder)
        self.config = config

    def forward(self, x: torch.Tensor, pad_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """:param x: token ids `(b, n)`. :param pad_mask: `(b, n)`, True marks padding."""
        self.encoder.validate_input(x, pad_mask)
        return self.decoder(self.encoder(x, pad_mask))
