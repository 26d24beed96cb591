"""The MIDI event tokenizer (`perceiver.processing.midi`): 0.11's fixture token for token, and performances made in
the test with pretty_midi whose expected ids follow from 0.11's encoding rules (event order, per-gap rounding,
velocity ids, sustain pedal), plus the corrected encoding, bounds and unreadable files."""

import json
import random
import warnings
from pathlib import Path

import mido
import pretty_midi
import pytest

from perceiver.data.audio import PAD_TOKEN_ID, VOCAB_SIZE, MidiTokenizer, decode_midi, encode_midi
from perceiver.processing import midi as midi_module
from perceiver.processing.midi import MidiFileError, load_midi

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "perceiver-io-0.11" / "midi"
ON, OFF, SHIFT, VEL = 0, 128, 255, 356  # SHIFT + n: n steps of 10 ms


def performance(*instruments, pedals=()):
    """A PrettyMIDI of instruments given as lists of (start, end, pitch, velocity); `pedals[i]` are the (time,
    value) sustain-pedal changes of instrument i."""
    midi = pretty_midi.PrettyMIDI()
    for i, notes in enumerate(instruments):
        instrument = pretty_midi.Instrument(program=0, is_drum=False)
        instrument.notes = [pretty_midi.Note(v, p, s, e) for s, e, p, v in notes]
        for time, value in pedals[i] if i < len(pedals) else ():
            instrument.control_changes.append(pretty_midi.ControlChange(64, value, time))
        midi.instruments.append(instrument)
    return midi


def make_midi(seed: int = 0, num_notes: int = 40, instruments: int = 1) -> pretty_midi.PrettyMIDI:
    """Random notes on the 10 ms grid, velocities multiples of 4 from 32 (so that every note-on gets its velocity
    id), chords, notes ending where others start, pauses over a second; notes of one pitch never overlap."""
    rng = random.Random(seed)
    midi = pretty_midi.PrettyMIDI()
    for k in range(instruments):
        instrument = pretty_midi.Instrument(program=k)
        low, high = 21 + k * 88 // instruments, 21 + (k + 1) * 88 // instruments - 1
        step, free_at = 0, {}
        while len(instrument.notes) < num_notes:
            step += rng.choice([0, 0, 5, 25, 50, 130])
            pitch = rng.randint(low, high)
            if free_at.get(pitch, 0) > step:
                continue
            duration = rng.randint(1, 180)
            free_at[pitch] = step + duration
            velocity = rng.randrange(32, 128, 4)
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


def encode_quietly(midi, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return MidiTokenizer(**kwargs).encode(midi)


def test_fixture_of_0_11_ids_and_decoded_notes():
    expected = json.loads((FIXTURE / "audio_prompt_1.json").read_text())
    ids = MidiTokenizer().encode(FIXTURE / "audio_prompt_1.mid")
    assert len(ids) == 254 and ids == expected["ids"]
    assert encode_midi(pretty_midi.PrettyMIDI(str(FIXTURE / "audio_prompt_1.mid"))) == expected["ids"]
    decoded = decode_midi(expected["ids"])
    (instrument,) = decoded.instruments
    assert (instrument.program, instrument.is_drum) == (expected["decoded"]["program"], expected["decoded"]["is_drum"])
    got = sorted((n.start, n.end, n.pitch, n.velocity) for n in instrument.notes)
    want = sorted(tuple(n) for n in expected["decoded"]["notes"])
    assert len(got) == len(want) == 60
    for g, w in zip(got, want):
        assert g[2:] == tuple(w[2:]) and abs(g[0] - w[0]) < 1e-6 and abs(g[1] - w[1]) < 1e-6


def test_vocabulary_layout():
    assert VOCAB_SIZE == len(MidiTokenizer()) == 389 and PAD_TOKEN_ID == 388
    assert (midi_module.NOTE_OFF_OFFSET, midi_module.TIME_SHIFT_OFFSET, midi_module.VELOCITY_OFFSET) == (128, 256, 356)
    assert midi_module.time_shift_ids(250) == [355, 355, 305]  # 1 s, 1 s, 0.5 s


def test_velocity_ids_follow_0_11():
    # after a note-off the velocity id is repeated; the corrected encoding writes it when the bin changes only
    midi = performance([(0.0, 0.5, 60, 64), (0.5, 1.7, 64, 64)])
    assert encode_quietly(midi) == [VEL + 16, 60, SHIFT + 50, OFF + 60, VEL + 16, 64, SHIFT + 100, SHIFT + 20, OFF + 64]
    assert encode_quietly(midi, encoding="corrected") == [VEL + 16, 60, SHIFT + 50, OFF + 60, 64, 355, 275, OFF + 64]
    # 0.11 compares a bin with the raw velocity of the event before: velocity 20, then 80 (bin 20) gets no id
    chord = performance([(0.0, 0.1, 60, 20), (0.0, 0.1, 64, 80)])
    assert encode_quietly(chord) == [VEL + 5, 60, 64, SHIFT + 10, OFF + 60, OFF + 64]
    assert encode_quietly(chord, encoding="corrected") == [VEL + 5, 60, VEL + 20, 64, SHIFT + 10, OFF + 60, OFF + 64]
    # extremes: velocity 0 at the start gets no id (0.11 starts at 0), 127 is bin 31; 128 is no MIDI velocity
    assert encode_quietly(performance([(0.0, 0.1, 60, 0), (0.2, 0.3, 61, 127)])) == [
        60, SHIFT + 10, OFF + 60, SHIFT + 10, VEL + 31, 61, SHIFT + 10, OFF + 61,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="velocity 128"):
        MidiTokenizer().encode(performance([(0.0, 0.1, 60, 128)]))
    with pytest.raises(ValueError, match="start=-0.5"):
        MidiTokenizer().encode(performance([(-0.5, 0.1, 60, 64)]))


def test_each_gap_is_rounded_on_its_own():
    # ten notes 14.9 ms apart: every gap rounds to 1 step (0.11), the absolute grid gives 15 steps in all
    starts = [0.0149 * k for k in range(11)]
    midi = performance([(s, e, 60, 64) for s, e in zip(starts, starts[1:])])
    ids = encode_quietly(midi)
    assert sum(i - SHIFT for i in ids if 256 <= i < 356) == 10
    assert sum(i - SHIFT for i in encode_quietly(midi, encoding="corrected") if 256 <= i < 356) == 15
    # half steps round to even, per gap, as Python's round of the float gap does
    for start in (0.005, 0.015, 0.025, 0.035, 0.125):
        steps = int(round(start * 100))
        assert encode_quietly(performance([(start, 1.0, 60, 64)]))[: 1 if steps == 0 else 2] == (
            [VEL + 16] if steps == 0 else [SHIFT + steps, VEL + 16]
        )


def test_event_order_float_time_then_instrument_and_file_order():
    # at equal times a note ending comes before one starting later in the order of notes; zero-length notes
    # write their note-on then their note-off
    midi = performance([(0.0, 1.0, 60, 64), (1.0, 1.0, 62, 64), (0.5, 1.0, 61, 64)])
    assert encode_quietly(midi) == [
        VEL + 16, 60, SHIFT + 50, VEL + 16, 61, SHIFT + 50, OFF + 60, OFF + 61, VEL + 16, 62, OFF + 62,
    ]  # fmt: skip
    # simultaneous notes of two instruments: instrument order; near-simultaneous: float time order, same step
    assert encode_quietly(performance([(0.0, 0.1, 70, 64)], [(0.0, 0.1, 50, 64)]))[:4] == [VEL + 16, 70, VEL + 16, 50]
    assert encode_quietly(performance([(0.0, 0.1, 50, 64)], [(0.0, 0.1, 70, 64)]))[:4] == [VEL + 16, 50, VEL + 16, 70]
    near = performance([(0.101, 0.2, 70, 64)], [(0.099, 0.2, 50, 64)])
    assert encode_quietly(near)[:5] == [SHIFT + 10, VEL + 16, 50, VEL + 16, 70]
    # drums are notes like any other
    drums = performance([(0.0, 0.1, 36, 100)])
    drums.instruments[0].is_drum = True
    assert encode_quietly(drums) == [VEL + 25, 36, SHIFT + 10, OFF + 36]


def test_sustain_pedal_as_0_11_and_corrected():
    # held notes last until the release, or until the next held note of the same pitch; a note after the last
    # release ends the pedal's walk and is lost (0.11), with one warning that says how to keep it
    midi = performance(
        [(0.1, 0.2, 60, 64), (0.3, 0.4, 64, 64), (0.5, 0.6, 60, 64), (1.5, 1.6, 67, 64)],
        pedals=[[(0.0, 127), (1.0, 0)]],
    )
    with pytest.warns(UserWarning, match=r"lost 1 of its notes .*encoding='corrected'"):
        ids = MidiTokenizer().encode(midi)
    assert notes(decode_midi(ids)) == [(10, 50, 60, 64), (30, 100, 64, 64), (50, 100, 60, 64)]
    assert midi.instruments[0].notes[0].end == 0.2  # the caller's notes are not changed
    corrected = encode_quietly(midi, encoding="corrected")
    assert notes(decode_midi(corrected)) == [(10, 50, 60, 64), (30, 100, 64, 64), (50, 100, 60, 64), (150, 160, 67, 64)]

    # no note after the release: 0.11 lengthens nothing; a pedal never released is ignored
    inside = performance([(0.1, 0.2, 60, 64)], pedals=[[(0.0, 127), (1.0, 0)]])
    assert notes(decode_midi(encode_quietly(inside))) == [(10, 20, 60, 64)]
    open_pedal = performance([(0.1, 0.2, 60, 64), (0.5, 0.6, 62, 64)], pedals=[[(0.0, 127)]])
    assert notes(decode_midi(encode_quietly(open_pedal))) == [(10, 20, 60, 64), (50, 60, 62, 64)]
    assert notes(decode_midi(encode_quietly(open_pedal, encoding="corrected"))) == [(10, 60, 60, 64), (50, 60, 62, 64)]

    # two pedals after the last note: 0.11 writes the notes twice (warned), corrected once
    late = performance([(0.0, 0.5, 60, 64)], pedals=[[(1.0, 127), (2.0, 0), (3.0, 127), (4.0, 0)]])
    with pytest.warns(UserWarning, match="repeated 1"):
        assert MidiTokenizer().encode(late) == [VEL + 16, 60, VEL + 16, 60, SHIFT + 50, OFF + 60, OFF + 60]
    assert encode_quietly(late, encoding="corrected") == [VEL + 16, 60, SHIFT + 50, OFF + 60]

    # a second release while the pedal is up moves the release later; pedals are per instrument
    twice = performance(
        [(0.1, 0.2, 60, 64), (2.0, 2.1, 62, 64)], [(0.1, 0.2, 72, 64)], pedals=[[(0.0, 100), (1.0, 10), (1.5, 0)]]
    )
    with pytest.warns(UserWarning, match="lost 1"):
        assert notes(decode_midi(MidiTokenizer().encode(twice))) == [(10, 20, 72, 64), (10, 150, 60, 64)]


def test_decode_where_0_11_loses_notes():
    # shift 0.45 s, on 60, shift, off 60, off 61 (not sounding), velocity bin 4, on 60, shift, on 60 (0.11 forgets
    # the first), padding, on 61, on 60 (ends the last at its start: dropped); velocity bin 0 is velocity 1
    ids = [300, 60, 300, 128 + 60, 128 + 61, 360, 60, 300, 60, PAD_TOKEN_ID, 61, 60]
    assert notes(decode_midi(ids)) == [(45, 90, 60, 1), (90, 135, 60, 16), (135, 136, 60, 16), (135, 136, 61, 16)]
    with pytest.raises(ValueError, match="out of range"):
        decode_midi([VOCAB_SIZE])
    # a continuation decoded on its own can start with the velocity of its prompt
    assert notes(MidiTokenizer().decode([60, 300, 188], initial_velocity_bin=20)) == [(0, 45, 60, 80)]
    with pytest.raises(ValueError, match="initial_velocity_bin=32"):
        MidiTokenizer().decode([60], initial_velocity_bin=32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_on_the_grid(seed, tmp_path):
    midi = make_midi(seed, instruments=1 + seed % 2)
    ids = encode_quietly(midi)
    assert notes(decode_midi(encode_quietly(midi, encoding="corrected"))) == notes(midi)
    assert all(0 <= i < PAD_TOKEN_ID for i in ids)
    decoded = decode_midi(ids, tmp_path / "d.mid")
    assert notes(decoded) == notes(midi) and notes(pretty_midi.PrettyMIDI(str(tmp_path / "d.mid"))) == notes(midi)
    assert sorted(encode_quietly(decoded)) == sorted(ids)  # simultaneous notes may change order: (start, pitch)


def test_bounded_encoding_and_unreadable_files(tmp_path):
    pause = performance([(0.0, 0.1, 60, 64), (1e6, 1e6 + 0.1, 60, 64)])
    with pytest.raises(MidiFileError, match="max_tokens=1000000"):
        MidiTokenizer().encode(pause)
    assert len(MidiTokenizer(max_tokens=None).encode(pause)) > 1_000_000
    path = tmp_path / "pause.mid"
    performance([(0.0, 0.1, 60, 64), (30.0, 30.1, 60, 64)]).write(str(path))
    with pytest.raises(MidiFileError, match="pause.mid.*max_tokens=20"):
        MidiTokenizer(max_tokens=20).encode(path)
    # a tiny file whose one pause lasts 23 days (one tick per beat, one second per beat): no list of 2 million ids
    tiny = mido.MidiFile(ticks_per_beat=1)
    tiny.tracks.append(mido.MidiTrack([
        mido.MetaMessage("set_tempo", tempo=1_000_000, time=0), mido.Message("note_on", note=60, velocity=64, time=0),
        mido.Message("note_off", note=60, velocity=0, time=2_000_000),
    ]))  # fmt: skip
    tiny.save(str(tmp_path / "tiny.mid"))
    assert (tmp_path / "tiny.mid").stat().st_size < 60
    with pytest.raises(MidiFileError, match=r"tiny.mid' encodes into more than max_tokens=1000000 .*2000000\.00 s"):
        MidiTokenizer().encode(tmp_path / "tiny.mid")
    with pytest.raises(ValueError, match="max_tokens=0"):
        MidiTokenizer(max_tokens=0)
    with pytest.raises(ValueError, match="encoding='0.12'"):
        MidiTokenizer(encoding="0.12")

    good = write_midi(tmp_path / "good.mid")
    (tmp_path / "truncated.mid").write_bytes(good.read_bytes()[:40])
    (tmp_path / "text.mid").write_text("not MIDI at all")
    for name in ("truncated.mid", "text.mid"):
        with pytest.raises(MidiFileError, match=name + ".*can not be read"):
            load_midi(tmp_path / name)
        with pytest.raises(MidiFileError, match=name):
            encode_midi(str(tmp_path / name))
    with pytest.raises(FileNotFoundError, match="missing.mid"):
        encode_midi(tmp_path / "missing.mid")


def test_0_11_module_path(tmp_path):
    from perceiver.data.audio import midi_processor

    expected = json.loads((FIXTURE / "audio_prompt_1.json").read_text())
    prompt = pretty_midi.PrettyMIDI(str(FIXTURE / "audio_prompt_1.mid"))
    with pytest.warns(DeprecationWarning, match="perceiver.processing.midi"):
        assert midi_processor.encode_midi(midi=prompt) == expected["ids"]
    with pytest.warns(DeprecationWarning):
        decoded = midi_processor.decode_midi(expected["ids"], str(tmp_path / "out.mid"))
    instrument = decoded.instruments[0]
    assert (instrument.program, instrument.is_drum, instrument.name) == tuple(
        expected["decoded"][k] for k in ("program", "is_drum", "name")
    )
    assert notes(pretty_midi.PrettyMIDI(str(tmp_path / "out.mid"))) == notes(decoded)


def random_performance(seed: int) -> pretty_midi.PrettyMIDI:
    """Off-grid times, chords, zero-length notes, drums, several instruments, velocities 0-127, long pauses."""
    rng = random.Random(seed)
    midi = pretty_midi.PrettyMIDI()
    for k in range(rng.randint(1, 3)):
        instrument = pretty_midi.Instrument(program=k, is_drum=k == 2)
        time = 0.0
        for _ in range(rng.randint(1, 40)):
            time += rng.choice([0.0, 0.0, 0.004, 0.005, 0.0149, 0.125, 0.3333, 2.505])
            duration = rng.choice([0.0, 0.003, 0.2, 1.5])
            velocity = rng.choice([0, 1, 4, 127, rng.randint(0, 127)])
            instrument.notes.append(pretty_midi.Note(velocity, rng.randint(30, 90), time, time + duration))
        midi.instruments.append(instrument)
    return midi


@pytest.mark.parametrize("seed", range(8))
def test_random_performances_follow_0_11_rules(seed):
    midi = random_performance(seed)
    ids = encode_quietly(midi)
    all_notes = sorted((n for i in midi.instruments for n in i.notes), key=lambda n: n.start)
    events = sorted(
        [(n.start, 2 * rank, n) for rank, n in enumerate(all_notes)]
        + [(n.end, 2 * rank + 1, n) for rank, n in enumerate(all_notes)],
        key=lambda e: e[:2],
    )
    # one note-on and one note-off per note, in the event order of float time, then note order
    assert [i for i in ids if i < 256] == [(OFF if position % 2 else ON) + n.pitch for _, position, n in events]
    # the time shifts add up each gap rounded on its own
    times = [0.0] + [time for time, _, _ in events]
    assert sum(i - SHIFT for i in ids if 256 <= i < 356) == sum(
        int(round((b - a) * 100)) for a, b in zip(times, times[1:])
    )
    # the corrected encoding: the same events, the absolute grid, and a velocity id exactly where the bin changes
    corrected = encode_quietly(midi, encoding="corrected")
    assert [i for i in corrected if i < 256] == [i for i in ids if i < 256]
    assert sum(i - SHIFT for i in corrected if 256 <= i < 356) == round(times[-1] * 100)
    bins = [n.velocity // 4 for _, position, n in events if position % 2 == 0]
    assert [i - VEL for i in corrected if i >= 356] == [b for k, b in enumerate(bins) if k == 0 or b != bins[k - 1]]
