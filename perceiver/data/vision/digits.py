"""scikit-learn's bundled 8x8 digits: image classification data that needs no download."""

from typing import Union

import datasets
import numpy as np

from perceiver.data.common import split_off
from perceiver.data.vision.common import ImageDataModule, kornia_augmentation
from perceiver.processing.image import PerceiverImageClassifierInputProcessor


class DigitsDataModule(ImageDataModule):
    """The 1,797 8x8 grayscale digit images bundled with scikit-learn (`sklearn.datasets.load_digits`), 10 classes.

    Images (16 gray levels) are scaled to 8-bit grayscale images, so that they can be saved and fed to the
    `image-classification` pipeline like any other image, then split, stratified by class and seeded, into
    `test_size` test, `valid_size` validation and remaining training images. Model input: `(b, 8, 8, 1)`,
    normalized to [-1, 1].

    :param valid_size: fraction (or number) of the images held out for validation.
    :param test_size: fraction (or number) of the images held out for testing.
    :param augment: augment training images (random affine transforms).
    """

    image_shape = (8, 8, 1)

    def __init__(
        self,
        valid_size: Union[int, float] = 0.1,
        test_size: Union[int, float] = 0.2,
        augment: bool = False,
        **kwargs,
    ):
        super().__init__(source=None, valid_size=valid_size, augment=augment, **kwargs)

    @property
    def image_processor(self) -> PerceiverImageClassifierInputProcessor:
        return PerceiverImageClassifierInputProcessor(
            do_center_crop=False,
            do_resize=False,
            image_mean=[0.5],
            image_std=[0.5],
            single_channel=True,
            channels_last=True,
        )

    def augmentation(self):
        K = kornia_augmentation()
        # small shifts, rotations and scalings, as handwriting varies
        return K.RandomAffine(degrees=10.0, translate=(0.1, 0.1), scale=(0.9, 1.1), p=0.5)

    def load_source(self) -> datasets.DatasetDict:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
        features = datasets.Features(
            {"image": datasets.Image(), "label": datasets.ClassLabel(names=[str(n) for n in digits.target_names])}
        )
        data = datasets.Dataset.from_dict({"image": list(images), "label": digits.target.tolist()}, features=features)
        return datasets.DatasetDict(train=data)

    def load_splits(self) -> datasets.DatasetDict:
        h = self.hparams
        data = self.load_source()["train"]
        rest, test = split_off(data, h.test_size, h.seed, stratify_by="label")
        train, valid = split_off(rest, h.valid_size, h.seed, stratify_by="label")
        return datasets.DatasetDict(train=train, valid=valid, test=test)

    def prepare_data(self) -> None:
        pass  # bundled with scikit-learn
