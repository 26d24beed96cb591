"""Trains a Perceiver IO masked language model: `python -m perceiver.scripts.text.mlm fit --config ...`.

Data: any text data module (`--data=WikiTextDataModule`, `ImdbDataModule`, `TextFilesDataModule`, ...; default
`WikiTextDataModule`, WikiText-103 from the 🤗 hub) with task `mlm`; the model's vocabulary size and sequence length are
taken from it. Convert the best checkpoint with `perceiver.model.text.mlm.convert_checkpoint`. See
`perceiver.scripts.cli` for common options and `examples/mlm_imdb.yaml` for a configuration.
"""

from typing import Optional, Sequence

from perceiver.data.text import TextDataModule
from perceiver.model.text.mlm import LitMaskedLanguageModel
from perceiver.scripts.cli import CLI


class MaskedLanguageModelCLI(CLI):
    """Trains a Perceiver IO masked language model (`LitMaskedLanguageModel`) on a text data module, task mlm."""

    name = "mlm"
    data_default = "perceiver.data.text.WikiTextDataModule"
    task = "mlm"
    links = (
        ("data.vocab_size", "model.encoder.vocab_size"),
        ("data.vocab_size", "model.decoder.vocab_size"),
        ("data.max_seq_len", "model.encoder.max_seq_len"),
        ("data.max_seq_len", "model.decoder.max_seq_len"),
    )
    model_defaults = {
        "model.num_latents": 256,
        "model.num_latent_channels": 512,
        "model.encoder.num_input_channels": 256,
    }


def main(args: Optional[Sequence[str]] = None) -> MaskedLanguageModelCLI:
    return MaskedLanguageModelCLI(LitMaskedLanguageModel, TextDataModule, args=args)


if __name__ == "__main__":
    main()
