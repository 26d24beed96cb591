"""Image classification data modules: batches `{"pixel_values": (b, h, w, c), "labels": (b,)}`."""

from perceiver.data.vision.common import ImageDataModule, ImageTransform
from perceiver.data.vision.digits import DigitsDataModule
from perceiver.data.vision.imagenet import ImageNetDataModule
from perceiver.data.vision.mnist import MNISTDataModule
from perceiver.data.vision.preprocessor import ImageNetPreprocessor, ImagePreprocessor, MNISTPreprocessor

__all__ = [
    "DigitsDataModule",
    "ImageDataModule",
    "ImageNetDataModule",
    "ImageTransform",
    "MNISTDataModule",
    # perceiver-io 0.11's preprocessors (deprecated)
    "ImageNetPreprocessor",
    "ImagePreprocessor",
    "MNISTPreprocessor",
]
