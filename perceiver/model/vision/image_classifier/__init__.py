"""Perceiver IO image classifier. Importing registers it with `AutoModelForImageClassification` and its image
processor with `AutoImageProcessor` (so the `image-classification` pipeline works)."""

from perceiver.model.vision.image_classifier.backend import (
    ClassificationDecoderConfig,
    ImageClassifier,
    ImageClassifierConfig,
    ImageEncoderConfig,
)
from perceiver.model.vision.image_classifier.convert import convert_config, convert_model
from perceiver.model.vision.image_classifier.huggingface import (
    PerceiverImageClassifier,
    PerceiverImageClassifierConfig,
    PerceiverImageClassifierInputProcessor,
    convert_checkpoint,
    convert_mnist_classifier_checkpoint,
)
from perceiver.model.vision.image_classifier.lightning import LitImageClassifier

__all__ = [
    "ClassificationDecoderConfig",
    "ImageClassifier",
    "ImageClassifierConfig",
    "ImageEncoderConfig",
    "LitImageClassifier",
    "PerceiverImageClassifier",
    "PerceiverImageClassifierConfig",
    "PerceiverImageClassifierInputProcessor",
    "convert_checkpoint",
    "convert_config",
    "convert_mnist_classifier_checkpoint",
    "convert_model",
]
