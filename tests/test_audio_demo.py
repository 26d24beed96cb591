"""`make demo-audio` end to end, reduced to a few training steps and a short continuation."""

import wave

import pretty_midi
import pytest
from PIL import Image

from perceiver.processing.midi import MidiTokenizer


def test_synthesized_performances_are_scales_in_one_key():
    from perceiver.demos.symbolic_audio import MAJOR, MINOR, performance

    for seed in range(5):
        midi = performance(seed)
        root, mode = midi.instruments[0].name.split()
        key = {(int(root) + s) % 12 for s in (MAJOR if mode == "major" else MINOR)}
        assert {n.pitch % 12 for n in midi.instruments[0].notes} <= key
        assert 100 < len(MidiTokenizer().encode(midi)) < 2000


@pytest.mark.slow
def test_demo_runs_reduced(tmp_path, capsys, one_thread):
    from perceiver.demos import symbolic_audio

    result = symbolic_audio.main(
        tmp_path,
        max_steps=2,
        num_train=12,
        num_valid=2,
        batch_size=4,
        max_new_tokens=48,
        max_time="00:00:02:00",
        in_process=True,
    )
    output = capsys.readouterr().out
    assert "of them in the prompt's key" in output and 0.0 <= result["in_key"] <= 1.0
    continued = pretty_midi.PrettyMIDI(str(result["midi"]))
    assert len(continued.instruments[0].notes) >= 20  # the 20 notes of the prompt, and what followed
    with wave.open(str(result["wav"])) as f:
        assert f.getnframes() / f.getframerate() >= continued.get_end_time()
    assert Image.open(result["piano_roll"]).format == "PNG"
