"""Perceiver IO optical flow (Perceiver IO paper, Appendix H): the encoder input is a pair of frames, each pixel a
3x3 patch; the decoder queries the latents with the encoder's own input, one query per pixel."""

import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Tuple

import torch
import torch.nn as nn

from perceiver._compat import deprecated_aliases
from perceiver.model.core import (
    DecoderConfig,
    EncoderConfig,
    FourierPositionEncoding,
    InputAdapter,
    OutputAdapter,
    PerceiverDecoder,
    PerceiverEncoder,
    PerceiverIO,
    PerceiverIOConfig,
    QueryProvider,
)
from perceiver.model.core.utils import ActivationCheckpointing


@dataclass
class OpticalFlowEncoderConfig(EncoderConfig):
    """Encoder config plus the input: `image_shape` `(height, width)`, channels per pixel and frame
    (`num_patch_input_channels`, 27 = 3x3 patch x 3 colors), patch embedding and Fourier position feature sizes."""

    image_shape: Tuple[int, int] = (368, 496)
    num_patch_input_channels: int = 27
    num_patch_hidden_channels: int = 64
    num_frequency_bands: int = 64

    def __post_init__(self):
        self.image_shape = tuple(self.image_shape)


@dataclass
class OpticalFlowDecoderConfig(DecoderConfig):
    """Decoder config plus the output `image_shape` and `rescale_factor` (predicted flow is divided by it). The
    queries are pixels, the outputs flow vectors, so there is no residual connection around the cross-attention."""

    cross_attention_residual: bool = False
    image_shape: Tuple[int, int] = (368, 496)
    rescale_factor: float = 100.0

    def __post_init__(self):
        self.image_shape = tuple(self.image_shape)


@dataclass
class OpticalFlowConfig(PerceiverIOConfig):
    encoder: OpticalFlowEncoderConfig = field(default_factory=OpticalFlowEncoderConfig)
    decoder: OpticalFlowDecoderConfig = field(default_factory=OpticalFlowDecoderConfig)


class OpticalFlowInputAdapter(InputAdapter):
    """Frame pair `(b, 2, c, h, w)` -> per-pixel embedding of both frames' patches (a linear map of the `2 * c`
    values) concatenated with Fourier position features: `(b, h * w, num_patch_hidden_channels + position channels)`."""

    def __init__(
        self,
        image_shape: Tuple[int, int],
        num_patch_input_channels: int,
        num_patch_hidden_channels: int,
        num_frequency_bands: int,
    ):
        position_encoding = FourierPositionEncoding(image_shape, num_frequency_bands)
        super().__init__(num_patch_hidden_channels + position_encoding.num_position_encoding_channels())
        self.linear = nn.Linear(2 * num_patch_input_channels, num_patch_hidden_channels)
        self.position_encoding = position_encoding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (b, t, c, h, w) -> (b, h * w, t * c): frame 1's channels, then frame 2's
        x = self.linear(x.permute(0, 3, 4, 1, 2).flatten(3).flatten(1, 2))
        return torch.cat([x, self.position_encoding(x.shape[0]).to(x.dtype)], dim=-1)


class OpticalFlowOutputAdapter(OutputAdapter):
    """Per-pixel decoder output `(b, h * w, c)` -> flow `(b, h, w, num_output_image_channels)`, divided by
    `rescale_factor` (parameters in perceiver-io 0.11's order)."""

    def __init__(
        self,
        image_shape: Tuple[int, int],
        num_output_query_channels: int,
        num_output_image_channels: int = 2,
        rescale_factor: float = 100.0,
    ):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.rescale_factor = rescale_factor
        self.linear = nn.Linear(num_output_query_channels, num_output_image_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.linear(x) / self.rescale_factor).unflatten(1, self.image_shape)


class InputQueryProvider(QueryProvider):
    """Declares the query channels of a decoder that is queried with the encoder's adapted input (no parameters)."""

    def __init__(self, num_query_channels: int):
        super().__init__()
        self._num_query_channels = num_query_channels

    @property
    def num_query_channels(self) -> int:
        return self._num_query_channels

    def forward(self, x: Optional[torch.Tensor] = None) -> torch.Tensor:
        if x is None:
            raise ValueError("this decoder is queried with the encoder's adapted input, pass it as output_query")
        return x


class OpticalFlow(PerceiverIO):
    """Perceiver IO optical flow: frame pairs `(b, 2, c, h, w)` of per-pixel 3x3 patches -> flow `(b, h, w, 2)`."""

    def __init__(self, config: OpticalFlowConfig):
        encoder_config = config.encoder
        input_adapter = OpticalFlowInputAdapter(
            image_shape=encoder_config.image_shape,
            num_patch_input_channels=encoder_config.num_patch_input_channels,
            num_patch_hidden_channels=encoder_config.num_patch_hidden_channels,
            num_frequency_bands=encoder_config.num_frequency_bands,
        )
        # as in perceiver-io 0.11: cross-attention query/key and value channels default to the input's
        num_input_channels = input_adapter.num_input_channels
        encoder_config = dataclasses.replace(
            encoder_config,
            num_cross_attention_qk_channels=encoder_config.num_cross_attention_qk_channels or num_input_channels,
            num_cross_attention_v_channels=encoder_config.num_cross_attention_v_channels or num_input_channels,
        )
        encoder = PerceiverEncoder(
            input_adapter,
            num_latents=config.num_latents,
            num_latent_channels=config.num_latent_channels,
            config=encoder_config,
            checkpointing=ActivationCheckpointing.of(config),
        )
        decoder = PerceiverDecoder(
            output_adapter=OpticalFlowOutputAdapter(
                image_shape=config.decoder.image_shape,
                num_output_query_channels=num_input_channels,
                rescale_factor=config.decoder.rescale_factor,
            ),
            output_query_provider=InputQueryProvider(num_input_channels),
            num_latent_channels=config.num_latent_channels,
            config=config.decoder,
            checkpointing=ActivationCheckpointing.of(config),
        )
        super().__init__(encoder, decoder)
        self.config = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: frame pairs `(b, 2, num_patch_input_channels, height, width)`.
        :return: flow `(b, height, width, 2)` (x, y displacement, before the pipeline's flow scale factor).
        """
        self.validate_input(x)
        x_latent, x_adapted = self.encoder(x, return_adapted_input=True)
        return self.decoder(x_latent, x_adapted)

    def validate_input(self, x: torch.Tensor) -> None:
        """Raises a ValueError naming the input unless its shape is `(b, 2, channels, height, width)`."""
        channels = self.config.encoder.num_patch_input_channels
        expected = (2, channels, *self.config.encoder.image_shape)
        if x.dim() != 5 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"inputs must have shape (batch, {', '.join(map(str, expected))}) (frame pairs of per-pixel patches "
                f"of {channels} channels, at the model's image size), got {tuple(x.shape)}"
            )


# perceiver-io 0.11 names
__getattr__ = deprecated_aliases(
    __name__,
    {
        "OpticalFlowQueryProvider": (
            "perceiver.model.vision.optical_flow.backend.InputQueryProvider",
            "perceiver.model.vision.optical_flow.backend:InputQueryProvider",
        )
    },
)
