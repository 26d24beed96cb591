"""`python -m perceiver.scripts.audio.symbolic fit` on tiny MIDI files, the checkpoint converted into a 🤗 model, and
the `symbolic-audio-generation` pipeline generating MIDI with it."""

import pretty_midi
import pytest
import torch
import yaml
from transformers import pipeline

from perceiver.data.audio import encode_midi
from perceiver.model.audio import symbolic
from tests.test_audio_data import write_midi_dir
from tests.test_audio_midi import make_midi, notes
from tests.test_scripts_text import TINY_TRAINER, metrics, run_script, write_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny symbolic audio model trained for 3 steps by the script and converted into a 🤗 model directory."""
    tmp_path = tmp_path_factory.mktemp("symbolic")
    source = write_midi_dir(tmp_path / "midi", ("train", "train", "train", "valid"), num_notes=30)
    config = {
        "model": {"max_latents": 8, "num_channels": 32, "num_heads": 2, "num_self_attention_layers": 1},
        "data": {
            "class_path": "perceiver.data.audio.SymbolicAudioDataModule",
            "init_args": {
                "source": str(source),
                "max_seq_len": 32,
                "random_train_shift": True,
                "random_train_truncation": True,
                "random_min_seq_len": 12,
                "batch_size": 4,
                "num_workers": 0,
                "dataset_dir": str(tmp_path / "datasets"),
            },
        },
        "trainer": {"max_steps": 3, **TINY_TRAINER},
    }
    config_file = write_config(tmp_path / "symbolic.yaml", config)
    run_script("audio.symbolic", "fit", "--config", config_file, "--lr_scheduler=ConstantWithWarmupLR", cwd=tmp_path)
    run_dir = tmp_path / "logs" / "symbolic" / "version_0"
    best = next((run_dir / "checkpoints").glob("epoch=*-val_loss=*.ckpt"))
    symbolic.convert_checkpoint(tmp_path / "hf", best)
    return tmp_path, run_dir, best


@pytest.mark.slow
def test_script_trains_and_checkpoint_converts(trained):
    tmp_path, run_dir, best = trained
    hparams = yaml.safe_load((run_dir / "hparams.yaml").read_text())
    assert (hparams["vocab_size"], hparams["max_seq_len"]) == (389, 32)  # linked from the data module
    rows = metrics(run_dir)
    assert any(r["val_loss"] for r in rows) and [int(r["step"]) for r in rows if r["train_loss"]] == [0, 1, 2]

    model = symbolic.PerceiverSymbolicAudioModel.from_pretrained(tmp_path / "hf").eval()
    lit_model = symbolic.LitSymbolicAudioModel.load_checkpoint(best).eval()
    input_ids = torch.randint(0, 389, (1, 20))
    with torch.no_grad():
        torch.testing.assert_close(
            model(input_ids=input_ids).logits[:, -8:], lit_model(input_ids, 12), atol=1e-5, rtol=0
        )


@pytest.mark.slow
def test_pipeline_generates_midi(trained, tmp_path):
    model_dir = trained[0] / "hf"
    generator = pipeline("symbolic-audio-generation", model=str(model_dir))
    assert isinstance(generator, symbolic.SymbolicAudioPipeline)
    prompt = make_midi(seed=7, num_notes=6)

    midi = generator(prompt, num_latents=4, max_new_tokens=40, do_sample=True, top_k=10, output_file=tmp_path / "o.mid")
    midi = midi["generated_audio_midi"]
    assert isinstance(midi, pretty_midi.PrettyMIDI) and len(midi.instruments) == 1
    assert notes(pretty_midi.PrettyMIDI(str(tmp_path / "o.mid"))) == notes(midi)
    # the result starts with the prompt's notes
    prompt_notes = [(n.pitch, n.start) for n in prompt.instruments[0].notes]
    assert {(n.pitch, n.start) for n in midi.instruments[0].notes} >= set(prompt_notes)

    # greedy decoding: the continuation is the model's generate
    prompt_ids = encode_midi(prompt)
    expected = generator.model.generate(torch.tensor([prompt_ids]), num_latents=4, max_new_tokens=20, do_sample=False)
    tensors = symbolic.ReturnType.TENSORS
    continuation = generator(prompt_ids, num_latents=4, max_new_tokens=20, return_full_audio=False, return_type=tensors)
    assert continuation["generated_token_ids"] == expected[0, len(prompt_ids) :].tolist()


def test_script_fails_at_once_on_missing_midi_directory(tmp_path, capsys):
    from perceiver.scripts.audio.symbolic import main

    with pytest.raises(SystemExit) as exit_info:
        main(["fit", f"--data.source={tmp_path / 'missing'}", f"--data.dataset_dir={tmp_path}"])
    assert exit_info.value.code == 2
    assert "data.source=" in capsys.readouterr().err
