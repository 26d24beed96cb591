"""perceiver-io 0.11's image preprocessors (`perceiver.data.vision.{MNISTPreprocessor, ImageNetPreprocessor}`):
images to model inputs, as thin wrappers of this library's image processor."""

import warnings
from typing import Any, Sequence

import torch

from perceiver.processing.image import PerceiverImageClassifierInputProcessor, mnist_image_processor_0_11


class ImagePreprocessor:
    """Turns images (PIL, numpy or tensors) into `pixel_values`, `(h, w, c)` per image with `channels_last`, else
    `(c, h, w)`, with `image_processor` (a `PerceiverImageClassifierInputProcessor`)."""

    def __init__(self, image_processor: PerceiverImageClassifierInputProcessor, channels_last: bool = True):
        self.image_processor = image_processor
        self.channels_last = channels_last

    def preprocess(self, img: Any) -> torch.Tensor:
        return self.preprocess_batch([img])[0]

    def preprocess_batch(self, img_batch: Sequence[Any]) -> torch.Tensor:
        pixel_values = self.image_processor(list(img_batch), channels_last=True, return_tensors="pt")["pixel_values"]
        return pixel_values if self.channels_last else pixel_values.permute(0, 3, 1, 2).contiguous()


class MNISTPreprocessor(ImagePreprocessor):
    """0.11's MNIST preprocessing: grayscale `(28, 28, 1)` in [-1, 1] (`normalize`) or [0, 1].

    Deprecated: use `MNISTDataModule(...).image_processor` (or the image processor saved with a model)."""

    def __init__(self, normalize: bool = True, channels_last: bool = True):
        warnings.warn(
            "MNISTPreprocessor is deprecated, use perceiver.data.vision.MNISTDataModule().image_processor or "
            "perceiver.model.vision.image_classifier.PerceiverImageClassifierInputProcessor",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(mnist_image_processor_0_11(normalize), channels_last)


class ImageNetPreprocessor(ImagePreprocessor):
    """0.11's ImageNet validation preprocessing: center crop `crop_size`, resize to `size`, normalize (DeepMind's
    Perceiver preprocessing), RGB.

    Deprecated: use `ImageNetDataModule(...).image_processor` (or the image processor saved with a model)."""

    def __init__(self, crop_size: int = 256, size: int = 224, channels_last: bool = True):
        warnings.warn(
            "ImageNetPreprocessor is deprecated, use perceiver.data.vision.ImageNetDataModule().image_processor or "
            "perceiver.model.vision.image_classifier.PerceiverImageClassifierInputProcessor",
            DeprecationWarning,
            stacklevel=2,
        )
        processor = PerceiverImageClassifierInputProcessor(
            size={"height": size, "width": size},
            crop_size={"height": crop_size, "width": crop_size},
            do_convert_rgb=True,
        )
        super().__init__(processor, channels_last)
