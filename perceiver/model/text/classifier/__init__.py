"""Perceiver IO text classifier. Importing registers it with `AutoModelForSequenceClassification`."""

from perceiver.model.core import ClassificationDecoderConfig
from perceiver.model.text.classifier.backend import TextClassifier, TextClassifierConfig
from perceiver.model.text.classifier.huggingface import (
    PerceiverTextClassifier,
    PerceiverTextClassifierConfig,
    convert_checkpoint,
    convert_imdb_classifier_checkpoint,
)
from perceiver.model.text.classifier.lightning import LitTextClassifier
from perceiver.model.text.common import TextEncoderConfig

__all__ = [
    "ClassificationDecoderConfig",
    "LitTextClassifier",
    "PerceiverTextClassifier",
    "PerceiverTextClassifierConfig",
    "TextClassifier",
    "TextClassifierConfig",
    "TextEncoderConfig",
    "convert_checkpoint",
    "convert_imdb_classifier_checkpoint",
]
