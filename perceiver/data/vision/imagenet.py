"""ImageNet (ILSVRC 2012) image classification."""

from typing import Optional, Tuple

import datasets

from perceiver._compat import deprecated_aliases
from perceiver.data.vision.common import ImageDataModule, kornia_augmentation
from perceiver.processing.image import PerceiverImageClassifierInputProcessor


class ImageNetDataModule(ImageDataModule):
    """ImageNet-1k (`ILSVRC/imagenet-1k`, gated on the hub: log in with `huggingface-cli login`; 1.28M training and
    50,000 validation images, 1000 classes), or a local image folder with `train/<class>/*.JPEG` and
    `val/<class>/*.JPEG`. The validation images serve as test images, too (the hub's test images have no labels).

    Preprocessing as in DeepMind's Perceiver models (center crop, resize to `image_size`, ImageNet mean and standard
    deviation; model input `(b, image_size, image_size, 3)`); `augment` adds random resized crops and horizontal
    flips to training batches.

    :param source: hub id or local image folder.
    :param config_name: hub dataset config.
    :param image_size: height and width of model input images.
    :param augment: random resized crops and horizontal flips of training images.
    """

    hub_source = "ILSVRC/imagenet-1k"

    def __init__(
        self,
        source: str = "ILSVRC/imagenet-1k",
        config_name: Optional[str] = None,
        image_size: int = 224,
        augment: bool = True,
        **kwargs,
    ):
        self.image_shape: Tuple[int, int, int] = (image_size, image_size, 3)
        super().__init__(source=source, config_name=config_name, augment=augment, **kwargs)

    @property
    def image_processor(self) -> PerceiverImageClassifierInputProcessor:
        size = self.hparams.image_size
        crop = round(size * 256 / 224)  # DeepMind's center crop 256 -> resize 224, scaled to image_size
        return PerceiverImageClassifierInputProcessor(
            size={"height": size, "width": size},
            crop_size={"height": crop, "width": crop},
            do_convert_rgb=True,
            channels_last=True,
        )

    def augmentation(self):
        K = kornia_augmentation()
        size = self.hparams.image_size
        return K.AugmentationSequential(
            K.RandomResizedCrop((size, size), scale=(0.35, 1.0)),
            K.RandomHorizontalFlip(),
        )

    def load_splits(self) -> datasets.DatasetDict:
        splits = super().load_splits()
        splits["test"] = splits["valid"]
        return splits


# perceiver-io 0.11's preprocessing names of this module (now in `perceiver.data.vision.preprocessor`)
__getattr__ = deprecated_aliases(
    __name__,
    {
        "ImageNetPreprocessor": (
            "perceiver.data.vision.ImageNetPreprocessor",
            "perceiver.data.vision:ImageNetPreprocessor",
        ),
        "imagenet_valid_transform": (
            "ImageNetDataModule().image_processor",
            "perceiver.data.vision.preprocessor:imagenet_valid_transform",
        ),
    },
)
