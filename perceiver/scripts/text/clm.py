"""Trains a Perceiver AR causal language model: `python -m perceiver.scripts.text.clm fit --config ...`.

Data: any text data module (`--data=WikiTextDataModule`, the default (WikiText-103 from the 🤗 hub), `Enwik8DataModule`,
`TextFilesDataModule`, ...) with task `clm`, usually with `random_train_shift` and, for random prefix lengths,
`random_train_truncation` (with `random_min_seq_len` above `model.max_latents`); the model's vocabulary size and maximum
sequence length are taken from it. Convert the best checkpoint with `perceiver.model.text.clm.convert_checkpoint`. See
`perceiver.scripts.cli` for common options and `examples/clm_wikitext.yaml` for a configuration.
"""

from typing import Optional, Sequence

from perceiver.data.text import TextDataModule
from perceiver.model.text.clm import LitCausalLanguageModel
from perceiver.scripts.cli import CLI


class CausalLanguageModelCLI(CLI):
    """Trains a Perceiver AR causal language model (`LitCausalLanguageModel`) on a text data module, task clm."""

    name = "clm"
    data_default = "perceiver.data.text.WikiTextDataModule"
    task = "clm"
    links = (
        ("data.vocab_size", "model.vocab_size"),
        ("data.max_seq_len", "model.max_seq_len"),
    )


def main(args: Optional[Sequence[str]] = None) -> CausalLanguageModelCLI:
    return CausalLanguageModelCLI(LitCausalLanguageModel, TextDataModule, args=args)


if __name__ == "__main__":
    main()
