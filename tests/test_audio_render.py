"""Rendering MIDI to WAV with the built-in synthesizer (spectral peaks at the notes' frequencies) and piano rolls."""

import io
import wave

import numpy as np
import pretty_midi
import pytest
from PIL import Image

from perceiver.processing.midi_audio import (
    CONTINUATION_COLOR,
    PROMPT_COLOR,
    piano_roll_png,
    pitch_frequency,
    render_wav,
    synthesize,
)

C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72]


def scale(pitches=C_MAJOR, seconds=0.4, velocity=100):
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(velocity, p, i * seconds, (i + 1) * seconds) for i, p in enumerate(pitches)]
    midi.instruments.append(piano)
    return midi


def read_wav(data: bytes):
    with wave.open(io.BytesIO(data)) as f:
        assert (f.getnchannels(), f.getsampwidth()) == (1, 2)
        return np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.float64), f.getframerate()


def test_scale_spectrum_peaks_at_the_notes_frequencies():
    samples, rate = read_wav(render_wav(scale()))
    assert rate == 22050 and len(samples) >= int(8 * 0.4 * rate)
    assert 0.5 * 32767 < np.abs(samples).max() <= 32767
    for i, pitch in enumerate(C_MAJOR):
        # the steady part of each note (after the previous note's release), a Hann window, zero-padded FFT
        segment = samples[int((i * 0.4 + 0.1) * rate) : int((i * 0.4 + 0.38) * rate)]
        spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n=1 << 16))
        frequencies = np.fft.rfftfreq(1 << 16, 1 / rate)
        peak = frequencies[np.argmax(spectrum)]
        expected = pitch_frequency(pitch)
        assert abs(peak - expected) / expected < 0.01, (pitch, peak, expected)
        # the next semitone is far weaker than the note itself
        neighbour = np.argmin(np.abs(frequencies - expected * 2 ** (1 / 12)))
        assert spectrum[neighbour] < 0.2 * spectrum.max()


def test_silence_drums_and_sf2_path(tmp_path):
    assert synthesize(pretty_midi.PrettyMIDI()).shape == (int(0.08 * 22050) + 1,)  # nothing to play: silence
    midi = scale([36, 38], seconds=0.2)
    midi.instruments[0].is_drum = True
    samples = synthesize(midi, sample_rate=8000)
    assert np.isfinite(samples).all() and np.abs(samples).max() == pytest.approx(0.9, abs=1e-6)
    with pytest.raises(ValueError, match="sf2_path='.*missing.sf2' does not exist"):
        render_wav(midi, sf2_path=tmp_path / "missing.sf2")
    with pytest.raises(ValueError, match="sample_rate=10"):
        synthesize(midi, sample_rate=10)


def test_piano_roll_colors_prompt_and_continuation(tmp_path):
    midi = scale(seconds=0.5, velocity=127)
    data = piano_roll_png(midi, split_time=2.0, path=tmp_path / "roll.png")
    assert (tmp_path / "roll.png").read_bytes() == data
    image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    colors = {tuple(c) for c in image.reshape(-1, 3)}
    assert PROMPT_COLOR in colors and CONTINUATION_COLOR in colors
    # the prompt (C4-F4, first 2 s) lies left of and below the continuation (G4-C5): pitch up, time right
    rows_prompt, columns_prompt = np.where((image == PROMPT_COLOR).all(-1))
    rows_continuation, columns_continuation = np.where((image == CONTINUATION_COLOR).all(-1))
    assert rows_prompt.min() > rows_continuation.max() and columns_prompt.max() < columns_continuation.min()
