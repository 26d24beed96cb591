"""Every bad input is named: a ValueError/TypeError naming the argument, the value and what is allowed, at the
public boundary (🤗 wrappers, configs, weights files, text data, the CLI). See tests/README.md for the table."""

import json
import os
import subprocess
import sys

import pytest
import torch

from perceiver.data.common import check_text_files, load_source
from perceiver.model.core.config import config_from_dict
from perceiver.model.core.weights import load_backend_state_dict
from perceiver.model.text import classifier, clm, mlm
from perceiver.model.vision import image_classifier as ic
from tests.test_saves import tiny_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def clm_model():
    config = clm.CausalLanguageModelConfig(
        vocab_size=262, max_seq_len=16, max_latents=4, num_channels=16, num_heads=2, num_self_attention_layers=1
    )
    return clm.PerceiverCausalLanguageModel(clm.PerceiverCausalLanguageModelConfig(config)).eval()


@pytest.fixture(scope="module")
def text_classifier():
    encoder = classifier.TextEncoderConfig(
        vocab_size=262, max_seq_len=16, num_input_channels=16, num_self_attention_layers_per_block=1
    )
    decoder = classifier.ClassificationDecoderConfig(num_classes=3, num_output_query_channels=16)
    config = classifier.TextClassifierConfig(encoder=encoder, decoder=decoder, num_latents=4, num_latent_channels=16)
    return classifier.PerceiverTextClassifier(classifier.PerceiverTextClassifierConfig(config)).eval()


@pytest.fixture(scope="module")
def image_classifier():
    encoder = ic.ImageEncoderConfig(
        image_shape=(8, 8, 3),
        num_frequency_bands=4,
        num_self_attention_layers_per_block=1,
        num_cross_attention_heads=1,
        num_self_attention_heads=1,
    )
    decoder = ic.ClassificationDecoderConfig(num_classes=3, num_output_query_channels=16, num_cross_attention_heads=1)
    config = ic.ImageClassifierConfig(encoder=encoder, decoder=decoder, num_latents=4, num_latent_channels=16)
    return ic.PerceiverImageClassifier(ic.PerceiverImageClassifierConfig(config)).eval()


IDS = torch.ones(2, 5, dtype=torch.long)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"input_ids": torch.tensor([1, 2, 3, 4, 5])}, ValueError, r"input_ids must have shape \(batch, seq_len\), got shape \(5,\)"),  # noqa: E501
        ({"input_ids": [[1, 2, 3]]}, TypeError, "input_ids must be a torch.Tensor .* got list"),
        ({"input_ids": torch.zeros(0, 5, dtype=torch.long)}, ValueError, r"input_ids is an empty batch \(shape \(0, 5\)\)"),  # noqa: E501
        ({"input_ids": torch.ones(1, 5)}, TypeError, "input_ids must hold integer token ids, got dtype torch.float32"),
        ({"input_ids": IDS, "labels": torch.full((2, 5), 999)}, ValueError, r"labels holds 999, outside the allowed range \[0, 261\]"),  # noqa: E501
        ({"input_ids": IDS, "labels": torch.ones(2, 4, dtype=torch.long)}, ValueError, r"labels has shape \(2, 4\), expected \(2, 5\)"),  # noqa: E501
    ],
)  # fmt: skip
def test_causal_lm_forward(clm_model, kwargs, error, match):
    with pytest.raises(error, match=match):
        clm_model(**kwargs)


def test_causal_lm_labels_may_hold_ignore_index(clm_model):
    labels = IDS.clone()
    labels[:, :2] = -100
    assert clm_model(input_ids=IDS, labels=labels).loss.isfinite()


def test_causal_lm_generate(clm_model):
    with pytest.raises(ValueError, match=r"input_ids must have shape \(batch, seq_len\), got shape \(5,\)"):
        clm_model.generate(torch.tensor([1, 2, 3, 4, 5]), max_new_tokens=2)
    with pytest.raises(TypeError, match="input_ids must be a torch.Tensor"):
        clm_model.generate([[1, 2, 3]], max_new_tokens=2)
    with pytest.raises(ValueError, match="input_ids holds token id 300, outside the vocabulary range"):
        clm_model.generate(torch.tensor([[1, 300]]), max_new_tokens=2)


@pytest.mark.parametrize(
    "labels, error, match",
    [
        (torch.tensor([0, 999]), ValueError, r"labels holds 999, outside the allowed range \[0, 2\]"),
        (torch.tensor([0, -1]), ValueError, r"labels holds -1, outside the allowed range \[0, 2\]"),
        (torch.tensor([[0], [1]]), ValueError, r"labels has shape \(2, 1\), expected \(2,\)"),
        (torch.tensor([0.0, 1.0]), TypeError, "labels must hold integer class ids, got dtype torch.float32"),
        ([0, 1], TypeError, "labels must be a torch.Tensor"),
    ],
)
def test_text_classifier_labels(text_classifier, labels, error, match):
    with pytest.raises(error, match=match):
        text_classifier(input_ids=IDS, labels=labels)


def test_text_classifier_and_mlm_inputs(text_classifier):
    with pytest.raises(TypeError, match="input_ids must be a torch.Tensor"):
        text_classifier(input_ids=[[1, 2, 3]])
    with pytest.raises(ValueError, match="input_ids is an empty batch"):
        text_classifier(input_ids=torch.zeros(0, 5, dtype=torch.long))
    model = tiny_model(0)
    with pytest.raises(ValueError, match=r"input_ids must have shape \(batch, seq_len\)"):
        model(input_ids=torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"labels holds 262, outside the allowed range \[0, 261\] \(or -100"):
        model(input_ids=torch.ones(1, 3, dtype=torch.long), labels=torch.tensor([[-100, 262, 1]]))


def test_image_classifier_inputs(image_classifier):
    x = torch.zeros(1, 8, 8, 3)
    with pytest.raises(TypeError, match="pixel_values has dtype torch.uint8, expected floating point"):
        image_classifier(pixel_values=x.to(torch.uint8))
    with pytest.raises(ValueError, match=r"labels holds 999, outside the allowed range \[0, 2\]"):
        image_classifier(pixel_values=x, labels=torch.tensor([999]))
    with pytest.raises(ValueError, match="pixel_values is an empty batch"):
        image_classifier(pixel_values=torch.zeros(0, 8, 8, 3))
    with pytest.raises(ValueError, match=r"pixel_values must have shape \(batch, 8, 8, 3\)"):
        image_classifier(pixel_values=torch.zeros(8, 8, 3))


@pytest.mark.parametrize(
    "model_config, error, match",
    [
        ({"num_latents": "8"}, TypeError, "MaskedLanguageModelConfig.num_latents='8' must be of type int, got str"),
        ({"num_latents": -1}, ValueError, "MaskedLanguageModelConfig.num_latents=-1 is out of range, allowed is >= 1"),
        ({"num_latents": 0}, ValueError, "num_latents=0 is out of range, allowed is >= 1"),
        ({"num_latents": 8.0}, TypeError, "num_latents=8.0 must be of type int, got float"),
        ({"encoder": None}, TypeError, "MaskedLanguageModelConfig.encoder must be a dict of TextEncoderConfig fields, got None"),  # noqa: E501
        ({"encoder": {"dropout": "0.1"}}, TypeError, "TextEncoderConfig.dropout='0.1' must be of type float, got str"),
        ({"encoder": {"dropout": 1.5}}, ValueError, r"TextEncoderConfig.dropout=1.5 is out of range, allowed is \[0, 1\)"),  # noqa: E501
        ({"encoder": {"freeze": "yes"}}, TypeError, "TextEncoderConfig.freeze='yes' must be of type bool"),
        ({"encoder": {"init_scale": 0.0}}, ValueError, "init_scale=0.0 is out of range, allowed is > 0"),
        ({"num_latent": 8}, ValueError, r"unknown MaskedLanguageModelConfig fields \['num_latent'\]"),
    ],
)  # fmt: skip
def test_config_json_values_are_checked_when_loaded(tmp_path, model_config, error, match):
    path = tmp_path / "model"
    tiny_model(0).save_pretrained(path)
    config = json.loads((path / "config.json").read_text())
    for key, value in model_config.items():
        if isinstance(value, dict):
            config["model_config"][key].update(value)
        else:
            config["model_config"][key] = value
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(error, match=match):
        mlm.PerceiverMaskedLanguageModel.from_pretrained(path)


def test_configs_are_checked_when_built():
    with pytest.raises(ValueError, match="num_latents=0 is out of range"):
        mlm.MaskedLanguageModelConfig(num_latents=0)
    with pytest.raises(TypeError, match="num_heads='2' must be of type int"):
        clm.CausalLanguageModelConfig(num_heads="2")
    with pytest.raises(ValueError, match=r"cross_attention_dropout=1.0 is out of range|must be in \[0, 1\)"):
        clm.CausalLanguageModelConfig(cross_attention_dropout=1.0)
    with pytest.raises(TypeError, match="must be a dict"):
        config_from_dict(mlm.MaskedLanguageModelConfig, {"decoder": 3})
    # valid values of the right types still load, including ints for floats and -1 rotary layers (all layers)
    assert config_from_dict(
        clm.CausalLanguageModelConfig, {"num_self_attention_rotary_layers": -1, "residual_dropout": 0}
    )


def test_truncated_weights_file_is_named(tmp_path):
    path = tmp_path / "model"
    tiny_model(0).save_pretrained(path)
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    match = f"weights file '{weights}' is truncated or corrupt"
    with pytest.raises(ValueError, match=match):
        mlm.PerceiverMaskedLanguageModel.from_pretrained(path)
    with pytest.raises(ValueError, match=match):
        load_backend_state_dict(path)
    weights.write_bytes(b"not safetensors at all")
    with pytest.raises(ValueError, match=match):
        mlm.PerceiverMaskedLanguageModel.from_pretrained(path)


def test_empty_and_non_utf8_text_files_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "train.txt").write_text("")
    (tmp_path / "latin1").mkdir()
    (tmp_path / "latin1" / "train.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(ValueError, match="text file '.*empty/train.txt' is empty"):
        load_source(str(tmp_path / "empty"))
    with pytest.raises(
        ValueError, match=r"text file '.*latin1/train.txt' is not UTF-8 text \(invalid byte at offset 3\)"
    ):
        load_source(str(tmp_path / "latin1"))
    (tmp_path / "cut.txt").write_bytes("ok €".encode()[:-1])
    with pytest.raises(ValueError, match="truncated character at its end"):
        check_text_files([str(tmp_path / "cut.txt")])


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing source", "empty file", "non-UTF-8 file"])
def test_cli_data_errors_are_one_line(tmp_path, case):
    args = ["fit", "--data=TextFilesDataModule", "--trainer.max_steps=1"]
    if case == "empty file":
        (tmp_path / "empty.txt").write_text("")
        args.append(f"--data.source={tmp_path / 'empty.txt'}")
    elif case == "non-UTF-8 file":
        (tmp_path / "bad.txt").write_bytes(b"ok\n\xff\xfe\n")
        args.append(f"--data.source={tmp_path / 'bad.txt'}")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, "-m", "perceiver.scripts.text.mlm", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    expected = {"missing source": "--data.source is missing", "empty file": "is empty", "non-UTF-8 file": "not UTF-8"}
    assert expected[case] in errors[0]


def test_backend_generate_arguments():
    from perceiver.model.text import clm

    model = clm.CausalLanguageModel(
        clm.CausalLanguageModelConfig(vocab_size=20, max_seq_len=12, max_latents=4, num_channels=16, num_heads=2,
                                      num_self_attention_layers=1)
    ).eval()  # fmt: skip
    prompt = torch.randint(20, (2, 6))
    # top_k=0 means "off", as in 🤗: the same as no top-k filtering
    torch.testing.assert_close(
        model.generate(prompt, max_new_tokens=3, top_k=0), model.generate(prompt, max_new_tokens=3, top_k=None)
    )
    with pytest.raises(ValueError, match=r"top_k=-1 must be None or an int >= 0"):
        model.generate(prompt, max_new_tokens=3, top_k=-1)
    with pytest.raises(ValueError, match=r"temperature=0.0 must be > 0"):
        model.generate(prompt, max_new_tokens=3, temperature=0.0)
    with pytest.raises(ValueError, match=r"max_new_tokens=-1 must be an int >= 0"):
        model.generate(prompt, max_new_tokens=-1)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, seq_len\), got \(6,\)"):
        model.generate(prompt[0], max_new_tokens=3)
    with pytest.raises(TypeError, match="x must be a tensor of token ids"):
        model.generate(prompt.tolist(), max_new_tokens=3)
