"""MNIST handwritten digits."""

from typing import Optional, Union

from perceiver.data.vision.common import ImageDataModule, kornia_augmentation
from perceiver.processing.image import PerceiverImageClassifierInputProcessor


class MNISTDataModule(ImageDataModule):
    """MNIST (`ylecun/mnist`: 60,000 train, 10,000 test 28x28 grayscale images, 10 classes); `valid_size` of the
    training images are held out for validation. Model input: `(b, 28, 28, 1)`, normalized with MNIST's mean and
    standard deviation. `source` also takes a local image folder (`train/<digit>/*.png`, `test/<digit>/*.png`) or
    hub snapshot."""

    hub_source = "ylecun/mnist"
    image_shape = (28, 28, 1)

    def __init__(
        self,
        source: str = "ylecun/mnist",
        config_name: Optional[str] = None,
        valid_size: Union[int, float] = 5000,
        augment: bool = False,
        **kwargs,
    ):
        super().__init__(source=source, config_name=config_name, valid_size=valid_size, augment=augment, **kwargs)

    @property
    def image_processor(self) -> PerceiverImageClassifierInputProcessor:
        return PerceiverImageClassifierInputProcessor(
            do_center_crop=False,
            size={"height": 28, "width": 28},
            image_mean=[0.1307],
            image_std=[0.3081],
            single_channel=True,
            channels_last=True,
        )

    def augmentation(self):
        K = kornia_augmentation()
        return K.RandomAffine(degrees=10.0, translate=(0.1, 0.1), scale=(0.9, 1.1), p=0.5)
