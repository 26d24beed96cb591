"""🤗 wrapper of the image classifier (config and model, registered with the auto classes together with the image
processor of `perceiver.processing.image`) and conversion of Lightning checkpoints into it. Conversion of DeepMind's
official models is in `convert.py`."""

import os
from dataclasses import fields
from typing import Any, Dict, Optional, Union

import torch
from transformers import AutoImageProcessor, AutoModelForImageClassification
from transformers.modeling_outputs import ImageClassifierOutput

from perceiver._compat import deprecated_aliases
from perceiver.model.core.huggingface import (
    PerceiverBackendConfig,
    PerceiverBackendModel,
    convert_lightning_checkpoint,
    register_auto_class,
)
from perceiver.model.core.loss import token_cross_entropy
from perceiver.model.core.validation import check_labels, check_pixel_values
from perceiver.model.vision.image_classifier.backend import ImageClassifier, ImageClassifierConfig, ImageEncoderConfig
from perceiver.processing.image import PerceiverImageClassifierInputProcessor, mnist_image_processor_0_11

# ImageEncoderConfig fields that perceiver-io 0.11 does not know; left out of config.json while at their defaults
_ENCODER_EXTENSION_FIELDS = ("max_resolution", "input_adapter", "num_adapter_channels")


class PerceiverImageClassifierConfig(PerceiverBackendConfig):
    """🤗 config of `PerceiverImageClassifier`; `num_labels` defaults to the decoder's `num_classes`."""

    model_type = "perceiver-io-image-classifier"
    backend_config_class = ImageClassifierConfig

    def __post_init__(self, **kwargs):
        if self.id2label is None and kwargs.get("num_labels") is None:
            kwargs["num_labels"] = self.model_config["decoder"]["num_classes"]
        super().__post_init__(**kwargs)

    def to_dict(self) -> Dict[str, Any]:
        # keeps config.json loadable by perceiver-io 0.11 unless a model needs a newer encoder feature
        output = super().to_dict()
        encoder = dict(output["model_config"]["encoder"])
        defaults = {f.name: f.default for f in fields(ImageEncoderConfig)}
        for name in _ENCODER_EXTENSION_FIELDS:
            if name in encoder and encoder[name] == defaults[name]:
                del encoder[name]
        output["model_config"] = {**output["model_config"], "encoder": encoder}
        return output


class PerceiverImageClassifier(PerceiverBackendModel):
    """🤗 image classifier: channels-last `pixel_values` `(b, h, w, c)`, optional `labels` `(b,)` for a loss."""

    config_class = PerceiverImageClassifierConfig
    backend_model_class = ImageClassifier
    main_input_name = "pixel_values"

    def forward(
        self,
        pixel_values: Optional[torch.Tensor] = None,
        labels: Optional[torch.LongTensor] = None,
        inputs: Optional[torch.Tensor] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ) -> ImageClassifierOutput:
        """`inputs` is perceiver-io 0.11's name of `pixel_values`."""
        if (pixel_values is None) == (inputs is None):
            raise ValueError("pass exactly one of pixel_values and inputs (its old name)")
        name = "pixel_values" if inputs is None else "inputs"
        x = check_pixel_values(
            pixel_values if inputs is None else inputs, "(batch, height, width, channels)", name=name
        )
        # shapes: checked by the backend, whose message names the image shape the model takes
        logits = self.backend_model(x)
        if labels is not None:
            check_labels(labels, x.shape[:1], logits.shape[-1])
        loss = None if labels is None else token_cross_entropy(logits, labels.to(logits.device))
        return ImageClassifierOutput(loss=loss, logits=logits)


register_auto_class(PerceiverImageClassifierConfig, PerceiverImageClassifier, AutoModelForImageClassification)
AutoImageProcessor.register(
    PerceiverImageClassifierConfig,
    image_processor_classes={"pil": PerceiverImageClassifierInputProcessor},
    exist_ok=True,
)


def convert_checkpoint(
    save_dir: Union[str, os.PathLike],
    ckpt_url: Union[str, os.PathLike],
    image_processor: PerceiverImageClassifierInputProcessor,
    id2label: Optional[Dict[int, str]] = None,
    label2id: Optional[Dict[str, int]] = None,
    **kwargs,
) -> PerceiverImageClassifier:
    """Converts a `LitImageClassifier` checkpoint (local path or URL) into a `PerceiverImageClassifier` saved in
    `save_dir` together with `image_processor`. Labels default to the class names saved in the checkpoint (see
    `LitImageClassifier`), else `LABEL_<i>` for each class."""
    from perceiver.model.vision.image_classifier.lightning import LitImageClassifier

    labels = {k: v for k, v in {"id2label": id2label, "label2id": label2id}.items() if v is not None}
    return convert_lightning_checkpoint(
        LitImageClassifier, PerceiverImageClassifier, save_dir, ckpt_url, image_processor, labels, **kwargs
    )


def convert_mnist_classifier_checkpoint(
    save_dir: Union[str, os.PathLike], ckpt_url: Union[str, os.PathLike], **kwargs
) -> PerceiverImageClassifier:
    """Converts a `LitImageClassifier` checkpoint trained on MNIST (as perceiver-io 0.11's MNIST data module
    preprocessed it: grayscale 28 x 28, no crop or resize, normalized with mean 0.5 and std 0.5) into a
    `PerceiverImageClassifier` saved with that image processor and labels "0" to "9"."""
    image_processor = mnist_image_processor_0_11()
    id2label = {i: str(i) for i in range(10)}
    label2id = {label: i for i, label in id2label.items()}
    return convert_checkpoint(save_dir, ckpt_url, image_processor, id2label=id2label, label2id=label2id, **kwargs)


# conversion of DeepMind's models moved to `convert.py`; its names stay importable from here (0.11's place)
_CONVERT = "perceiver.model.vision.image_classifier.convert"
__getattr__ = deprecated_aliases(
    __name__,
    {
        **{
            name: (f"{_CONVERT}.{name}", f"{_CONVERT}:{name}")
            for name in ("convert_config", "convert_model", "copy_weights", "SOURCE_ARCHITECTURES")
        },
        "copy_image_encoder_params": (
            f"{_CONVERT}.copy_weights",
            "perceiver.model.vision.compat:copy_image_encoder_params",
        ),
    },
)
