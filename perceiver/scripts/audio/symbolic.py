"""Trains a Perceiver AR symbolic audio model on MIDI files:
`python -m perceiver.scripts.audio.symbolic fit --config examples/symbolic_audio.yaml --data.source=<midi dir>`.

Data: `SymbolicAudioDataModule` (the default `--data`) over a local directory of `.mid`/`.midi` files, usually with
`random_train_shift` and, for random prefix lengths, `random_train_truncation` (with `random_min_seq_len` above
`model.max_latents`); the model's vocabulary size (389) and maximum sequence length are taken from it. Convert the
best checkpoint with `perceiver.model.audio.symbolic.convert_checkpoint` and generate with the
`symbolic-audio-generation` pipeline. See `perceiver.scripts.cli` for common options.
"""

from typing import Optional, Sequence

from perceiver.data.audio import SymbolicAudioDataModule
from perceiver.model.audio.symbolic import LitSymbolicAudioModel
from perceiver.scripts.cli import CLI


class SymbolicAudioModelCLI(CLI):
    """Trains a Perceiver AR symbolic audio model (`LitSymbolicAudioModel`) on MIDI files
    (`SymbolicAudioDataModule`)."""

    name = "symbolic"
    data_default = "perceiver.data.audio.SymbolicAudioDataModule"
    links = (
        ("data.vocab_size", "model.vocab_size"),
        ("data.max_seq_len", "model.max_seq_len"),
    )


def main(args: Optional[Sequence[str]] = None) -> SymbolicAudioModelCLI:
    """Runs the script with `args` (default: the command line)."""
    return SymbolicAudioModelCLI(LitSymbolicAudioModel, SymbolicAudioDataModule, args=args)


if __name__ == "__main__":
    main()
