"""perceiver-io 0.11's image preprocessors (`perceiver.data.vision.{MNISTPreprocessor, ImageNetPreprocessor}`):
images to model inputs, as thin wrappers of this library's image processor."""

import warnings
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_utils import BaseImageProcessor

from perceiver.processing.image import PerceiverImageClassifierInputProcessor, mnist_image_processor_0_11


class ImagePreprocessor:
    """Turns images (PIL, numpy or tensors) into `pixel_values`.

    :param transform: an image processor (a `PerceiverImageClassifierInputProcessor`), giving `(h, w, c)` per image
        with `channels_last`, else `(c, h, w)`; or, as in perceiver-io 0.11, any per-image transform returning a
        tensor (used as it is, `channels_last` then has no effect).
    """

    def __init__(self, transform: Any, channels_last: bool = True):
        self.transform = transform
        self.channels_last = channels_last

    @property
    def image_processor(self) -> Optional[BaseImageProcessor]:
        return self.transform if isinstance(self.transform, BaseImageProcessor) else None

    def preprocess(self, img: Any) -> torch.Tensor:
        if self.image_processor is None:
            return self.transform(img)
        return self.preprocess_batch([img])[0]

    def preprocess_batch(self, img_batch: Sequence[Any]) -> torch.Tensor:
        if self.image_processor is None:
            return torch.stack([self.transform(img) for img in img_batch])
        pixel_values = self.image_processor(list(img_batch), channels_last=True, return_tensors="pt")["pixel_values"]
        return pixel_values if self.channels_last else channels_to_first(pixel_values)


def channels_to_last(img: torch.Tensor) -> torch.Tensor:
    """`(..., c, h, w)` -> `(..., h, w, c)`, contiguous."""
    return img.movedim(-3, -1).contiguous()


def channels_to_first(img: torch.Tensor) -> torch.Tensor:
    """`(..., h, w, c)` -> `(..., c, h, w)`, contiguous."""
    return img.movedim(-1, -3).contiguous()


def lift_transform(transform: Callable[[Any], Any]) -> Callable[[Dict[str, list]], Dict[str, list]]:
    """A 🤗 dataset transform (`set_transform`) applying the per-image `transform` to each image of the batch's
    `image` column (perceiver-io 0.11's helper)."""

    def apply(examples: Dict[str, list]) -> Dict[str, list]:
        examples["image"] = [transform(image) for image in examples["image"]]
        return examples

    return apply


def imagenet_image_processor_0_11(crop_size: int = 256, size: int = 224) -> PerceiverImageClassifierInputProcessor:
    """perceiver-io 0.11's ImageNet validation preprocessing: center crop `crop_size`, resize to `size`, normalize
    (DeepMind's Perceiver preprocessing), RGB."""
    return PerceiverImageClassifierInputProcessor(
        size={"height": size, "width": size},
        crop_size={"height": crop_size, "width": crop_size},
        do_convert_rgb=True,
    )


def imagenet_valid_transform(crop_size: int, size: int, channels_last: bool) -> Callable[[Any], torch.Tensor]:
    """perceiver-io 0.11's per-image ImageNet validation transform (see `imagenet_image_processor_0_11`)."""
    return ImagePreprocessor(imagenet_image_processor_0_11(crop_size, size), channels_last).preprocess


def mnist_transform(
    normalize: bool = True, channels_last: bool = True, random_crop: Optional[int] = None
) -> Callable[[Any], torch.Tensor]:
    """perceiver-io 0.11's per-image MNIST transform: an optional random square crop of `random_crop` pixels (of
    the PIL image, with torch's random number generator), then grayscale in [-1, 1] (`normalize`) or [0, 1]."""
    preprocessor = ImagePreprocessor(mnist_image_processor_0_11(normalize), channels_last)
    if random_crop is not None and random_crop < 1:
        raise ValueError(f"random_crop={random_crop} must be >= 1 or None")

    def transform(img: Any) -> torch.Tensor:
        if random_crop is not None:
            img = _random_crop(img, random_crop)
        return preprocessor.preprocess(img)

    return transform


def _random_crop(img: Any, size: int) -> Image.Image:
    img = img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img))
    w, h = img.size
    if size > min(w, h):
        raise ValueError(f"random_crop={size} is larger than the image ({w}x{h})")
    top = int(torch.randint(0, h - size + 1, (1,)))
    left = int(torch.randint(0, w - size + 1, (1,)))
    return img.crop((left, top, left + size, top + size))


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
        processor = imagenet_image_processor_0_11(crop_size, size)
        super().__init__(processor, channels_last)
