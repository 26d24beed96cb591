"""Trains a Perceiver AR symbolic audio model on MIDI files:
`python -m perceiver.scripts.audio.symbolic fit --config examples/symbolic_audio.yaml --data.source=<midi dir>`,
or on the corpora of perceiver-io 0.11's training examples with its command lines, e.g.
`examples/training/sam/maestrov3/train.sh` (`--data=MaestroV3DataModule`, `--data=GiantMidiPianoDataModule`).

Data: `SymbolicAudioDataModule` (the default `--data`) over a local directory of `.mid`/`.midi` files, usually with
`random_train_shift` and, for random prefix lengths, `random_train_truncation` (with `random_min_seq_len` above
`model.max_latents`), or 0.11's `min_seq_len`; the model's vocabulary size (389) and maximum sequence length are
taken from it. Model defaults are 0.11's (512 latents and channels, 12 self-attention layers, cross-attention
dropout 0.5, output norm without bias, no absolute position embedding); `--lr_scheduler.*` alone configures 0.11's
`CosineWithWarmupLR`. Convert the best checkpoint with `perceiver.model.audio.symbolic.convert_checkpoint` and
generate with the `symbolic-audio-generation` pipeline. See `perceiver.scripts.cli` for common options.
"""

import sys
from typing import List, Optional, Sequence

from perceiver.data.audio import GiantMidiPianoDataModule, MaestroV3DataModule, SymbolicAudioDataModule
from perceiver.model.audio.symbolic import LitSymbolicAudioModel
from perceiver.scripts.cli import CLI

# the corpus data modules of 0.11's command lines (--data=MaestroV3DataModule) are subclasses of the default
__all__ = ["GiantMidiPianoDataModule", "MaestroV3DataModule", "SymbolicAudioModelCLI", "main"]

COSINE_WITH_WARMUP = "perceiver.scripts.lrs.CosineWithWarmupLR"


class SymbolicAudioModelCLI(CLI):
    """Trains a Perceiver AR symbolic audio model (`LitSymbolicAudioModel`) on MIDI files
    (`SymbolicAudioDataModule`, `MaestroV3DataModule`, `GiantMidiPianoDataModule`)."""

    name = "symbolic"
    data_default = "perceiver.data.audio.SymbolicAudioDataModule"
    links = (
        ("data.vocab_size", "model.vocab_size"),
        ("data.max_seq_len", "model.max_seq_len"),
    )
    model_defaults = {
        "model.max_latents": 512,
        "model.num_channels": 512,
        "model.num_heads": 8,
        "model.num_self_attention_layers": 12,
        "model.cross_attention_dropout": 0.5,
        "model.post_attention_dropout": 0.0,
        "model.output_norm": True,
        "model.output_bias": False,
        "model.abs_pos_emb": False,
    }


def main(args: Optional[Sequence[str]] = None) -> SymbolicAudioModelCLI:
    """Runs the script with `args` (default: the command line)."""
    args = list(sys.argv[1:] if args is None else args)
    return SymbolicAudioModelCLI(LitSymbolicAudioModel, SymbolicAudioDataModule, args=with_0_11_scheduler(args))


def with_0_11_scheduler(args: List[str]) -> List[str]:
    """0.11's command lines give `--lr_scheduler.warmup_steps=...` without naming the scheduler, which was always
    `CosineWithWarmupLR`: name it for them (before its first argument) unless `--lr_scheduler` is given."""
    if any(a == "--lr_scheduler" or a.startswith("--lr_scheduler=") for a in args):
        return args
    first = next((i for i, a in enumerate(args) if a.startswith("--lr_scheduler.")), None)
    if first is None:
        return args
    return [*args[:first], f"--lr_scheduler={COSINE_WITH_WARMUP}", *args[first:]]


if __name__ == "__main__":
    main()
