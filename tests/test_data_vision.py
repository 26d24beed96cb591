"""Image data modules: scikit-learn's bundled digits, and MNIST and ImageNet from local image folders."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from perceiver.data.vision import DigitsDataModule, ImageNetDataModule, MNISTDataModule
from perceiver.processing.image import PerceiverImageClassifierInputProcessor


def digit_images():
    digits = load_digits()
    return np.round(digits.images * (255 / 16)).astype(np.uint8), digits.target


def write_image_folder(root: Path, images, labels, size=None, mode="L") -> None:
    """`root/<label>/<i>.png` for each image."""
    for i, (image, label) in enumerate(zip(images, labels)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        pil = Image.fromarray(image).convert(mode)
        (pil.resize(size, Image.NEAREST) if size else pil).save(root / str(label) / f"{i}.png")


def test_digits(tmp_path):
    dm = DigitsDataModule(batch_size=50, num_workers=0, dataset_dir=str(tmp_path))
    dm.setup()
    assert (len(dm.ds_train), len(dm.ds_valid), len(dm.ds_test)) == (1293, 144, 360)
    assert dm.image_shape == (8, 8, 1) and dm.num_classes == 10 and dm.id2label[3] == "3"
    images, targets = digit_images()
    # all images, each once, with its label; classes stratified over the splits
    seen = []
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
        for batch in loader:
            x, y = batch["pixel_values"], batch["labels"]
            assert x.shape[1:] == (8, 8, 1) and x.dtype == torch.float32 and y.dtype == torch.long
            assert x.min() >= -1 and x.max() <= 1
            pixels = torch.round((x[..., 0] + 1) / 2 * 255).to(torch.uint8)
            seen += [(int(label), bytes(p.flatten().tolist())) for p, label in zip(pixels, y)]
    assert sorted(seen) == sorted((int(t), image.tobytes()) for image, t in zip(images, targets))
    test_counts = torch.bincount(torch.cat([b["labels"] for b in dm.test_dataloader()]), minlength=10)
    assert test_counts.min() >= 35 and test_counts.max() <= 37


def test_digits_image_processor_reproduces_batches(tmp_path):
    """The processor saved with a converted model preprocesses a digit image (e.g. in the pipeline) as in training."""
    dm = DigitsDataModule(batch_size=8, num_workers=0)
    dm.setup()
    dm.image_processor.save_pretrained(tmp_path)
    processor = PerceiverImageClassifierInputProcessor.from_pretrained(tmp_path)
    images = [dm.splits()["test"][i]["image"] for i in range(8)]
    assert all(isinstance(image, Image.Image) for image in images)
    expected = next(iter(dm.test_dataloader()))["pixel_values"]
    torch.testing.assert_close(processor(images, return_tensors="pt")["pixel_values"], expected)


def test_digits_augmentation_of_training_batches_only():
    dm = DigitsDataModule(batch_size=64, num_workers=0, augment=True)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    original = batch["pixel_values"].clone()
    dm.trainer = SimpleNamespace(training=False)
    assert torch.equal(dm.on_after_batch_transfer(dict(batch), 0)["pixel_values"], original)
    dm.trainer = SimpleNamespace(training=True)
    torch.manual_seed(0)
    augmented = dm.on_after_batch_transfer(dict(batch), 0)["pixel_values"]
    assert augmented.shape == original.shape
    changed = (augmented - original).abs().flatten(1).max(dim=1).values > 1e-3
    assert 10 < changed.sum() < 54  # each image with probability 0.5


def test_mnist_from_local_image_folder(tmp_path):
    images, targets = digit_images()
    write_image_folder(tmp_path / "mnist" / "train", images[:300], targets[:300], size=(28, 28))
    write_image_folder(tmp_path / "mnist" / "test", images[300:400], targets[300:400], size=(28, 28))
    dm = MNISTDataModule(
        source=str(tmp_path / "mnist"), valid_size=50, batch_size=32, num_workers=0, dataset_dir=str(tmp_path / "d")
    )
    assert dm.class_names == [str(i) for i in range(10)]
    dm.setup()
    assert (len(dm.ds_train), len(dm.ds_valid), len(dm.ds_test)) == (250, 50, 100)
    batch = next(iter(dm.test_dataloader()))
    assert batch["pixel_values"].shape == (32, 28, 28, 1)
    # MNIST normalization: black background at (0 - mean) / std
    assert batch["pixel_values"].min().item() == pytest.approx(-0.1307 / 0.3081, abs=1e-5)
    assert int(batch["labels"][0]) == int(dm.splits()["test"][0]["label"])


def test_mnist_resizes_color_images_of_any_size(tmp_path):
    """Grayscale conversion (PIL, 8 bit) comes before resizing, so every pixel value and image size works."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(20, 32, 30, 3), dtype=np.uint8)  # all values, color, not 28x28
    write_image_folder(tmp_path / "mnist" / "train", images[:16], [i % 10 for i in range(16)], mode="RGB")
    write_image_folder(tmp_path / "mnist" / "test", images[16:], [0, 1, 2, 3], mode="RGB")
    dm = MNISTDataModule(
        source=str(tmp_path / "mnist"), valid_size=4, batch_size=4, num_workers=0, dataset_dir=str(tmp_path / "d")
    )
    dm.setup()
    batch = next(iter(dm.test_dataloader()))
    assert batch["pixel_values"].shape == (4, 28, 28, 1)
    image = dm.splits()["test"][0]["image"]
    luma = np.asarray(image.convert("L").resize((28, 28), Image.BICUBIC), dtype=np.float32) / 255
    expected = torch.from_numpy((luma - 0.1307) / 0.3081)
    torch.testing.assert_close(batch["pixel_values"][0, ..., 0], expected, atol=1e-5, rtol=0)


def test_imagenet_from_local_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(24, 40, 48, 3), dtype=np.uint8)
    labels = ["n01440764", "n01443537", "n01484850"] * 8
    write_image_folder(tmp_path / "imagenet" / "train", images[:18], labels[:18], mode="RGB")
    write_image_folder(tmp_path / "imagenet" / "val", images[18:], labels[18:], mode="RGB")
    dm = ImageNetDataModule(
        source=str(tmp_path / "imagenet"), image_size=32, batch_size=6, num_workers=0, dataset_dir=str(tmp_path / "d")
    )
    assert dm.image_shape == (32, 32, 3) and dm.num_classes == 3 and dm.class_names[0] == "n01440764"
    dm.setup()
    assert (len(dm.ds_train), len(dm.ds_valid), len(dm.ds_test)) == (18, 6, 6)
    batch = next(iter(dm.train_dataloader()))
    assert batch["pixel_values"].shape == (6, 32, 32, 3)
    dm.trainer = SimpleNamespace(training=True)
    augmented = dm.on_after_batch_transfer(dict(batch), 0)["pixel_values"]
    assert augmented.shape == (6, 32, 32, 3) and not torch.equal(augmented, batch["pixel_values"])


def test_missing_image_source_fails_at_once(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"source='.*mnist' does not exist"):
        MNISTDataModule(source=str(tmp_path / "mnist"))
    (tmp_path / "empty").mkdir()
    dm = ImageNetDataModule(source=str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="holds no data files"):
        dm.setup()
