"""Image classification data modules: batches `{"pixel_values": (b, h, w, c), "labels": (b,)}`."""

from perceiver.data.vision.common import ImageDataModule, ImageTransform
from perceiver.data.vision.digits import DigitsDataModule
from perceiver.data.vision.imagenet import ImageNetDataModule
from perceiver.data.vision.mnist import MNISTDataModule

__all__ = ["DigitsDataModule", "ImageDataModule", "ImageNetDataModule", "ImageTransform", "MNISTDataModule"]
