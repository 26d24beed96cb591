"""perceiver-io 0.11's `perceiver.data.audio.midi_processor`: deprecated, use `perceiver.processing.midi`."""

import os
import warnings
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np

from perceiver.processing import midi

_NAME_0_11 = "Developed By Yang-Kichang"  # the decoded instrument's name in 0.11's output, kept for exact files


def _deprecated(name: str, new: str) -> None:
    warnings.warn(f"perceiver.data.audio.midi_processor.{name} is deprecated, use {new}", DeprecationWarning, 3)


def encode_midi(midi: "midi.pretty_midi.PrettyMIDI") -> List[int]:  # noqa: F821
    """0.11's `encode_midi`: `perceiver.processing.midi.MidiTokenizer().encode(midi)`."""
    _deprecated("encode_midi", "perceiver.processing.midi.MidiTokenizer().encode")
    return midi_tokenizer().encode(midi)


def decode_midi(idx_array: Sequence[int], file_path: Optional[Union[str, os.PathLike]] = None):
    """0.11's `decode_midi(ids, file_path)`: `perceiver.processing.midi.MidiTokenizer().decode(ids)`, with 0.11's
    instrument, written to `file_path` if given."""
    _deprecated("decode_midi", "perceiver.processing.midi.MidiTokenizer().decode")
    decoded = midi_tokenizer().decode(idx_array, program=midi.DEFAULT_PROGRAM, name=_NAME_0_11)
    if file_path is not None:
        decoded.write(os.fspath(file_path))
    return decoded


def encode_midi_files(files: List[Path], num_workers: int) -> List[np.ndarray]:
    """0.11's `encode_midi_files`: the ids (int16 arrays) of the files that encode; others are skipped with a
    warning."""
    _deprecated("encode_midi_files", "perceiver.processing.midi.encode_files")
    encoded, skipped = midi.encode_files(files, num_workers=num_workers)
    for path, problem in skipped:
        warnings.warn(f"skipped {path}: {problem}", UserWarning, 2)
    return [np.array(ids, dtype=np.int16) for _, ids in encoded]


def midi_tokenizer() -> midi.MidiTokenizer:
    return midi.MidiTokenizer()
