"""The image classifier script, run as users run it: `python -m perceiver.scripts.vision.image_classifier fit ...`
in a subprocess on scikit-learn's digits; the checkpoint is converted into a 🤗 model for the image-classification
pipeline."""

import pytest
import torch
import yaml
from transformers import AutoModelForImageClassification, pipeline

from perceiver.data.vision import DigitsDataModule
from perceiver.model.vision import image_classifier
from tests.test_scripts_text import TINY_TRAINER, metrics, run_script, write_config


@pytest.mark.slow
def test_image_classifier_script_trains_and_checkpoint_converts(tmp_path):
    config = {
        "model": {
            "num_latents": 8,
            "num_latent_channels": 32,
            "encoder": {"num_frequency_bands": 4, "num_cross_attention_heads": 1, "num_self_attention_heads": 2},
            "decoder": {"num_output_query_channels": 32, "num_cross_attention_heads": 1},
        },
        "data": {"class_path": "DigitsDataModule", "init_args": {"batch_size": 32, "num_workers": 0, "augment": True}},
        "trainer": {"max_steps": 3, **TINY_TRAINER},
    }
    config_file = write_config(tmp_path / "image_classifier.yaml", config)
    args = ["--optimizer=AdamW", "--optimizer.lr=0.001", "--model.encoder.num_self_attention_layers_per_block=1"]
    run_script("vision.image_classifier", "fit", "--config", config_file, *args, cwd=tmp_path)
    run_dir = tmp_path / "logs" / "image_classifier" / "version_0"
    hparams = yaml.safe_load((run_dir / "hparams.yaml").read_text())
    assert tuple(hparams["encoder"]["image_shape"]) == (8, 8, 1) and hparams["decoder"]["num_classes"] == 10
    assert any(row["val_acc"] for row in metrics(run_dir))
    best = next((run_dir / "checkpoints").glob("epoch=*-val_acc=*.ckpt"))

    data = DigitsDataModule(num_workers=0, batch_size=4)
    image_classifier.convert_checkpoint(tmp_path / "hf", best, data.image_processor, id2label=data.id2label)
    model = AutoModelForImageClassification.from_pretrained(tmp_path / "hf").eval()
    lit_model = image_classifier.LitImageClassifier.load_from_checkpoint(best, map_location="cpu").eval()
    data.setup()
    batch = next(iter(data.test_dataloader()))
    with torch.no_grad():
        expected = lit_model(batch["pixel_values"])
        torch.testing.assert_close(model(pixel_values=batch["pixel_values"]).logits, expected, atol=1e-5, rtol=0)
    # the pipeline preprocesses a PIL image as the data module did
    classify = pipeline("image-classification", model=str(tmp_path / "hf"))
    prediction = classify(data.splits()["test"][0]["image"], top_k=1)[0]
    assert prediction["label"] == data.id2label[int(expected[0].argmax())]
    assert prediction["score"] == pytest.approx(float(expected[0].softmax(-1).max()), abs=1e-5)
