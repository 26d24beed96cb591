"""Image classifier: 0.11 compatibility, conversion from transformers, 🤗 / Lightning wrappers, processor, pipeline."""

import json

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import transformers
from PIL import Image
from safetensors.torch import load_file
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset
from transformers import AutoImageProcessor, AutoModelForImageClassification, pipeline
from transformers.models.perceiver.image_processing_pil_perceiver import PerceiverImageProcessorPil

from perceiver.model.vision import image_classifier as ic
from tests.conftest import FIXTURES

FIXTURE = FIXTURES / "img_clf"

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(num_classes: int = 10, image_shape=(8, 8, 1), init_scale: float = 0.02, **encoder_kwargs):
    encoder = ic.ImageEncoderConfig(
        image_shape=image_shape,
        num_frequency_bands=4,
        num_cross_attention_heads=1,
        num_cross_attention_qk_channels=32,
        num_self_attention_heads=2,
        num_self_attention_layers_per_block=1,
        init_scale=init_scale,
        **encoder_kwargs,
    )
    decoder = ic.ClassificationDecoderConfig(
        num_classes=num_classes, num_output_query_channels=32, num_cross_attention_heads=1, init_scale=init_scale
    )
    return ic.ImageClassifierConfig(encoder, decoder, num_latents=8, num_latent_channels=32)


def digits(normalize: bool = True):
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(-1) / 16.0
    return (x * 2 - 1 if normalize else x), torch.tensor(data.target)


# ---------------------------------------------------------------- perceiver-io 0.11 compatibility


def test_fixture_reproduces_logits():
    model = AutoModelForImageClassification.from_pretrained(FIXTURE).eval()
    assert isinstance(model, ic.PerceiverImageClassifier)
    expected = load_file(FIXTURE / "expected.safetensors")
    with torch.no_grad():
        logits = model(pixel_values=expected["pixel_values"]).logits
    assert (logits - expected["logits"]).abs().max() <= 1e-4
    assert model.backend_model.config == model.config.backend_config
    assert model.config.num_labels == 10


def test_fixture_layout_and_config_round_trip(tmp_path):
    config = json.loads((FIXTURE / "config.json").read_text())
    model = AutoModelForImageClassification.from_pretrained(FIXTURE)
    fixture_state = load_file(FIXTURE / "model.safetensors")
    fresh = ic.ImageClassifier(model.config.backend_config)
    assert {f"backend_model.{k}": tuple(v.shape) for k, v in fresh.state_dict().items()} == {
        k: tuple(v.shape) for k, v in fixture_state.items()
    }
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == config["model_type"]
    assert saved["model_config"] == config["model_config"]  # same fields, perceiver-io 0.11 can load it
    assert set(load_file(tmp_path / "model.safetensors")) == set(fixture_state)


def test_extension_fields_are_saved_when_used(tmp_path):
    backend_config = tiny_config(image_shape=(16, 16, 3), input_adapter="conv", num_adapter_channels=8)
    backend_config.encoder.max_resolution = (8, 8)
    ic.PerceiverImageClassifier(ic.PerceiverImageClassifierConfig(backend_config)).save_pretrained(tmp_path)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path)
    assert loaded.config.backend_config == backend_config
    assert loaded.config.backend_config.encoder.max_resolution == (8, 8)


# ---------------------------------------------------------------- conversion from transformers

SOURCE_CONFIGS = [
    ("PerceiverForImageClassificationFourier", dict(image_size=16, num_cross_attention_heads=3)),
    # image_size is unused by transformers' Fourier and conv models: the source's image processor sets the size
    ("PerceiverForImageClassificationFourier", dict(image_size=56, processor_size=14, num_cross_attention_heads=3)),
    ("PerceiverForImageClassificationFourier", dict(image_size=12, qk_channels=24, num_cross_attention_heads=2)),
    (
        "PerceiverForImageClassificationFourier",
        dict(image_size=10, num_cross_attention_heads=4, cross_attention_shape_for_attention="q", num_blocks=1),
    ),
    ("PerceiverForImageClassificationLearned", dict(image_size=8, num_cross_attention_heads=2)),
    ("PerceiverForImageClassificationLearned", dict(image_size=6, qk_channels=24, v_channels=24)),
    ("PerceiverForImageClassificationConvProcessing", dict(image_size=20, cross_attention_widening_factor=2)),
    ("PerceiverForImageClassificationConvProcessing", dict(image_size=32, num_self_attends_per_block=1)),
    ("PerceiverForImageClassificationConvProcessing", dict(image_size=56, processor_size=24)),
]


def tiny_source(architecture: str, **kwargs):
    config = transformers.PerceiverConfig(
        **{
            "num_latents": 8,
            "d_latents": 24,
            "num_blocks": 2,
            "num_self_attends_per_block": 2,
            "num_self_attention_heads": 4,
            "num_cross_attention_heads": 1,
            "self_attention_widening_factor": 2,
            "num_labels": 5,
            "architectures": [architecture],
            **kwargs,
        }
    )
    source = getattr(transformers, architecture)(config).eval()
    with torch.no_grad():  # weights far from their init, so that mistakes show in the logits
        for param in source.parameters():
            param.normal_(0.0, 0.3)
        for module in source.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
    return source


@pytest.mark.parametrize("architecture,kwargs", SOURCE_CONFIGS)
def test_convert_model_equals_source(tmp_path, architecture, kwargs):
    torch.manual_seed(len(tmp_path.name))
    kwargs = dict(kwargs)
    processor_size = kwargs.pop("processor_size", None)
    source = tiny_source(architecture, **kwargs)
    source.config.id2label = {i: f"class {i}" for i in range(5)}
    source.config.label2id = {f"class {i}": i for i in range(5)}
    source.save_pretrained(tmp_path / "source")
    size = source.config.image_size
    if processor_size is not None:
        PerceiverImageProcessorPil(size=processor_size, crop_size=processor_size + 2).save_pretrained(
            tmp_path / "source"
        )
        size = processor_size

    ic.convert_model(tmp_path / "converted", str(tmp_path / "source"))
    model = AutoModelForImageClassification.from_pretrained(tmp_path / "converted").eval()
    x = torch.randn(3, size, size, 3)
    with torch.no_grad():
        expected = source(inputs=x.permute(0, 3, 1, 2)).logits  # transformers takes channels first
        logits = model(pixel_values=x).logits
    assert expected.abs().max() > 0.1
    assert (logits - expected).abs().max() <= 1e-4
    assert model.config.id2label == source.config.id2label

    processor = AutoImageProcessor.from_pretrained(tmp_path / "converted")
    assert isinstance(processor, ic.PerceiverImageClassifierInputProcessor)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8))
    assert processor(image, return_tensors="pt")["pixel_values"].shape == (1, size, size, 3)


def test_convert_model_rejects_other_architectures(tmp_path):
    config = transformers.PerceiverConfig(
        num_latents=4,
        d_latents=16,
        num_self_attends_per_block=1,
        num_blocks=1,
        train_size=[4, 4],
        num_cross_attention_heads=1,
        num_self_attention_heads=1,
    )
    config.architectures = ["PerceiverForOpticalFlow"]
    transformers.PerceiverForOpticalFlow(config).save_pretrained(tmp_path / "flow")
    with pytest.raises(ValueError, match="PerceiverForOpticalFlow.*PerceiverForImageClassificationFourier"):
        ic.convert_model(tmp_path / "converted", str(tmp_path / "flow"))
    assert not (tmp_path / "converted").exists()


TINY_SOURCE = dict(
    num_latents=4, d_latents=8, num_blocks=1, num_self_attends_per_block=1, num_cross_attention_heads=1, image_size=8
)


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(use_query_residual=False), "use_query_residual=False"),
        (dict(hidden_act="relu"), "hidden_act='relu'"),
        ("sine_only", "sine_only=True"),
    ],
)
def test_convert_config_rejects_what_the_backend_cannot_compute(change, message):
    source = transformers.PerceiverForImageClassificationFourier(transformers.PerceiverConfig(**TINY_SOURCE))
    if change == "sine_only":
        source.perceiver.input_preprocessor.position_embeddings.sine_only = True
    else:
        source.config.update(change)
        if "use_query_residual" in change:
            source.perceiver.encoder.cross_attention.attention.use_query_residual = False
    with pytest.raises(ValueError, match=message):
        ic.convert_config(source)


def test_convert_config_input_adapter_must_match_the_source():
    config = transformers.PerceiverConfig(**TINY_SOURCE)
    source = transformers.PerceiverForImageClassificationLearned(config)
    assert ic.convert_config(source).encoder.input_adapter == "learned"
    with pytest.raises(ValueError, match="input_adapter='conv' converts a PerceiverForImageClassificationConv"):
        ic.convert_config(source, input_adapter="conv")
    with pytest.raises(ValueError, match=r"input_adapter='pixels' must be one of \['conv', 'fourier', 'learned'\]"):
        ic.convert_config(config, input_adapter="pixels")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "shape,message",
    [
        ((2, 8, 8, 3), r"pixel_values has 3 channels .* takes 1, shape \(batch, 8, 8, 1\)"),
        ((2, 1, 8, 8), r"channels first"),
        ((2, 9, 8, 1), r"image size \(9, 8\), the model takes \(8, 8\)"),
        ((8, 8, 1), r"pixel_values must have shape \(batch, 8, 8, 1\)"),
    ],
)
def test_bad_image_shape(shape, message):
    model = ic.PerceiverImageClassifier(ic.PerceiverImageClassifierConfig(tiny_config()))
    with pytest.raises(ValueError, match=message):
        model(pixel_values=torch.zeros(shape))


def test_bad_encoder_config():
    with pytest.raises(ValueError, match="input_adapter='pixels' must be one of"):
        ic.ImageEncoderConfig(input_adapter="pixels")
    with pytest.raises(ValueError, match="too small for the conv adapter"):
        ic.ImageClassifier(tiny_config(image_shape=(3, 3, 3), input_adapter="conv"))


# ---------------------------------------------------------------- image processor and pipeline


def test_image_processor_matches_transformers_channels_last():
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 260, 3), dtype=np.uint8))
    reference = PerceiverImageProcessorPil()(image, return_tensors="pt")["pixel_values"]
    ours = ic.PerceiverImageClassifierInputProcessor()(image, return_tensors="pt")["pixel_values"]
    assert reference.shape == (1, 3, 224, 224)
    assert torch.equal(ours, reference.permute(0, 2, 3, 1))
    channels_first = ic.PerceiverImageClassifierInputProcessor(channels_last=False)
    assert torch.equal(channels_first(image, return_tensors="pt")["pixel_values"], reference)


def test_image_processor_grayscale():
    rgb = np.random.default_rng(2).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    kwargs = dict(single_channel=True, do_center_crop=False, do_resize=False, image_mean=0.5, image_std=0.5)
    processor = ic.PerceiverImageClassifierInputProcessor(**kwargs)
    ours = processor(Image.fromarray(rgb), return_tensors="pt")["pixel_values"]
    luma = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32)[None, ..., None] / 255 * 2 - 1
    assert ours.shape == (1, 8, 8, 1)
    assert np.abs(ours.numpy() - luma).max() <= 2 / 255  # PIL rounds to integers


def test_image_processor_grayscale_before_resize_for_every_input_type():
    rgb = np.random.default_rng(3).integers(0, 256, (16, 12, 3), dtype=np.uint8)
    image = Image.fromarray(rgb)
    kwargs = dict(do_center_crop=False, size={"height": 8, "width": 8}, image_mean=0.5, image_std=0.5)
    processor = ic.PerceiverImageClassifierInputProcessor(single_channel=True, **kwargs)
    # reference: PIL's 8-bit luma, then transformers' own processor (all three channels equal)
    reference = PerceiverImageProcessorPil(**kwargs)(image.convert("L").convert("RGB"), return_tensors="pt")
    expected = reference["pixel_values"][:, :1].permute(0, 2, 3, 1)
    luma = np.asarray(image.convert("L"))
    inputs = [image, [image], rgb, torch.from_numpy(rgb).permute(2, 0, 1), rgb.astype(np.float32) / 255]
    inputs += [luma, luma[..., None], image.convert("L"), image.convert("RGBA")]
    for x in inputs:
        assert torch.equal(processor(x, return_tensors="pt")["pixel_values"], expected)
    batch = processor(np.stack([rgb, rgb]), return_tensors="pt")["pixel_values"]
    assert torch.equal(batch, expected.expand(2, -1, -1, -1))
    # per-call override of the processor's settings
    channels_first = processor(image, channels_last=False, return_tensors="pt")["pixel_values"]
    assert torch.equal(channels_first, expected.permute(0, 3, 1, 2))


def test_image_classification_pipeline_labels(tmp_path):
    id2label = {i: f"digit {i}" for i in range(10)}
    model = ic.PerceiverImageClassifier(ic.PerceiverImageClassifierConfig(tiny_config(), id2label=id2label))
    processor = ic.PerceiverImageClassifierInputProcessor(
        single_channel=True, do_center_crop=False, size={"height": 8, "width": 8}, image_mean=0.5, image_std=0.5
    )
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)

    classifier = pipeline("image-classification", model=str(tmp_path))
    x, _ = digits(normalize=False)
    # color images of another size: the pipeline converts, resizes and normalizes them like the processor
    images = [
        Image.fromarray((x[i, ..., 0].numpy() * 255).astype(np.uint8)).convert("RGB").resize((13, 11)) for i in range(3)
    ]
    results = classifier(images, top_k=10)
    assert len(results) == 3
    for image, result in zip(images, results):
        assert {r["label"] for r in result} == set(id2label.values())
        assert abs(sum(r["score"] for r in result) - 1.0) < 1e-4
        pixel_values = processor(image, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            best = model(pixel_values=pixel_values).logits.argmax(-1).item()
        assert result[0]["label"] == id2label[best]


def test_loss_from_labels():
    model = ic.PerceiverImageClassifier(ic.PerceiverImageClassifierConfig(tiny_config()))
    x, y = digits()
    output = model(pixel_values=x[:6], labels=y[:6])
    assert torch.allclose(output.loss, F.cross_entropy(output.logits, y[:6]))
    output.loss.backward()
    assert model.backend_model.encoder.latent_provider._query.grad is not None


# ---------------------------------------------------------------- training


def test_lightning_trainer_learns_digits_and_converts(tmp_path):
    torch.manual_seed(0)
    x, y = digits()
    train = DataLoader(TensorDataset(x[:1200], y[:1200]), batch_size=32, shuffle=True)
    val = DataLoader(TensorDataset(x[1200:1500], y[1200:1500]), batch_size=300)
    lit = ic.LitImageClassifier.create(tiny_config(init_scale=0.1), lr=1e-3)
    trainer = pl.Trainer(
        max_epochs=8,
        accelerator="cpu",
        logger=False,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    before = trainer.validate(lit, val, verbose=False)[0]
    trainer.fit(lit, train, val)
    after = trainer.validate(lit, val, verbose=False)[0]
    assert after["val_loss"] < 0.7 * before["val_loss"]
    assert after["val_acc"] > 0.5 > before["val_acc"]

    ckpt = next((tmp_path / "checkpoints").glob("*.ckpt"))
    id2label = {i: str(i) for i in range(10)}
    processor = ic.PerceiverImageClassifierInputProcessor(single_channel=True, do_center_crop=False, do_resize=False)
    ic.convert_checkpoint(tmp_path / "hf", ckpt, processor, id2label=id2label)
    model = AutoModelForImageClassification.from_pretrained(tmp_path / "hf").eval()
    assert model.config.id2label == id2label
    assert isinstance(AutoImageProcessor.from_pretrained(tmp_path / "hf"), ic.PerceiverImageClassifierInputProcessor)
    lit.eval()
    with torch.no_grad():
        assert torch.allclose(model(pixel_values=x[:5]).logits, lit(x[:5]), atol=1e-5)


class DigitsDataset(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"pixel_values": self.x[i], "labels": self.y[i]}


def test_hf_trainer_learns_digits(tmp_path):
    torch.manual_seed(0)
    x, y = digits()
    model = ic.PerceiverImageClassifier(ic.PerceiverImageClassifierConfig(tiny_config(init_scale=0.1)))
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=150,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=300,
        learning_rate=1e-3,
        lr_scheduler_type="constant",
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    train, val = DigitsDataset(x[:1200], y[:1200]), DigitsDataset(x[1200:1500], y[1200:1500])
    trainer = transformers.Trainer(model=model, args=args, train_dataset=train, eval_dataset=val)
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()["eval_loss"]
    assert after < 0.7 * before
