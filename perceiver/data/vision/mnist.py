"""MNIST handwritten digits."""

from typing import Any, Dict, Optional, Union

from perceiver._compat import deprecated_aliases, positional_0_11
from perceiver.data.vision.common import ImageDataModule, ImageTransform, kornia_augmentation
from perceiver.processing.image import PerceiverImageClassifierInputProcessor, mnist_image_processor_0_11

# perceiver-io 0.11's positional order of MNISTDataModule's arguments
_MNIST_0_11_ORDER = (
    "dataset_dir",
    "normalize",
    "channels_last",
    "random_crop",
    "batch_size",
    "num_workers",
    "pin_memory",
    "shuffle",
)


def _given_0_11_options(normalize, channels_last, random_crop, shuffle) -> Dict[str, Any]:
    """The 0.11 options given as keywords (those not at their default)."""
    defaults = dict(normalize=None, channels_last=True, random_crop=None, shuffle=True)
    given = dict(normalize=normalize, channels_last=channels_last, random_crop=random_crop, shuffle=shuffle)
    return {k: v for k, v in given.items() if v != defaults[k]}


class _RandomCrop:
    """An image processor call preceded by a random square crop of each image (torch's random generator)."""

    def __init__(self, image_processor: PerceiverImageClassifierInputProcessor, size: int):
        self.image_processor = image_processor
        self.size = size

    def __call__(self, images, **kwargs):
        from perceiver.data.vision.preprocessor import _random_crop

        return self.image_processor([_random_crop(image, self.size) for image in images], **kwargs)


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
        *args_0_11: Any,
        normalize: Optional[bool] = None,
        channels_last: bool = True,
        random_crop: Optional[int] = None,
        shuffle: bool = True,
        **kwargs: Any,
    ):
        """:param normalize: perceiver-io 0.11's preprocessing (pixel values as they are, no resize) scaled to
            [-1, 1] (True) or [0, 1] (False), the input a 0.11 MNIST model was trained on. Default (None): resize to
            28x28 and normalize with MNIST's mean and standard deviation.
        :param channels_last: images `(28, 28, 1)`; False: `(1, 28, 28)` (perceiver-io 0.11's option).
        :param random_crop: crop training images randomly to this size before preprocessing (0.11's option).
        :param shuffle: shuffle training data (0.11's option).

        perceiver-io 0.11's positional order (`dataset_dir, normalize, channels_last, random_crop, batch_size,
        num_workers, pin_memory, shuffle`) is taken, with a DeprecationWarning, when the second positional argument
        is a bool (its `normalize`).
        """
        if isinstance(config_name, bool):
            kwargs = positional_0_11(
                "MNISTDataModule",
                _MNIST_0_11_ORDER,
                (source, config_name, valid_size, augment, *args_0_11),
                {**kwargs, **_given_0_11_options(normalize, channels_last, random_crop, shuffle)},
                "MNISTDataModule(dataset_dir=..., normalize=..., ...)",
            )
            normalize, channels_last = kwargs.pop("normalize"), kwargs.pop("channels_last", True)
            random_crop, shuffle = kwargs.pop("random_crop", None), kwargs.pop("shuffle", True)
            source, config_name, valid_size, augment = "ylecun/mnist", None, 5000, False
        elif args_0_11:
            raise TypeError(f"MNISTDataModule() takes at most 4 positional arguments ({4 + len(args_0_11)} given)")
        if random_crop is not None and not 1 <= random_crop <= 28:
            raise ValueError(f"random_crop={random_crop} must be in [1, 28] or None")
        if not channels_last:
            self.image_shape = (1, 28, 28)
        super().__init__(source=source, config_name=config_name, valid_size=valid_size, augment=augment, **kwargs)

    @property
    def image_processor(self) -> PerceiverImageClassifierInputProcessor:
        h = self.hparams
        if h.normalize is not None:
            processor = mnist_image_processor_0_11(h.normalize)
            processor.channels_last = h.channels_last
            return processor
        return PerceiverImageClassifierInputProcessor(
            do_center_crop=False,
            size={"height": 28, "width": 28},
            image_mean=[0.1307],
            image_std=[0.3081],
            single_channel=True,
            channels_last=h.channels_last,
        )

    def setup(self, stage: Optional[str] = None) -> None:
        super().setup(stage)
        if self.hparams.random_crop is not None:
            h = self.hparams
            crop = _RandomCrop(self.image_processor, h.random_crop)
            self.ds_train = self.splits()["train"].with_transform(ImageTransform(crop, h.image_column, h.label_column))

    def augmentation(self):
        K = kornia_augmentation()
        return K.RandomAffine(degrees=10.0, translate=(0.1, 0.1), scale=(0.9, 1.1), p=0.5)


# perceiver-io 0.11's preprocessing names of this module (now in `perceiver.data.vision.preprocessor`)
__getattr__ = deprecated_aliases(
    __name__,
    {
        "MNISTPreprocessor": ("perceiver.data.vision.MNISTPreprocessor", "perceiver.data.vision:MNISTPreprocessor"),
        "mnist_transform": (
            "MNISTDataModule(normalize=...).image_processor",
            "perceiver.data.vision.preprocessor:mnist_transform",
        ),
    },
)
