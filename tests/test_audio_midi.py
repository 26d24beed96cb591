"""The MIDI event tokenizer (Music Transformer vocabulary of 389 ids) on MIDI made in the test with pretty_midi."""

import random
from pathlib import Path

import pretty_midi
import pytest

from perceiver.data.audio import PAD_TOKEN_ID, VOCAB_SIZE, MidiTokenizer, decode_midi, encode_midi
from perceiver.data.audio import midi as midi_module


def make_midi(seed: int = 0, num_notes: int = 40, instruments: int = 1) -> pretty_midi.PrettyMIDI:
    """Random notes on a 10 ms grid with velocities on the tokenizer's bins (so that they round-trip exactly), with
    chords, notes ending where others start and pauses longer than one second; notes of one pitch do not overlap
    (instruments play disjoint pitch ranges), which the event encoding could not represent."""
    rng = random.Random(seed)
    midi = pretty_midi.PrettyMIDI()
    for k in range(instruments):
        instrument = pretty_midi.Instrument(program=k)
        low = 21 + k * 88 // instruments
        high = 21 + (k + 1) * 88 // instruments - 1
        step, free_at = 0, {}
        while len(instrument.notes) < num_notes:
            step += rng.choice([0, 0, 5, 25, 50, 130])
            pitch = rng.randint(low, high)
            if free_at.get(pitch, 0) > step:
                continue
            duration = rng.randint(1, 180)
            free_at[pitch] = step + duration
            velocity = rng.randrange(4, 128, 4)
            instrument.notes.append(pretty_midi.Note(velocity, pitch, step / 100, (step + duration) / 100))
        midi.instruments.append(instrument)
    return midi


def write_midi(path: Path, seed: int = 0, num_notes: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    make_midi(seed, num_notes).write(str(path))
    return path


def notes(midi: pretty_midi.PrettyMIDI) -> list:
    return sorted(
        (round(n.start * 100), round(n.end * 100), n.pitch, n.velocity) for i in midi.instruments for n in i.notes
    )


def test_vocabulary_layout():
    assert VOCAB_SIZE == len(MidiTokenizer()) == 389 and PAD_TOKEN_ID == 388
    assert (midi_module.NOTE_OFF_OFFSET, midi_module.TIME_SHIFT_OFFSET, midi_module.VELOCITY_OFFSET) == (128, 256, 356)
    assert midi_module.time_shift_ids(250) == [355, 355, 305]  # 1 s, 1 s, 0.5 s


def test_encode_events():
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0)
    piano.notes += [pretty_midi.Note(64, 60, 0.0, 0.5), pretty_midi.Note(64, 64, 0.5, 1.7)]
    midi.instruments.append(piano)
    # velocity bin 16, note-on 60, 0.5 s, note-off 60 (ends before the next starts), note-on 64, 1 s + 0.2 s, off
    assert encode_midi(midi) == [372, 60, 305, 188, 64, 355, 275, 192]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip(seed):
    midi = make_midi(seed)
    ids = encode_midi(midi)
    assert all(0 <= i < PAD_TOKEN_ID for i in ids)
    decoded = decode_midi(ids)
    assert isinstance(decoded, pretty_midi.PrettyMIDI) and len(decoded.instruments) == 1
    assert notes(decoded) == notes(midi)
    assert encode_midi(decoded) == ids


def test_encode_file_and_merge_instruments(tmp_path):
    midi = make_midi(3, instruments=2)
    midi.write(str(tmp_path / "a.mid"))
    ids = MidiTokenizer()(tmp_path / "a.mid")
    assert ids == encode_midi(str(tmp_path / "a.mid"))
    assert notes(decode_midi(ids)) == notes(midi)


def test_decode_any_ids():
    # shift 0.45 s, on 60, shift, off 60, off 61 (not sounding), velocity bin 4, on 60, shift, on 60 (ends the last),
    # padding, on 61, on 60 (ends the last at its start: dropped)
    ids = [300, 60, 300, 128 + 60, 128 + 61, 360, 60, 300, 60, PAD_TOKEN_ID, 61, 60]
    decoded = decode_midi(ids)
    assert notes(decoded) == [(45, 45 + 45, 60, 64), (90, 135, 60, 16), (135, 136, 60, 16), (135, 136, 61, 16)]
    with pytest.raises(ValueError, match="out of range"):
        decode_midi([VOCAB_SIZE])
