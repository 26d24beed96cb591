"""`GiantMidiPianoDataModule`: GiantMIDI-Piano (Kong et al., arXiv 2010.07061)."""

import os
from pathlib import Path
from typing import Dict, List

from perceiver.data.audio.corpus import MidiCorpusDataModule, midi_files_below


class GiantMidiPianoDataModule(MidiCorpusDataModule):
    """GiantMIDI-Piano MIDI files. `source`: the corpus directory or zip file, either as 0.11's download ships it
    (`train/` and `valid/` directories) or as the corpus itself ships (`midis/` with all files, from which
    `valid_size` of the files are held out for validation, by file and seeded). Arguments as
    `MidiCorpusDataModule`; 0.11's defaults for `dataset_uri` and `dataset_dir`."""

    default_uri = "https://martin-krasser.com/perceiver/data/midi/giantmidi-piano.zip"
    default_dir = os.path.join(".cache", "giantmidi-piano")
    zip_name = "giantmidi-piano.zip"

    def corpus_splits(self, root: Path) -> Dict[str, List[str]]:
        for directory in [root, *sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))]:
            if (directory / "train").is_dir():
                files = {"train": midi_files_below(directory / "train")}
                for name in ("valid", "validation"):
                    if (directory / name).is_dir():
                        files["valid"] = midi_files_below(directory / name)
                if (directory / "test").is_dir():
                    files["test"] = midi_files_below(directory / "test")
                return files
        return {"train": midi_files_below(root)}  # no split directories: validation files are split off
