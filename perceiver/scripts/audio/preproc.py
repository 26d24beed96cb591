"""Tokenizes a MIDI corpus once, before training (as perceiver-io 0.11's script):
`python -m perceiver.scripts.audio.preproc maestro-v3 --max_seq_len=2048 [--source=<local copy>]`.

Files that can not be read or that exceed `--max_tokens` are skipped, with one warning line each and a count at the
end."""

import argparse
import multiprocessing as mp
import sys
import warnings
from typing import Optional, Sequence

from perceiver.data.audio import GiantMidiPianoDataModule, MaestroV3DataModule

DATAMODULE_CLASSES = {"maestro-v3": MaestroV3DataModule, "giantmidi": GiantMidiPianoDataModule}


def main(args: Optional[Sequence[str]] = None):
    """Runs the script with `args` (default: the command line); returns the prepared data module."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("dataset", choices=list(DATAMODULE_CLASSES), help="the corpus")
    parser.add_argument("--max_seq_len", type=int, required=True, help="the model's maximum sequence length (ids)")
    parser.add_argument("--source", help="local copy of the corpus (directory or zip); default: download")
    parser.add_argument("--dataset_uri", help="download URI of the corpus zip file")
    parser.add_argument("--dataset_dir", help="where downloads and the preprocessed data are kept")
    parser.add_argument(
        "--preproc_workers", type=int, default=mp.cpu_count(), help="tokenizing processes (default: CPU count)"
    )
    parser.add_argument("--max_tokens", type=int, default=None, help="skip files that encode into more ids")
    parser.add_argument(
        "--encoding",
        choices=["0.11", "corrected"],
        default="0.11",
        help="MIDI encoding: perceiver-io 0.11's (default) or the corrected one (see perceiver.processing.midi)",
    )
    parsed = parser.parse_args(args)
    kwargs = {k: v for k, v in vars(parsed).items() if v is not None and k != "dataset"}
    data = DATAMODULE_CLASSES[parsed.dataset](pin_memory=False, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        data.prepare_data()
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    print(f"preprocessed {parsed.dataset} into {data.preproc_dir}")
    return data


if __name__ == "__main__":
    main()
