"""Models saved by perceiver-io 0.11 load through the auto classes and reproduce their recorded outputs."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification

from perceiver.model.text import classifier, mlm


@pytest.mark.parametrize(
    "name,auto_class,model_class",
    [
        ("mlm", AutoModelForMaskedLM, mlm.PerceiverMaskedLanguageModel),
        ("txt_clf", AutoModelForSequenceClassification, classifier.PerceiverTextClassifier),
    ],
)
def test_text_fixture_reproduces_logits(fixtures_dir, name, auto_class, model_class):
    folder = fixtures_dir / name
    model = auto_class.from_pretrained(folder).eval()
    assert type(model) is model_class
    expected = load_file(folder / "expected.safetensors")
    with torch.no_grad():
        logits = model(input_ids=expected["input_ids"], attention_mask=expected["attention_mask"]).logits
    assert logits.shape == expected["logits"].shape
    assert (logits - expected["logits"]).abs().max() <= 1e-4


@pytest.mark.parametrize("name", ["mlm", "txt_clf"])
def test_fixture_config_round_trips(fixtures_dir, name, tmp_path):
    """Saving a loaded 0.11 model writes the same model_type, model_config and state-dict keys."""
    folder = fixtures_dir / name
    model = {"mlm": AutoModelForMaskedLM, "txt_clf": AutoModelForSequenceClassification}[name].from_pretrained(folder)
    assert model.backend_model.config == model.config.backend_config
    model.save_pretrained(tmp_path)
    original, saved = (
        json.loads((folder / "config.json").read_text()),
        json.loads((tmp_path / "config.json").read_text()),
    )
    assert saved["model_type"] == original["model_type"]
    assert saved["model_config"] == original["model_config"]
    assert set(load_file(tmp_path / "model.safetensors")) == set(load_file(folder / "model.safetensors"))
