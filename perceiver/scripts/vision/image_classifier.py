"""Trains a Perceiver IO image classifier: `python -m perceiver.scripts.vision.image_classifier fit --config ...`.

Data: an image data module (`--data=DigitsDataModule`, the default (scikit-learn's digits, no download),
`MNISTDataModule`, `ImageNetDataModule`); the model's image
shape and number of classes are taken from it. Convert the best checkpoint with
`perceiver.model.vision.image_classifier.convert_checkpoint` and the data module's `image_processor`. See
`perceiver.scripts.cli` for common options and `examples/image_classifier_digits.yaml` for a configuration.
"""

from typing import Optional, Sequence

from perceiver.data.vision import ImageDataModule
from perceiver.model.vision.image_classifier import LitImageClassifier
from perceiver.scripts.cli import CLI


class ImageClassifierCLI(CLI):
    """Trains a Perceiver IO image classifier (`LitImageClassifier`) on an image data module."""

    name = "image_classifier"
    data_default = "perceiver.data.vision.DigitsDataModule"
    monitor = "val_acc"
    monitor_mode = "max"
    links = (
        # as a list, which hparams.yaml stores as plain YAML (the encoder config turns it into a tuple again)
        ("data.image_shape", "model.encoder.image_shape", list),
        ("data.num_classes", "model.decoder.num_classes"),
    )
    model_defaults = {
        # image inputs with Fourier position features have an odd number of channels (as in perceiver-io 0.11)
        "model.encoder.num_cross_attention_heads": 1,
        "model.num_latents": 32,
        "model.num_latent_channels": 128,
        "model.decoder.num_output_query_channels": 128,
    }


def main(args: Optional[Sequence[str]] = None) -> ImageClassifierCLI:
    return ImageClassifierCLI(LitImageClassifier, ImageDataModule, args=args)


if __name__ == "__main__":
    main()
