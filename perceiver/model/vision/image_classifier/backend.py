"""Perceiver IO image classifier (Perceiver IO paper, Sec. 4.5 and Appendix D) with the three input adapters of
DeepMind's ImageNet models: pixels with Fourier position features, a 1x1 convolution with learned position
embeddings, and conv+maxpool preprocessing with Fourier position features of the downsampled grid."""

import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Tuple

import torch
import torch.nn as nn

from perceiver._compat import deprecated_aliases
from perceiver.model.core import (
    ClassificationDecoderConfig,
    EncoderConfig,
    FourierPositionEncoding,
    InputAdapter,
    PerceiverEncoder,
    PerceiverIO,
    PerceiverIOConfig,
)
from perceiver.model.core.modules import classification_decoder
from perceiver.model.core.utils import ActivationCheckpointing

INPUT_ADAPTERS = ("fourier", "learned", "conv")


@dataclass
class ImageEncoderConfig(EncoderConfig):
    """Encoder config plus the image input.

    :param image_shape: `(height, width, channels)` of channels-last input images.
    :param num_frequency_bands: Fourier position feature bands per spatial dimension.
    :param max_resolution: `(height, width)` whose Nyquist frequencies are the highest Fourier frequencies. Default
        (None): the grid the features are computed for (the image, or the conv adapter's downsampled grid). When
        set, the `"fourier"` and `"conv"` adapters take images of any size (as DeepMind's models do): the position
        features are computed for the input's grid with these frequencies. When None, only `image_shape` is taken.
    :param input_adapter: `"fourier"`: pixels concatenated with Fourier position features (perceiver-io 0.11's
        only adapter); `"learned"`: a 1x1 convolution concatenated with learned position embeddings; `"conv"`: 7x7
        stride-2 convolution, batch norm, ReLU and 3x3 stride-2 max pooling, concatenated with Fourier position
        features of the 4x downsampled grid.
    :param num_adapter_channels: output channels of the `"learned"` and `"conv"` adapters' convolutions (the learned
        position embedding has as many). Not used by `"fourier"`.
    """

    image_shape: Tuple[int, int, int] = (224, 224, 3)
    num_frequency_bands: int = 32
    max_resolution: Optional[Tuple[int, int]] = None
    input_adapter: str = "fourier"
    num_adapter_channels: int = 256

    def __post_init__(self):
        # JSON turns tuples into lists; keep tuples so that configs compare equal after a save/load round trip
        self.image_shape = tuple(self.image_shape)
        if self.max_resolution is not None:
            self.max_resolution = tuple(self.max_resolution)
        if len(self.image_shape) != 3:
            raise ValueError(f"image_shape={self.image_shape} must be (height, width, channels)")
        if self.input_adapter not in INPUT_ADAPTERS:
            raise ValueError(f"input_adapter={self.input_adapter!r} must be one of {list(INPUT_ADAPTERS)}")


@dataclass
class ImageClassifierConfig(PerceiverIOConfig):
    encoder: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    decoder: ClassificationDecoderConfig = field(default_factory=ClassificationDecoderConfig)


def check_image_shape(
    name: str, x: torch.Tensor, image_shape: Tuple[int, int, int], any_size: bool = False, min_size: int = 1
) -> None:
    """Raises a ValueError naming `name` unless `x` is a batch of channels-last images of shape `image_shape` (of
    any height and width >= `min_size` with `any_size`)."""
    expected = "(batch, " + ", ".join(str(d) for d in image_shape) + ")"
    if any_size:
        expected = f"(batch, height, width, {image_shape[-1]})"
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape {expected} (channels last), got {tuple(x.shape)}")
    if tuple(x.shape[1:]) == tuple(image_shape):
        return
    height, width, channels = image_shape
    if x.shape[-1] != channels:
        hint = " (channels first? the model takes channels last)" if x.shape[1] == channels else ""
        raise ValueError(
            f"{name} has {x.shape[-1]} channels in its last dimension, shape {tuple(x.shape)}; the model takes "
            f"{channels}, shape {expected}{hint}"
        )
    if not any_size:
        raise ValueError(f"{name} has image size {tuple(x.shape[1:3])}, the model takes ({height}, {width}) only")
    if min(x.shape[1:3]) < min_size:
        raise ValueError(f"{name} has image size {tuple(x.shape[1:3])}, height and width must be >= {min_size}")


class ImageInputAdapter(InputAdapter):
    """Pixels `(b, h, w, c)` concatenated with Fourier position features: `(b, h * w, c + position channels)`."""

    def __init__(
        self, image_shape: Tuple[int, int, int], num_frequency_bands: int, max_resolution: Optional[Tuple] = None
    ):
        *spatial_shape, num_image_channels = image_shape
        position_encoding = FourierPositionEncoding(spatial_shape, num_frequency_bands, max_resolution)
        super().__init__(num_image_channels + position_encoding.num_position_encoding_channels())
        self.image_shape = tuple(image_shape)
        self.position_encoding = position_encoding
        # with frequencies fixed by the config, the features of any grid are defined (see ImageEncoderConfig)
        self.any_size = max_resolution is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (b, h, w, c) -> (b, h * w, c + position channels)
        pos_enc = self.position_encoding(x.shape[0], input_shape=x.shape[1:3])
        return torch.cat([x.flatten(1, 2), pos_enc.to(x.dtype)], dim=-1)


class LearnedImageInputAdapter(InputAdapter):
    """A 1x1 convolution of the pixels (a linear map per pixel) concatenated with a learned position embedding."""

    def __init__(self, image_shape: Tuple[int, int, int], num_adapter_channels: int, init_scale: float = 0.02):
        height, width, num_image_channels = image_shape
        super().__init__(2 * num_adapter_channels)
        self.image_shape = tuple(image_shape)
        self.linear = nn.Linear(num_image_channels, num_adapter_channels)
        self.position_embedding = nn.Parameter(torch.empty(height * width, num_adapter_channels))
        with torch.no_grad():
            self.position_embedding.normal_(0.0, init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x.flatten(1, 2))
        return torch.cat([x, self.position_embedding.expand(x.shape[0], -1, -1)], dim=-1)


class ConvImageInputAdapter(InputAdapter):
    """Conv+maxpool preprocessing (4x spatial downsampling, DeepMind's `Conv2DDownsample`) concatenated with Fourier
    position features of the downsampled grid."""

    def __init__(
        self,
        image_shape: Tuple[int, int, int],
        num_adapter_channels: int,
        num_frequency_bands: int,
        max_resolution: Optional[Tuple] = None,
    ):
        height, width, num_image_channels = image_shape
        # conv: kernel 7, stride 2, padding 3; pool: kernel 3, stride 2, no padding
        grid_shape = tuple(((d - 1) // 2 + 1 - 3) // 2 + 1 for d in (height, width))
        if min(grid_shape) < 1:
            raise ValueError(f"image_shape={tuple(image_shape)} is too small for the conv adapter (at least 5x5)")
        position_encoding = FourierPositionEncoding(grid_shape, num_frequency_bands, max_resolution)
        super().__init__(num_adapter_channels + position_encoding.num_position_encoding_channels())
        self.image_shape = tuple(image_shape)
        self.conv = nn.Conv2d(num_image_channels, num_adapter_channels, kernel_size=7, stride=2, padding=3, bias=False)
        self.norm = nn.BatchNorm2d(num_adapter_channels)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2)
        self.position_encoding = position_encoding
        self.any_size = max_resolution is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.norm(self.conv(x.permute(0, 3, 1, 2)))))
        grid_shape = x.shape[2:]
        x = x.flatten(2).transpose(1, 2)  # (b, c, h, w) -> (b, h * w, c)
        pos_enc = self.position_encoding(x.shape[0], input_shape=grid_shape)
        return torch.cat([x, pos_enc.to(x.dtype)], dim=-1)


def image_input_adapter(config: ImageEncoderConfig) -> InputAdapter:
    """The input adapter selected by `config.input_adapter`."""
    if config.input_adapter == "learned":
        return LearnedImageInputAdapter(config.image_shape, config.num_adapter_channels, config.init_scale)
    if config.input_adapter == "conv":
        return ConvImageInputAdapter(
            config.image_shape, config.num_adapter_channels, config.num_frequency_bands, config.max_resolution
        )
    return ImageInputAdapter(config.image_shape, config.num_frequency_bands, config.max_resolution)


class ImageClassifier(PerceiverIO):
    """Perceiver IO image classifier: channels-last images `(b, h, w, c)` -> class logits `(b, num_classes)`."""

    def __init__(self, config: ImageClassifierConfig):
        input_adapter = image_input_adapter(config.encoder)
        encoder_config = config.encoder
        if encoder_config.num_cross_attention_qk_channels is None:
            # as in perceiver-io 0.11: cross-attention query/key channels default to the input's, not the latents'
            encoder_config = dataclasses.replace(
                encoder_config, num_cross_attention_qk_channels=input_adapter.num_input_channels
            )
        encoder = PerceiverEncoder(
            input_adapter,
            num_latents=config.num_latents,
            num_latent_channels=config.num_latent_channels,
            config=encoder_config,
            checkpointing=ActivationCheckpointing.of(config),
        )
        decoder = classification_decoder(
            config.decoder,
            num_latent_channels=config.num_latent_channels,
            checkpointing=ActivationCheckpointing.of(config),
        )
        super().__init__(encoder, decoder)
        self.config = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: channels-last images `(b, *config.encoder.image_shape)`.
        :return: logits `(b, num_classes)`.
        """
        adapter = self.encoder.input_adapter
        any_size = getattr(adapter, "any_size", False)
        # the conv adapter's 4x downsampling needs at least 5 pixels per side
        min_size = 5 if isinstance(adapter, ConvImageInputAdapter) else 1
        check_image_shape("pixel_values", x, self.config.encoder.image_shape, any_size=any_size, min_size=min_size)
        return self.decoder(self.encoder(x))


# perceiver-io 0.11 names
__getattr__ = deprecated_aliases(
    __name__, {"ImageEncoder": ("perceiver.model.core.PerceiverEncoder", "perceiver.model.core:PerceiverEncoder")}
)
