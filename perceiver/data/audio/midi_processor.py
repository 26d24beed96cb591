"""perceiver-io 0.11's `perceiver.data.audio.midi_processor`: deprecated, use `perceiver.processing.midi`."""

import os
import warnings
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np

from perceiver._compat import deprecated_aliases
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


# ---- 0.11's event classes, kept for user code (the encoding itself is `perceiver.processing.midi.MidiTokenizer`) ----

_EVENT_OFFSETS = {
    "note_on": midi.NOTE_ON_OFFSET,
    "note_off": midi.NOTE_OFF_OFFSET,
    "time_shift": midi.TIME_SHIFT_OFFSET,
    "velocity": midi.VELOCITY_OFFSET,
}


class _Event:
    """One event of the MIDI encoding: `type` (`note_on`, `note_off`, `time_shift`, `velocity`) and `value`."""

    def __init__(self, event_type: str, value: int):
        self.type = event_type
        self.value = value

    def __repr__(self) -> str:
        return f"<Event type: {self.type}, value: {self.value}>"

    def to_int(self) -> int:
        """The event's token id."""
        return _EVENT_OFFSETS[self.type] + self.value

    @staticmethod
    def from_int(int_value: int) -> "_Event":
        """The event of a token id (ids past the velocity range count as velocity events, as in 0.11)."""
        event_type = "velocity"
        for name, offset in sorted(_EVENT_OFFSETS.items(), key=lambda item: item[1]):
            if int_value >= offset:
                event_type = name
        return _Event(event_type, int_value - _EVENT_OFFSETS[event_type])


class _SplitNote:
    """A note's onset (`type` `note_on`) or release (`note_off`) at `time`, with pitch `value` and `velocity`."""

    def __init__(self, type: str, time: float, value: int, velocity: int):
        self.type = type
        self.time = time
        self.velocity = velocity
        self.value = value

    def __repr__(self) -> str:
        return f"<[SNote] time: {self.time} type: {self.type}, value: {self.value}, velocity: {self.velocity}>"


class _SustainAdapter:
    """A sustain pedal change at `time`, as a note-like record (`start`, `type`)."""

    def __init__(self, time: float, type: str):
        self.start = time
        self.type = type


class _SustainDownManager:
    """The notes starting while the sustain pedal is down (`start` to `end`); `transposition_notes` lengthens them
    as the 0.11 encoding does (to the next onset of the same pitch, else to the release if that is later)."""

    def __init__(self, start: float, end: float):
        self.start = start
        self.end = end
        self.managed_notes: list = []

    def add_managed_note(self, note) -> None:
        self.managed_notes.append(note)

    def transposition_notes(self) -> None:
        midi._hold_011(self.managed_notes, self.end)


__getattr__ = deprecated_aliases(
    __name__,
    {
        name: ("perceiver.processing.midi.MidiTokenizer", f"{__name__}:_{name}")
        for name in ("Event", "SplitNote", "SustainAdapter", "SustainDownManager")
    },
)
