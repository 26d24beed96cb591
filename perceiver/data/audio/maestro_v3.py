"""`MaestroV3DataModule`: the MIDI files of MAESTRO v3.0.0 (Hawthorne et al., arXiv 1810.12247)."""

import csv
import json
import os
from pathlib import Path
from typing import Dict, List

from perceiver.data.audio.corpus import MidiCorpusDataModule

METADATA = "maestro-v3.0.0"
SPLITS = {"train": "train", "validation": "valid", "test": "test"}


class MaestroV3DataModule(MidiCorpusDataModule):
    """MAESTRO v3.0.0 MIDI files with the corpus' own train/validation/test split (`maestro-v3.0.0.json`, or
    `maestro-v3.0.0.csv`). `source`: the `maestro-v3.0.0` directory as it ships (the metadata file beside the
    year directories), a directory holding it, or the zip file `maestro-v3.0.0-midi.zip`. Arguments as
    `MidiCorpusDataModule`; 0.11's defaults for `dataset_uri` and `dataset_dir`."""

    default_uri = "https://martin-krasser.com/perceiver/data/midi/maestro-v3.0.0-midi.zip"
    default_dir = os.path.join(".cache", "maestro-v3-midi")
    zip_name = "maestro-v3.0.0-midi.zip"

    def corpus_splits(self, root: Path) -> Dict[str, List[str]]:
        for directory in (root, root / METADATA):
            if (directory / f"{METADATA}.json").is_file() or (directory / f"{METADATA}.csv").is_file():
                break
        else:
            raise FileNotFoundError(f"{self._source_name()}: no {METADATA}.json or .csv in {root} (MAESTRO v3 layout)")
        files: Dict[str, List[str]] = {}
        for midi_filename, split in _metadata(directory):
            if split not in SPLITS:
                raise ValueError(f"{directory}: split {split!r} of {midi_filename} is none of {list(SPLITS)}")
            path = directory / midi_filename
            if not path.is_file():
                raise FileNotFoundError(f"{path} listed in the MAESTRO metadata does not exist")
            files.setdefault(SPLITS[split], []).append(str(path))
        return {name: sorted(paths) for name, paths in files.items()}


def _metadata(directory: Path):
    """(midi_filename, split) of each performance: from the JSON file (columns keyed by row id, or a list of rows)
    or else from the CSV file."""
    json_file = directory / f"{METADATA}.json"
    if json_file.is_file():
        metadata = json.loads(json_file.read_text())
        if isinstance(metadata, list):
            return [(row["midi_filename"], row["split"]) for row in metadata]
        return [(name, metadata["split"][key]) for key, name in metadata["midi_filename"].items()]
    with open(directory / f"{METADATA}.csv", newline="") as f:
        return [(row["midi_filename"], row["split"]) for row in csv.DictReader(f)]
