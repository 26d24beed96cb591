"""The `symbolic-audio-generation` pipeline with 0.11's interface: 0.11's own pipeline tests and README example
(offline: a tiny model with random weights instead of the hub model), and this library's additions."""

import wave
from pathlib import Path

import pretty_midi
import pytest
import torch
from PIL import Image
from pretty_midi import PrettyMIDI
from transformers import pipeline

from perceiver.model.audio import symbolic
from perceiver.model.audio.symbolic.huggingface import ReturnType
from perceiver.model.audio.symbolic.pipeline import _last_velocity_bin
from perceiver.processing.midi import MidiFileError, MidiTokenizer

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "perceiver-io-0.11" / "midi"
PROMPT_LENGTH = 254
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    config = symbolic.SymbolicAudioModelConfig(
        max_seq_len=320, max_latents=16, num_channels=16, num_heads=2, num_self_attention_layers=1
    )
    path = tmp_path_factory.mktemp("sam")
    symbolic.PerceiverSymbolicAudioModel(symbolic.PerceiverSymbolicAudioModelConfig(config)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def audio_generator(model_dir):
    return pipeline("symbolic-audio-generation", model=str(model_dir))


@pytest.fixture(scope="module")
def prompt():
    return PrettyMIDI(midi_file=str(FIXTURE / "audio_prompt_1.mid"))


# 0.11's tests/symbolic_audio_model_pipeline_test.py, unchanged but for the model


@pytest.mark.parametrize("use_cache", [True, False])
def test_0_11_return_tensors_full_and_new_audio(audio_generator, prompt, use_cache):
    generated = audio_generator(
        prompt, max_new_tokens=32, do_sample=True, return_full_audio=True, return_type=ReturnType.TENSORS,
        use_cache=use_cache,
    )  # fmt: skip
    assert (
        type(generated["generated_token_ids"]) is list and len(generated["generated_token_ids"]) == PROMPT_LENGTH + 32
    )
    generated = audio_generator(
        prompt, max_new_tokens=32, do_sample=True, return_full_audio=False, return_type=ReturnType.TENSORS,
        use_cache=use_cache,
    )  # fmt: skip
    assert type(generated["generated_token_ids"]) is list and len(generated["generated_token_ids"]) == 32


def test_0_11_return_audio_midi_multiple_and_search(audio_generator, prompt):
    generated = audio_generator(prompt, max_new_tokens=32, do_sample=True, return_type=ReturnType.AUDIO)
    assert type(generated["generated_audio_midi"]) is PrettyMIDI
    generated = audio_generator(prompt, max_new_tokens=32, do_sample=True)  # AUDIO is the default
    assert type(generated["generated_audio_midi"]) is PrettyMIDI
    generated_list = audio_generator(
        [prompt] * 2, max_new_tokens=32, do_sample=True, return_full_audio=True, return_type=ReturnType.TENSORS
    )
    assert len(generated_list) == 2 and all(len(g["generated_token_ids"]) == PROMPT_LENGTH + 32 for g in generated_list)
    generated = audio_generator(prompt, max_new_tokens=32, max_prompt_length=10, return_type=ReturnType.TENSORS)
    assert len(generated["generated_token_ids"]) == 10 + 32
    for kwargs in ({}, {"num_beams": 3}, {"do_sample": True, "top_k": 10}, {"do_sample": True, "top_p": 0.5}):
        generated = audio_generator(prompt, max_new_tokens=32, return_type=ReturnType.TENSORS, **kwargs)
        assert len(generated["generated_token_ids"]) == PROMPT_LENGTH + 32


def test_0_11_readme_example_renders_without_fluidsynth(audio_generator, prompt, tmp_path):
    output = audio_generator(
        prompt, max_new_tokens=64, num_latents=1, do_sample=True, top_p=0.95, temperature=1.0, render=True
    )
    (tmp_path / "generated_audio.wav").write_bytes(output["generated_audio_wav"])
    with wave.open(str(tmp_path / "generated_audio.wav")) as f:
        seconds = f.getnframes() / f.getframerate()
    end = output["generated_audio_midi"].get_end_time()
    assert end > 10 and abs(seconds - end - 0.08) < 0.01  # the prompt alone lasts about 13 s


def test_greedy_continuation_equals_generate_for_every_prompt_kind(audio_generator, prompt, tmp_path):
    tokenizer = MidiTokenizer()
    prompt.write(str(tmp_path / "prompt.mid"))
    ids = tokenizer.encode(prompt)[:100]

    def expected(prompt_ids):
        output = audio_generator.model.generate(torch.tensor([prompt_ids]), num_latents=4, max_new_tokens=10)
        return output[0, len(prompt_ids) :].tolist()

    cases = [(ids, ids), (torch.tensor(ids), ids)]
    cases += [(p, tokenizer.encode(prompt)) for p in (str(tmp_path / "prompt.mid"), tmp_path / "prompt.mid", prompt)]
    for p, prompt_ids in cases:
        out = audio_generator(
            p, num_latents=4, max_new_tokens=10, return_type=ReturnType.TENSORS, return_full_audio=False
        )
        assert out["generated_token_ids"] == expected(prompt_ids)
    with pytest.raises(ValueError, match="num_latent"):  # a misspelt argument reaches generate, which says so
        audio_generator(ids, num_latent=4)


def test_outputs_files_and_piano_roll(audio_generator, prompt, tmp_path):
    out = audio_generator(
        prompt, max_new_tokens=40, do_sample=True, output_file=tmp_path / "o.mid", piano_roll_file=tmp_path / "r.png"
    )
    midi = out["generated_audio_midi"]
    assert MidiTokenizer().encode(pretty_midi.PrettyMIDI(str(tmp_path / "o.mid"))) == MidiTokenizer().encode(midi)
    assert Image.open(tmp_path / "r.png").format == "PNG"
    out = audio_generator(prompt, max_new_tokens=8, output_file=tmp_path / "o.wav", return_type=ReturnType.TENSORS)
    with wave.open(str(tmp_path / "o.wav")) as f:
        assert f.getnframes() > 0
    with pytest.raises(ValueError, match="output_file='.*o.ogg'"):
        audio_generator(prompt, max_new_tokens=8, output_file=tmp_path / "o.ogg")
    with pytest.raises(ValueError, match="sf2_path='.*none.sf2' does not exist"):
        audio_generator(prompt, max_new_tokens=8, render=True, sf2_path=str(tmp_path / "none.sf2"))
    with pytest.raises(ValueError, match="max_prompt_length=0"):
        audio_generator(prompt, max_new_tokens=8, max_prompt_length=0)
    # the continuation alone is decoded with the prompt's last velocity (not velocity bin 0)
    ids = [356 + 20, 60, 300, 188]
    kwargs = {"max_new_tokens": 30, "return_full_audio": False, "do_sample": False}
    continuation = audio_generator(ids, return_type=ReturnType.TENSORS, **kwargs)["generated_token_ids"]
    midi = audio_generator(ids, **kwargs)["generated_audio_midi"]
    expected = MidiTokenizer().decode(continuation, initial_velocity_bin=20)
    assert [(n.start, n.pitch, n.velocity) for n in midi.instruments[0].notes] == [
        (n.start, n.pitch, n.velocity) for n in expected.instruments[0].notes
    ]
    assert _last_velocity_bin(ids) == 20 and _last_velocity_bin([60]) == 0


def test_long_prompts_raise_or_truncate_with_a_warning(audio_generator, prompt):
    long_prompt = MidiTokenizer().encode(prompt) * 2  # 508 ids; the model takes 304 + num_latents
    with pytest.raises(ValueError, match="508 event ids is longer than the 308 .* num_latents=4"):
        audio_generator(long_prompt, num_latents=4, max_new_tokens=4)
    with pytest.warns(UserWarning, match=r"dropped its first 200 ids \(\d+\.\d\d s of music\)"):
        out = audio_generator(
            long_prompt, num_latents=4, max_new_tokens=4, truncate_prompt=True, return_type=ReturnType.TENSORS
        )
    assert out["generated_token_ids"][:308] == long_prompt[200:]


def test_unreadable_prompt_file_names_file_and_problem(audio_generator, tmp_path):
    (tmp_path / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02")
    with pytest.raises(MidiFileError, match="broken.mid.*can not be read"):
        audio_generator(str(tmp_path / "broken.mid"), max_new_tokens=4)
    with pytest.raises(FileNotFoundError, match="missing.mid"):
        audio_generator(str(tmp_path / "missing.mid"), max_new_tokens=4)
