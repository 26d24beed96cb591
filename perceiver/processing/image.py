"""The image processor of the Perceiver IO image classifier: DeepMind's preprocessing, channels-last output and an
optional grayscale conversion, built on transformers' public image processor API."""

from typing import Any, List, Union

import numpy as np
from PIL import Image
from transformers.image_processing_utils import BatchFeature
from transformers.image_transforms import to_pil_image
from transformers.models.perceiver.image_processing_pil_perceiver import PerceiverImageProcessorPil
from transformers.processing_utils import ImagesKwargs


class PerceiverImageClassifierInputProcessorKwargs(ImagesKwargs, total=False):
    channels_last: bool
    single_channel: bool


class PerceiverImageClassifierInputProcessor(PerceiverImageProcessorPil):
    """DeepMind's Perceiver image preprocessing (center crop, resize, rescale, normalize; see
    `transformers.PerceiverImageProcessor`) producing channels-last `pixel_values` `(b, h, w, c)`.

    :param channels_last: output `(b, h, w, c)` (the image classifier's layout) instead of `(b, c, h, w)`.
    :param single_channel: convert images to 8-bit grayscale with PIL (mode "L", ITU-R 601-2 luma) before any other
        step, as perceiver-io 0.11 did; the output has one channel.

    The class name is the one perceiver-io 0.11 saved in `preprocessor_config.json`.
    """

    valid_kwargs = PerceiverImageClassifierInputProcessorKwargs
    channels_last = True
    single_channel = False

    def __init__(self, channels_last: bool = True, single_channel: bool = False, **kwargs: Any):
        # explicit parameters in perceiver-io 0.11's positional order
        super().__init__(channels_last=channels_last, single_channel=single_channel, **kwargs)

    def preprocess(self, images: Any, *args: Any, **kwargs: Any) -> BatchFeature:
        """As transformers' `preprocess`; `channels_last` and `single_channel` override this processor's settings."""
        channels_last = kwargs.pop("channels_last", None)
        single_channel = kwargs.pop("single_channel", None)
        channels_last = self.channels_last if channels_last is None else channels_last
        single_channel = self.single_channel if single_channel is None else single_channel
        return_tensors = kwargs.pop("return_tensors", None)
        if single_channel:
            # 8-bit grayscale first, so that resizing works on integer pixels as for any other 8-bit image
            images = _to_grayscale(images)
            kwargs["do_convert_rgb"] = False
        pixel_values = super().preprocess(images, *args, **kwargs)["pixel_values"]
        if channels_last:
            pixel_values = [np.moveaxis(np.asarray(image), 0, -1) for image in pixel_values]
        return BatchFeature(data={"pixel_values": pixel_values}, tensor_type=return_tensors)


def _to_grayscale(images: Any) -> Union[np.ndarray, List[Any]]:
    """8-bit grayscale images `(1, h, w)` of a PIL image, an array or tensor (an image or a batch), or a list."""
    if isinstance(images, (list, tuple)):
        return [_to_grayscale(image) for image in images]
    if not isinstance(images, Image.Image):
        array = np.asarray(images.cpu() if hasattr(images, "cpu") else images)
        if array.ndim == 4:
            return [_to_grayscale(image) for image in array]
        images = to_pil_image(array[None] if array.ndim == 2 else array)  # floats are taken to lie in [0, 1]
    return np.asarray(images.convert("L"))[None]


def mnist_image_processor_0_11(normalize: bool = True) -> PerceiverImageClassifierInputProcessor:
    """perceiver-io 0.11's MNIST preprocessing: grayscale images as they are (no crop or resize), scaled to [-1, 1]
    (mean 0.5, std 0.5) with `normalize`, else [0, 1]."""
    return PerceiverImageClassifierInputProcessor(
        single_channel=True,
        do_center_crop=False,
        do_resize=False,
        do_normalize=normalize,
        image_mean=[0.5],
        image_std=[0.5],
    )
