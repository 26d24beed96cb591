"""perceiver-io 0.11's public names at their 0.11 import paths, its text data module options and batch format: each
shim delegates to the one implementation and warns with the new spelling where it changed."""

import importlib
import json
import sys
import warnings

import datasets
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification, PerceiverTokenizer

from perceiver.data.text import RandomShiftDataset, RandomTruncateCollator, Task, TextDataModule, TextPreprocessor
from perceiver.data.vision import ImageNetPreprocessor, MNISTPreprocessor
from perceiver.model.text import mlm
from perceiver.model.vision.image_classifier import PerceiverImageClassifierInputProcessor
from tests.conftest import pydoc_text
from tests.test_compat_0_11_checkpoint import write_legacy_checkpoint

# ---- names of model packages ----


@pytest.mark.parametrize(
    "module,name,new",
    [
        ("perceiver.model.text.mlm", "TextDecoder", "perceiver.model.core.PerceiverDecoder"),
        ("perceiver.model.text.clm", "TextInputAdapter", "perceiver.model.core.TokenInputAdapterWithRotarySupport"),
        ("perceiver.model.text.clm", "TextOutputAdapter", "perceiver.model.core.TokenOutputAdapter"),
        ("perceiver.model.text.common", "TextInputAdapter", "perceiver.model.core.TokenInputAdapter"),
        ("perceiver.model.text.common", "TiedTextOutputAdapter", "perceiver.model.core.TiedTokenOutputAdapter"),
    ],
)
def test_renamed_model_names_warn_with_new_spelling(module, name, new):
    new_module, new_name = new.rsplit(".", 1)
    with pytest.warns(DeprecationWarning, match=f"{module}.{name} is deprecated, use {new}"):
        value = getattr(importlib.import_module(module), name)
    # the new class itself, or a thin subclass that takes 0.11's constructor arguments (clm.TextOutputAdapter)
    assert issubclass(value, getattr(importlib.import_module(new_module), new_name))
    with pytest.raises(AttributeError):
        _ = importlib.import_module(module).NoSuchName


@pytest.mark.parametrize(
    "module,names",
    [
        ("perceiver.model.text.mlm", ["TextEncoder", "convert_config", "convert_checkpoint", "convert_model"]),
        ("perceiver.model.text.classifier", ["convert_imdb_classifier_checkpoint", "convert_checkpoint"]),
        ("perceiver.model.vision.image_classifier", ["convert_mnist_classifier_checkpoint", "convert_config"]),
        ("perceiver.model.vision.optical_flow", ["convert_config", "convert_model", "OpticalFlowPipeline"]),
        ("perceiver.data.text", ["TextPreprocessor", "Task", "TextDataModule", "RandomTruncateCollator"]),
        ("perceiver.data.text.collator", ["RandomTruncateCollator", "WordMaskingCollator", "TokenMaskingCollator"]),
        ("perceiver.data.text.common", ["TextPreprocessor", "Task", "TextDataModule", "RandomShiftDataset"]),
        ("perceiver.data.vision", ["ImageNetPreprocessor", "MNISTPreprocessor", "MNISTDataModule"]),
        ("perceiver.model.text.mlm.utils", ["MaskFiller"]),
    ],
)
def test_unchanged_names_import_without_warning(module, names):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        imported = importlib.import_module(module)
        for name in names:
            assert getattr(imported, name) is not None


def test_convert_imdb_classifier_checkpoint(fixtures_dir, tmp_path):
    from perceiver.model.text.classifier import convert_imdb_classifier_checkpoint

    ckpt = write_legacy_checkpoint(fixtures_dir, "txt_clf", tmp_path / "clf.ckpt")
    # the fixture has 3 classes; 0.11's IMDb names label the first two
    convert_imdb_classifier_checkpoint(tmp_path / "out", ckpt, tokenizer_name=None)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").eval()
    assert model.config.id2label == {0: "negative", 1: "positive"}
    expected = load_file(fixtures_dir / "txt_clf" / "expected.safetensors")
    with torch.no_grad():
        logits = model(input_ids=expected["input_ids"], attention_mask=expected["attention_mask"]).logits
    assert (logits - expected["logits"]).abs().max() <= 1e-4


def test_convert_mnist_classifier_checkpoint(fixtures_dir, tmp_path):
    from perceiver.model.vision.image_classifier import convert_mnist_classifier_checkpoint

    ckpt = write_legacy_checkpoint(fixtures_dir, "img_clf", tmp_path / "img.ckpt")
    convert_mnist_classifier_checkpoint(tmp_path / "out", ckpt)
    model = AutoModelForImageClassification.from_pretrained(tmp_path / "out").eval()
    assert model.config.id2label == {i: str(i) for i in range(10)}
    processor = PerceiverImageClassifierInputProcessor.from_pretrained(tmp_path / "out")
    image = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 3)
    pixel_values = processor(image, return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (1, 8, 8, 1)
    expected_pixels = torch.from_numpy(np.arange(64).reshape(1, 8, 8, 1) * 3 / 255.0 * 2 - 1).float()
    assert (pixel_values - expected_pixels).abs().max() < 1e-6  # 0.11: [0, 1] normalized with mean 0.5, std 0.5
    expected = load_file(fixtures_dir / "img_clf" / "expected.safetensors")
    with torch.no_grad():
        assert (model(pixel_values=expected["pixel_values"]).logits - expected["logits"]).abs().max() <= 1e-4


# ---- vision preprocessors and video helpers ----


def test_mnist_preprocessor_warns_and_normalizes_as_0_11():
    image = Image.fromarray(np.arange(28 * 28, dtype=np.uint8).reshape(28, 28) % 251)
    with pytest.warns(DeprecationWarning, match="MNISTDataModule"):
        preprocessor = MNISTPreprocessor()
    x = preprocessor.preprocess(image)
    expected = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0 * 2 - 1)[..., None]
    assert x.shape == (28, 28, 1) and (x - expected).abs().max() < 1e-6
    with pytest.warns(DeprecationWarning):
        channels_first = MNISTPreprocessor(normalize=False, channels_last=False)
    batch = channels_first.preprocess_batch([image, image])
    assert batch.shape == (2, 1, 28, 28) and 0.0 <= batch.min() and batch.max() <= 1.0


def test_imagenet_preprocessor_warns_and_crops_resizes():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 320, 3), dtype=np.uint8))
    with pytest.warns(DeprecationWarning, match="ImageNetDataModule"):
        preprocessor = ImageNetPreprocessor(crop_size=256, size=64)
    assert preprocessor.preprocess(image).shape == (64, 64, 3)


def test_video_utils_warn_and_round_trip(tmp_path):
    sys.modules.pop("perceiver.data.vision.video_utils", None)
    with pytest.warns(DeprecationWarning, match="perceiver.model.vision.optical_flow.video"):
        video_utils = importlib.import_module("perceiver.data.vision.video_utils")
    frames = [np.full((16, 16, 3), 40 * i, dtype=np.uint8) for i in range(4)]
    video_utils.write_video(str(tmp_path / "v.mp4"), frames, fps=5)
    read = video_utils.read_video_frames(str(tmp_path / "v.mp4"))
    pairs = video_utils.read_video_frame_pairs(str(tmp_path / "v.mp4"))
    assert len(read) == 4 and len(pairs) == 3 and read[0].shape == (16, 16, 3)
    assert all(np.abs(f.astype(int) - g.astype(int)).mean() < 8 for f, g in zip(read, frames))


# ---- text: preprocessor, mask filler, data module options and batch format ----


def test_text_preprocessor_and_mask_filler(fixtures_dir):
    from perceiver.model.text.mlm.utils import MaskFiller

    with pytest.warns(DeprecationWarning, match="call the tokenizer"):
        preprocessor = TextPreprocessor(PerceiverTokenizer(), max_seq_len=48, add_special_tokens=True)
    input_ids, pad_mask = preprocessor.preprocess_batch(["a b", "longer text"])
    assert input_ids.shape == pad_mask.shape == (2, 13) and pad_mask[0, -1] and not pad_mask[1].any()
    model = mlm.PerceiverMaskedLanguageModel.from_pretrained(fixtures_dir / "mlm").backend_model.eval()
    with pytest.warns(DeprecationWarning, match="fill-mask"):
        filler = MaskFiller(preprocessor)
    texts, filled = filler.fill(model, ["I am <mask><mask>.", "no"], num_predictions=2)
    assert texts[0] == "I am [MASK][MASK]." and len(filled) == 2 and len(filled[0]) == 2
    # the first prediction is the argmax at each mask position
    ids, mask = preprocessor.preprocess_batch(texts)
    with torch.no_grad():
        top = model(ids, mask).argmax(dim=-1)
    ids[ids == preprocessor.tokenizer.mask_token_id] = top[ids == preprocessor.tokenizer.mask_token_id]
    assert filled[0][0] == preprocessor.tokenizer.decode(ids[0], skip_special_tokens=True)
    assert filled[1] == ["no", "no"]


class LegacyTextDataModule(TextDataModule):
    """A 0.11-style subclass: own init arguments, `load_source_dataset` instead of a source."""

    def __init__(self, source_train_size: int, source_valid_size: int, *args, **kwargs):
        super().__init__(*args, **kwargs)

    def load_source_dataset(self) -> datasets.DatasetDict:
        lines = [line for line in pydoc_text(40000).split("\n") if line.strip()]
        dataset = datasets.Dataset.from_dict({"text": lines, "label": [len(line) % 2 for line in lines]})
        dataset = self._train_valid_split(dataset, self.hparams.source_train_size, self.hparams.source_valid_size)
        if self.hparams.task in [Task.mlm, Task.clm]:
            dataset = datasets.DatasetDict({k: ds.remove_columns("label") for k, ds in dataset.items()})
        return dataset


def legacy_module(tmp_path, **kwargs) -> LegacyTextDataModule:
    dm = LegacyTextDataModule(
        dataset_dir=str(tmp_path / "data"),
        tokenizer=None,
        source_train_size=300,
        source_valid_size=60,
        preproc_batch_size=100,
        preproc_workers=1,
        num_workers=0,
        pin_memory=False,
        batch_size=4,
        **{"max_seq_len": 64, **kwargs},
    )
    dm.prepare_data()
    dm.setup()
    return dm


def test_task_enum():
    assert Task.mlm == "mlm" and Task("clm") is Task.clm and [t.name for t in Task] == ["mlm", "clm", "clf"]


@pytest.mark.parametrize("static_masking", [False, True])
def test_mlm_batches_as_0_11_tuples_with_static_masking(tmp_path, static_masking):
    dm = legacy_module(tmp_path, task=Task.mlm, static_masking=static_masking, mask_prob=0.3)
    assert dm.hparams.task == "mlm" and dm.hparams.source_train_size == 300
    y, x, pad_mask = next(iter(dm.train_dataloader()))
    assert y.shape == x.shape == pad_mask.shape == (4, 64) and pad_mask.dtype == torch.bool
    selected = (y != -100).float().mean()
    assert 0.15 < selected < 0.45
    batch = next(iter(dm.val_dataloader()))
    assert set(batch.keys()) == {"input_ids", "attention_mask", "labels"}
    assert torch.equal(batch[0], batch["labels"]) and torch.equal(batch[2], batch["attention_mask"] == 0)
    # dynamic masking draws new masks for each pass over the data (as in 0.11), static masking not
    y1, *_ = next(iter(dm.val_dataloader()))
    y2, *_ = next(iter(dm.val_dataloader()))
    assert torch.equal(y1, y2) == static_masking
    # under a trainer (which sets the epoch) the masks are reproducible: seeded by seed, epoch and batch
    keyed = []
    for epoch in (0, 0, 1):
        loader = dm.val_dataloader()
        loader.sampler.set_epoch(epoch)
        keyed.append(next(iter(loader))[0])
    assert torch.equal(keyed[0], keyed[1]) and torch.equal(keyed[0], keyed[2]) == static_masking


def test_static_masking_needs_word_masking(tmp_path):
    with pytest.raises(ValueError, match="static_masking=true is only supported for mask_words=true"):
        legacy_module(tmp_path, task=Task.mlm, static_masking=True, mask_words=False)


def test_clm_options_of_0_11(tmp_path):
    dm = legacy_module(
        tmp_path,
        task=Task.clm,
        random_train_shift=True,
        random_valid_shift=True,
        random_train_truncation=True,
        random_valid_truncation=True,
        random_min_seq_len=8,
        valid_batch_size=6,
    )
    assert dm.random_shift
    assert isinstance(dm.ds_train.dataset, RandomShiftDataset) and isinstance(dm.ds_valid.dataset, RandomShiftDataset)
    train, valid = dm.train_dataloader(), dm.val_dataloader()
    # the data module's loaders wrap the collator (per-batch seeding, see perceiver.data.common)
    assert isinstance(train.collate_fn.collate_fn, RandomTruncateCollator)
    assert isinstance(valid.collate_fn.collate_fn, RandomTruncateCollator)
    assert valid.batch_size == 6 and train.batch_size == 4
    lengths = {x.shape[1] for _, x, _ in train}  # random truncation of each batch (seeded per batch)
    assert len(lengths) > 1 and all(8 <= n <= 64 for n in lengths)

    plain = legacy_module(tmp_path, task=Task.clm)
    assert not plain.random_shift and not isinstance(
        plain.train_dataloader().collate_fn.collate_fn, RandomTruncateCollator
    )
    y, x, pad_mask = next(iter(plain.train_dataloader()))
    assert y.shape == x.shape == (4, 64) and not pad_mask.any()
    assert torch.equal(x[:, 1:], y[:, :-1])  # 0.11's labels are the next tokens


def test_clf_batches_as_0_11_tuples(tmp_path):
    dm = legacy_module(tmp_path, task=Task.clf, max_seq_len=512)
    y, x, pad_mask = next(iter(dm.val_dataloader()))
    assert y.shape == (4,) and x.shape == pad_mask.shape and pad_mask.any()
    assert torch.equal(x == dm.tokenizer.pad_token_id, pad_mask)
    assert json.loads(json.dumps(dm.hparams.task)) == "clf"
