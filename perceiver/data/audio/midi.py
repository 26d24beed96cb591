"""MIDI event tokenizer of the Music Transformer (Huang et al., arXiv 1809.04281; Oore et al., arXiv 1808.03715), as
used by perceiver-io 0.11's symbolic audio model: a performance is a sequence of 389 token ids,

====================  ==========  ==================================================================
token ids             count       event
====================  ==========  ==================================================================
0 - 127               128         note-on of MIDI pitch `id`
128 - 255             128         note-off of MIDI pitch `id - 128`
256 - 355             100         time shift of `id - 255` steps of 10 ms (10 ms to 1 s)
356 - 387             32          velocity bin `id - 356` (MIDI velocity // 4) of the following note-ons
388                   1           padding
====================  ==========  ==================================================================

Notes of all instruments are merged into one performance (decoded as a single piano). Times are quantized to 10 ms
(longer pauses are several time shifts); a note lasts at least one step.
"""

import os
from typing import TYPE_CHECKING, Iterable, List, Sequence, Tuple, Union

if TYPE_CHECKING:  # pretty_midi is an optional dependency (the `audio` extra)
    import pretty_midi

NUM_PITCHES = 128
NUM_TIME_SHIFTS = 100
NUM_VELOCITY_BINS = 32

NOTE_ON_OFFSET = 0
NOTE_OFF_OFFSET = NOTE_ON_OFFSET + NUM_PITCHES
TIME_SHIFT_OFFSET = NOTE_OFF_OFFSET + NUM_PITCHES
VELOCITY_OFFSET = TIME_SHIFT_OFFSET + NUM_TIME_SHIFTS
PAD_TOKEN_ID = VELOCITY_OFFSET + NUM_VELOCITY_BINS
VOCAB_SIZE = PAD_TOKEN_ID + 1

STEPS_PER_SECOND = 100  # time resolution: 10 ms
VELOCITY_BIN_SIZE = 128 // NUM_VELOCITY_BINS

MidiInput = Union["pretty_midi.PrettyMIDI", str, os.PathLike]


def _pretty_midi():
    try:
        import pretty_midi
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError("MIDI tokenization needs pretty_midi: pip install 'perceiver-io[audio]'") from e
    return pretty_midi


class MidiTokenizer:
    """Encodes MIDI performances to event token ids and decodes token ids to MIDI (see the module's table)."""

    vocab_size: int = VOCAB_SIZE
    pad_token_id: int = PAD_TOKEN_ID

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, midi: MidiInput) -> List[int]:
        """Token ids of a `pretty_midi.PrettyMIDI` or of a MIDI file (path)."""
        if isinstance(midi, (str, os.PathLike)):
            midi = _pretty_midi().PrettyMIDI(os.fspath(midi))
        # (time step, 0 = note-off / 1 = note-on, pitch, velocity): at equal times, notes end before others start
        events: List[Tuple[int, int, int, int]] = []
        for instrument in midi.instruments:
            for note in instrument.notes:
                start = round(note.start * STEPS_PER_SECOND)
                end = max(round(note.end * STEPS_PER_SECOND), start + 1)
                events.append((start, 1, note.pitch, note.velocity))
                events.append((end, 0, note.pitch, 0))
        events.sort()

        ids: List[int] = []
        step, velocity_bin = 0, None
        for time, is_on, pitch, velocity in events:
            ids.extend(time_shift_ids(time - step))
            step = time
            if is_on:
                bin_ = min(velocity // VELOCITY_BIN_SIZE, NUM_VELOCITY_BINS - 1)
                if bin_ != velocity_bin:
                    ids.append(VELOCITY_OFFSET + bin_)
                    velocity_bin = bin_
                ids.append(NOTE_ON_OFFSET + pitch)
            else:
                ids.append(NOTE_OFF_OFFSET + pitch)
        return ids

    def decode(self, ids: Iterable[int], program: int = 0) -> "pretty_midi.PrettyMIDI":
        """A `pretty_midi.PrettyMIDI` with one instrument (`program`, default piano) playing the notes of `ids`.

        Any sequence of ids decodes into notes that never overlap notes of the same pitch: padding is skipped, a
        note-off without a sounding note is ignored, a note-on of a sounding pitch ends that note first, a note ended
        at its start step is dropped, and notes still sounding at the end last until there (at least one step).
        Velocity bins decode to their lowest velocity (at least 1), 64 before any velocity bin.
        """
        pretty_midi = _pretty_midi()
        instrument = pretty_midi.Instrument(program=program)
        step, velocity = 0, 64
        sounding = {}  # pitch -> (start step, velocity)

        def end_note(pitch: int, end: int) -> None:
            start, note_velocity = sounding.pop(pitch)
            if end <= start:
                return
            instrument.notes.append(
                pretty_midi.Note(note_velocity, pitch, start / STEPS_PER_SECOND, end / STEPS_PER_SECOND)
            )

        for id_ in (int(i) for i in ids):
            if not 0 <= id_ < VOCAB_SIZE:
                raise ValueError(f"token id {id_} out of range [0, {VOCAB_SIZE})")
            if id_ < NOTE_OFF_OFFSET:
                pitch = id_ - NOTE_ON_OFFSET
                if pitch in sounding:
                    end_note(pitch, step)
                sounding[pitch] = (step, velocity)
            elif id_ < TIME_SHIFT_OFFSET:
                pitch = id_ - NOTE_OFF_OFFSET
                if pitch in sounding:
                    end_note(pitch, step)
            elif id_ < VELOCITY_OFFSET:
                step += id_ - TIME_SHIFT_OFFSET + 1
            elif id_ < PAD_TOKEN_ID:
                velocity = max((id_ - VELOCITY_OFFSET) * VELOCITY_BIN_SIZE, 1)
        for pitch in list(sounding):
            end_note(pitch, max(step, sounding[pitch][0] + 1))
        instrument.notes.sort(key=lambda note: (note.start, note.pitch))
        midi = pretty_midi.PrettyMIDI()
        midi.instruments.append(instrument)
        return midi

    def __call__(self, midi: MidiInput) -> List[int]:
        return self.encode(midi)


def time_shift_ids(steps: int) -> List[int]:
    """Time-shift token ids advancing `steps` steps of 10 ms (one id per second, then the rest)."""
    ids = [TIME_SHIFT_OFFSET + NUM_TIME_SHIFTS - 1] * (steps // NUM_TIME_SHIFTS)
    if steps % NUM_TIME_SHIFTS:
        ids.append(TIME_SHIFT_OFFSET + steps % NUM_TIME_SHIFTS - 1)
    return ids


def encode_midi(midi: MidiInput) -> List[int]:
    """Token ids of a `pretty_midi.PrettyMIDI` or a MIDI file; see `MidiTokenizer.encode`."""
    return MidiTokenizer().encode(midi)


def decode_midi(ids: Sequence[int], program: int = 0) -> "pretty_midi.PrettyMIDI":
    """A `pretty_midi.PrettyMIDI` of token ids; see `MidiTokenizer.decode`."""
    return MidiTokenizer().decode(ids, program=program)
