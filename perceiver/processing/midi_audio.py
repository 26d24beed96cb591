"""MIDI to sound and pictures: WAV rendering (FluidSynth with a SoundFont where both are at hand, otherwise a small
additive synthesizer in numpy that needs nothing from the system) and piano-roll PNGs."""

import io
import os
import shutil
import subprocess
import tempfile
import warnings
import wave
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

if TYPE_CHECKING:
    import pretty_midi

DEFAULT_SAMPLE_RATE = 22050
RELEASE_SECONDS = 0.08  # fade-out after a note ends (no clicks)
ATTACK_SECONDS = 0.005
HARMONICS = (1.0, 0.5, 0.25, 0.12, 0.06)  # amplitudes of the partials: a soft, piano-like tone

PathLike = Union[str, os.PathLike]


def pitch_frequency(pitch: int) -> float:
    """Frequency in Hz of a MIDI pitch (equal temperament, A4 = pitch 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def synthesize(midi: "pretty_midi.PrettyMIDI", sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """Mono float32 samples in [-1, 1] of `midi`: each note a sum of harmonics with an attack, an exponential decay
    (faster for higher notes, as strings decay) and a release; drum notes are decaying noise bursts."""
    if sample_rate < 1000:
        raise ValueError(f"sample_rate={sample_rate} must be at least 1000")
    end_time = max((n.end for i in midi.instruments for n in i.notes), default=0.0)
    out = np.zeros(int((end_time + RELEASE_SECONDS) * sample_rate) + 1, dtype=np.float64)
    rng = np.random.default_rng(0)
    for instrument in midi.instruments:
        for note in instrument.notes:
            f0 = pitch_frequency(note.pitch)
            decay = 0.06 if instrument.is_drum else 0.4 + 400.0 / f0  # about 2 s for low, 0.5 s for high notes
            # a held note is inaudible after 8 decay times (-70 dB): no need to compute it further
            duration = min(max(note.end - note.start, 1.0 / sample_rate), 8 * decay)
            first = int(round(note.start * sample_rate))
            n = min(int((duration + RELEASE_SECONDS) * sample_rate), len(out) - first)
            if n <= 0:
                continue
            t = np.arange(n) / sample_rate
            if instrument.is_drum:
                sound = rng.standard_normal(n)
            else:
                sound = sum(
                    a * np.sin(2 * np.pi * k * f0 * t)
                    for k, a in enumerate(HARMONICS, start=1)
                    if k * f0 < sample_rate / 2
                )
            sound = sound * np.exp(-t / decay)
            envelope = np.clip(t / ATTACK_SECONDS, 0.0, 1.0)
            envelope *= np.clip((duration + RELEASE_SECONDS - t) / RELEASE_SECONDS, 0.0, 1.0)
            out[first : first + n] += (note.velocity / 127.0) * envelope * sound
    peak = np.abs(out).max(initial=0.0)
    if peak > 0:
        out *= 0.9 / peak
    return out.astype(np.float32)


def wav_bytes(samples: np.ndarray, sample_rate: int = DEFAULT_SAMPLE_RATE) -> bytes:
    """16-bit mono WAV file content of float samples in [-1, 1]."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())
    return buffer.getvalue()


def fluidsynth_available() -> bool:
    """Whether the `fluidsynth` command is installed."""
    return shutil.which("fluidsynth") is not None


def render_wav(
    midi: "pretty_midi.PrettyMIDI", sf2_path: Optional[PathLike] = None, sample_rate: int = DEFAULT_SAMPLE_RATE
) -> bytes:
    """WAV file content of `midi`: through FluidSynth with the SoundFont `sf2_path` if given and FluidSynth is
    installed, otherwise through `synthesize` (with a warning when a SoundFont was given)."""
    if sf2_path is not None:
        if not os.path.isfile(sf2_path):
            raise ValueError(f"sf2_path={os.fspath(sf2_path)!r} does not exist")
        if fluidsynth_available():
            return _fluidsynth_wav(midi, os.fspath(sf2_path), sample_rate)
        warnings.warn(
            "sf2_path given but the fluidsynth command is not installed: rendering with the built-in synthesizer",
            UserWarning,
            stacklevel=2,
        )
    return wav_bytes(synthesize(midi, sample_rate), sample_rate)


def _fluidsynth_wav(midi: "pretty_midi.PrettyMIDI", sf2_path: str, sample_rate: int) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        midi_file, wav_file = os.path.join(tmp, "audio.mid"), os.path.join(tmp, "audio.wav")
        midi.write(midi_file)
        command = ["fluidsynth", "-ni", "-F", wav_file, "-r", str(sample_rate), sf2_path, midi_file]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not os.path.isfile(wav_file):
            raise RuntimeError(f"fluidsynth failed ({result.returncode}): {result.stderr.strip()[-500:]}")
        with open(wav_file, "rb") as f:
            return f.read()


PROMPT_COLOR = (52, 101, 164)
CONTINUATION_COLOR = (230, 126, 34)


def piano_roll_png(
    midi: "pretty_midi.PrettyMIDI",
    split_time: Optional[float] = None,
    path: Optional[PathLike] = None,
    pixels_per_second: float = 50.0,
    max_width: int = 1600,
) -> bytes:
    """A piano-roll PNG of `midi` (time to the right, pitch up, brighter = louder): notes starting before
    `split_time` (the prompt) in blue, later notes (the continuation) in orange, with a line at `split_time`.
    Written to `path` if given; returns the PNG bytes."""
    from PIL import Image, ImageDraw

    notes = [n for i in midi.instruments for n in i.notes]
    end_time = max((n.end for n in notes), default=1.0)
    low = min((n.pitch for n in notes), default=60) - 2
    high = max((n.pitch for n in notes), default=72) + 2
    row = 6
    scale = min(pixels_per_second, max_width / max(end_time, 1e-3))
    width, height = int(end_time * scale) + 20, (high - low + 1) * row + 20
    image = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(image)

    def y_of(pitch: int) -> int:
        return 10 + (high - pitch) * row

    for pitch in range(low, high + 1):
        if pitch % 12 == 0:  # the Cs: octave lines
            draw.line([(10, y_of(pitch) + row), (width - 10, y_of(pitch) + row)], fill=(210, 210, 210))
    for note in notes:
        color = PROMPT_COLOR if split_time is None or note.start < split_time else CONTINUATION_COLOR
        shade = 0.35 + 0.65 * note.velocity / 127
        fill = tuple(int(255 - (255 - c) * shade) for c in color)
        x0, x1 = 10 + note.start * scale, 10 + max(note.end * scale, note.start * scale + 1)
        draw.rectangle([(x0, y_of(note.pitch)), (x1, y_of(note.pitch) + row - 2)], fill=fill)
    if split_time is not None:
        x = 10 + split_time * scale
        draw.line([(x, 5), (x, height - 5)], fill=(120, 120, 120), width=1)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    data = buffer.getvalue()
    if path is not None:
        with open(path, "wb") as f:
            f.write(data)
    return data
