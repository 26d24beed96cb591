"""Trains a Perceiver IO text classifier: `python -m perceiver.scripts.text.classifier fit --config ...`.

Data: any text data module with labels (`--data=ImdbDataModule`, the default (IMDb reviews from the 🤗 hub), or
`TextFilesDataModule` with a `label_column`), task `clf`; the model's vocabulary size, sequence length and number of
classes are taken from it. The encoder can start from a masked language model (`--model.encoder.params=<converted mlm
directory>`) and be frozen (`--model.encoder.freeze=true`). Convert the best checkpoint with
`perceiver.model.text.classifier.convert_checkpoint`. See `perceiver.scripts.cli` for common options and
`examples/classifier_imdb.yaml` for a configuration.
"""

from typing import Optional, Sequence

from perceiver.data.text import TextDataModule
from perceiver.model.text.classifier import LitTextClassifier
from perceiver.scripts.cli import CLI


class TextClassifierCLI(CLI):
    """Trains a Perceiver IO text classifier (`LitTextClassifier`) on a text data module, task clf."""

    name = "classifier"
    data_default = "perceiver.data.text.ImdbDataModule"
    task = "clf"
    monitor = "val_acc"
    monitor_mode = "max"
    links = (
        ("data.vocab_size", "model.encoder.vocab_size"),
        ("data.max_seq_len", "model.encoder.max_seq_len"),
        ("data.num_classes", "model.decoder.num_classes"),
    )
    model_defaults = {
        "model.num_latents": 64,
        "model.num_latent_channels": 256,
        "model.encoder.num_input_channels": 256,
        "model.decoder.num_output_query_channels": 256,
    }


def main(args: Optional[Sequence[str]] = None) -> TextClassifierCLI:
    return TextClassifierCLI(LitTextClassifier, TextDataModule, args=args)


if __name__ == "__main__":
    main()
