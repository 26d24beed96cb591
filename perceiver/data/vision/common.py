"""The base of the image classification data modules."""

from typing import Any, Dict, List, Optional, Tuple, Union

import datasets
import torch

from perceiver._compat import deprecated_aliases
from perceiver.data.common import DEFAULT_DATASET_DIR, SplitDataModule, check_source, load_source, split_off
from perceiver.processing.image import PerceiverImageClassifierInputProcessor


class ImageTransform:
    """Turns a batch of 🤗 dataset rows `{image_column: PIL images, label_column: ints}` into model input:
    `{"pixel_values": (b, h, w, c) float tensor, "labels": (b,) long tensor}`, with `image_processor`."""

    def __init__(self, image_processor, image_column: str = "image", label_column: str = "label"):
        self.image_processor = image_processor
        self.image_column = image_column
        self.label_column = label_column

    def __call__(self, batch: Dict[str, list]) -> Dict[str, torch.Tensor]:
        pixel_values = self.image_processor(batch[self.image_column], return_tensors="pt")["pixel_values"]
        return {"pixel_values": pixel_values, "labels": torch.as_tensor(batch[self.label_column], dtype=torch.long)}


class ImageDataModule(SplitDataModule):
    """Image classification data from a 🤗 hub dataset or a local image folder (`train/<class>/*.png`, ...), with
    batches `{"pixel_values", "labels"}` of channels-last float images `(b, h, w, c)` and integer labels.

    Images are decoded and preprocessed on the fly by `image_processor` (a `PerceiverImageClassifierInputProcessor`,
    🤗's Perceiver image preprocessing; save it with the converted model so that inference preprocesses images the
    same way). With `augment`, training batches are augmented with kornia on the device they are trained on.

    :param source: 🤗 hub id or local directory (an image folder, whose sub-directory names are the class names, or a
        hub snapshot). Subclasses default to their hub id.
    :param config_name: hub dataset config.
    :param revision: hub dataset revision.
    :param dataset_dir: directory of downloads and cached data.
    :param valid_size: fraction (or number) of training images held out for validation where the source has no
        validation split.
    :param augment: augment training images (random affine transforms, crops or flips, depending on the data).
    :param image_column: name of the image column of the source.
    :param label_column: name of the label column of the source.
    :param batch_size: images per batch.
    :param num_workers: data loader worker processes.
    :param pin_memory: pin batches in memory (only where a GPU is available).
    :param seed: seed of the validation split and of shuffling.
    """

    hub_source: Optional[str] = None
    image_shape: Tuple[int, int, int]
    """`(height, width, channels)` of model input images."""

    def __init__(
        self,
        source: Optional[str] = None,
        config_name: Optional[str] = None,
        revision: Optional[str] = None,
        dataset_dir: str = DEFAULT_DATASET_DIR,
        valid_size: Union[int, float] = 0.1,
        augment: bool = False,
        image_column: str = "image",
        label_column: str = "label",
        batch_size: int = 64,
        num_workers: int = 2,
        pin_memory: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        # not merged into the model's logged hyperparameters, where names such as `tokenizer` would clash
        self.save_hyperparameters(logger=False)
        if source is not None:
            check_source(source)
        self.ds_train = self.ds_valid = self.ds_test = None
        self._splits: Optional[datasets.DatasetDict] = None
        self._augmentation = self.augmentation() if augment else None

    @property
    def image_processor(self) -> PerceiverImageClassifierInputProcessor:
        raise NotImplementedError

    def augmentation(self) -> Any:
        """The kornia augmentation of training batches `(b, c, h, w)` (used with `augment=True`)."""
        raise NotImplementedError(f"{type(self).__name__} has no augmentation")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_names(self) -> List[str]:
        """Class names, index = label id (read from the data's label feature)."""
        feature = self.splits()["train"].features[self.hparams.label_column]
        if not isinstance(feature, datasets.ClassLabel):
            raise ValueError(f"label_column={self.hparams.label_column!r} of source has no class names ({feature})")
        return list(feature.names)

    @property
    def id2label(self) -> Dict[int, str]:
        return dict(enumerate(self.class_names))

    def load_source(self) -> datasets.DatasetDict:
        h = self.hparams
        return load_source(h.source, h.config_name, h.revision, cache_dir=str(self.dataset_dir / "cache"))

    def load_splits(self) -> datasets.DatasetDict:
        """The train, valid and (where available) test splits; validation data default to `valid_size` of the
        training data."""
        h = self.hparams
        dataset = self.load_source()
        if "train" not in dataset:
            raise ValueError(f"source={h.source!r} has no train split, found {sorted(dataset)}")
        splits = {name: dataset[name] for name in ("train", "valid", "test") if name in dataset}
        for name, ds in splits.items():
            for column in (h.image_column, h.label_column):
                if column not in ds.column_names:
                    raise ValueError(f"{name} split has no column {column!r}, columns are {ds.column_names}")
        if "valid" not in splits:
            splits["train"], splits["valid"] = split_off(splits["train"], h.valid_size, h.seed)
        return datasets.DatasetDict(splits)

    def splits(self) -> datasets.DatasetDict:
        """The (memory-mapped) splits, loaded once."""
        if self._splits is None:
            self._splits = self.load_splits()
        return self._splits

    def prepare_data(self) -> None:
        self.load_source()  # downloads (once) and converts to Arrow files in dataset_dir

    def setup(self, stage: Optional[str] = None) -> None:
        h = self.hparams
        transform = ImageTransform(self.image_processor, h.image_column, h.label_column)
        splits = self.splits()
        self.ds_train = splits["train"].with_transform(transform)
        self.ds_valid = splits["valid"].with_transform(transform)
        self.ds_test = splits["test"].with_transform(transform) if "test" in splits else None

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # augments on the training device, batch-wise (kornia works on channels-first images)
        if self._augmentation is not None and self.trainer is not None and self.trainer.training:
            x = batch["pixel_values"].permute(0, 3, 1, 2)
            batch["pixel_values"] = self._augmentation(x).permute(0, 2, 3, 1).contiguous()
        return batch


def kornia_augmentation():
    """The kornia.augmentation module, with an error naming the package where it is missing."""
    try:
        import kornia.augmentation
    except ImportError as e:
        raise ImportError("augment=True needs kornia: pip install kornia") from e
    return kornia.augmentation


# perceiver-io 0.11's helpers of this module (now in `perceiver.data.vision.preprocessor`)
__getattr__ = deprecated_aliases(
    __name__,
    {
        name: (f"perceiver.data.vision.preprocessor.{name}", f"perceiver.data.vision.preprocessor:{name}")
        for name in ("ImagePreprocessor", "lift_transform", "channels_to_last")
    },
)
