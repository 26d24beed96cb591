"""`MaestroV3DataModule` and `GiantMidiPianoDataModule` on tiny fake corpora laid out as the corpora ship (MIDI
synthesized in the test), `perceiver.scripts.audio.preproc`, and 0.11's sam training command lines."""

import json
import shlex
import zipfile
from pathlib import Path

import pretty_midi
import pytest
import torch

from perceiver.data.audio import GiantMidiPianoDataModule, MaestroV3DataModule, encode_midi
from tests.test_audio_midi import write_midi

ROOT = Path(__file__).resolve().parents[1]
MAESTRO_SPLITS = ["train", "train", "train", "validation", "test"]


def fake_maestro(root: Path, corrupt: bool = True, long_pause: bool = False) -> Path:
    """`maestro-v3.0.0/` with year directories and the columnar `maestro-v3.0.0.json` (as the corpus ships)."""
    corpus = root / "maestro-v3.0.0"
    names = {}
    for i in range(len(MAESTRO_SPLITS)):
        names[str(i)] = f"{2004 + i % 2}/MIDI-Unprocessed_{i:02d}_R1_2004.midi"
        write_midi(corpus / names[str(i)], seed=i, num_notes=60)
    splits = dict(enumerate(MAESTRO_SPLITS))
    if corrupt:  # a truncated file in the training split
        names["5"], splits[5] = "2004/truncated.midi", "train"
        (corpus / names["5"]).write_bytes((corpus / names["0"]).read_bytes()[:50])
    if long_pause:  # two notes an hour apart: 360 time-shift ids
        names["6"], splits[6] = "2005/pause.midi", "train"
        midi = pretty_midi.PrettyMIDI()
        piano = pretty_midi.Instrument(0)
        piano.notes = [pretty_midi.Note(80, 60, 0.0, 0.5), pretty_midi.Note(80, 60, 3600.0, 3600.5)]
        midi.instruments.append(piano)
        midi.write(str(corpus / names["6"]))
    metadata = {
        "canonical_composer": {k: "Composer" for k in names},
        "split": {k: splits[int(k)] for k in names},
        "midi_filename": names,
    }
    (corpus / "maestro-v3.0.0.json").write_text(json.dumps(metadata))
    return corpus


def zip_dir(directory: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as z:
        for path in sorted(directory.rglob("*")):
            z.write(path, path.relative_to(directory.parent))
    return target


def test_maestro_splits_skipped_files_and_min_seq_len(tmp_path):
    corpus = fake_maestro(tmp_path / "copy", long_pause=True)
    data = MaestroV3DataModule(
        64, min_seq_len=16, source=str(corpus), dataset_dir=str(tmp_path / "ds"), max_tokens=300, batch_size=4,
        num_workers=0,
    )  # fmt: skip
    files = data.midi_files()
    assert {k: len(v) for k, v in files.items()} == {"train": 5, "valid": 1, "test": 1}
    with pytest.warns(UserWarning) as caught:
        data.prepare_data()
    messages = [str(w.message) for w in caught]
    assert any("skipping" in m and "truncated.midi" in m and "can not be read" in m for m in messages)
    assert any("skipping" in m and "pause.midi" in m and "max_tokens=300" in m for m in messages)
    assert "skipped 2 of 5 train MIDI files" in messages
    data.setup()
    stream = sum((encode_midi(f) for f in files["train"] if "Unprocessed" in f), [])
    assert len(data.ds_train) == len(stream) // 64 - 1  # random shifts: windows over consecutive chunks
    assert len(data.ds_valid) == len(encode_midi(files["valid"][0])) // 64 and data.ds_test is not None
    lengths = set()
    for batch in data.train_dataloader():
        assert 16 <= batch["input_ids"].shape[1] <= 64 and int(batch["input_ids"].max()) < 388
        lengths.add(batch["input_ids"].shape[1])
    assert len(lengths) > 1
    assert {b["input_ids"].shape[1] for b in data.val_dataloader()} == {64}
    with pytest.raises(ValueError, match="min_seq_len=64"):
        MaestroV3DataModule(64, min_seq_len=64, source=str(corpus))
    with pytest.raises(FileNotFoundError, match="source='.*missing'"):
        MaestroV3DataModule(64, source=str(tmp_path / "missing"))


def test_maestro_zip_and_download(tmp_path):
    corpus = fake_maestro(tmp_path / "copy", corrupt=False)
    archive = zip_dir(corpus, tmp_path / "maestro-v3.0.0-midi.zip")
    from_zip = MaestroV3DataModule(32, source=str(archive), dataset_dir=str(tmp_path / "a"), num_workers=0)
    downloaded = MaestroV3DataModule(32, dataset_uri=archive.as_uri(), dataset_dir=str(tmp_path / "b"), num_workers=0)
    for data in (from_zip, downloaded):
        data.prepare_data()
        data.setup()
        assert [Path(f).name for f in data.midi_files()["valid"]] == ["MIDI-Unprocessed_03_R1_2004.midi"]
    assert from_zip.ds_valid["input_ids"] == downloaded.ds_valid["input_ids"]
    assert MaestroV3DataModule(32).dataset_dir == Path(".cache/maestro-v3-midi")  # 0.11's default


def test_giantmidi_as_0_11_ships_it_and_as_the_corpus_ships_it(tmp_path):
    for i, split in enumerate(["train", "train", "valid"]):
        write_midi(tmp_path / "giantmidi" / split / f"Composer, Piece {i}, id{i}.mid", seed=i, num_notes=30)
    archive = zip_dir(tmp_path / "giantmidi", tmp_path / "giantmidi-piano.zip")
    data = GiantMidiPianoDataModule(32, source=str(archive), dataset_dir=str(tmp_path / "ds"), num_workers=0)
    assert {k: len(v) for k, v in data.midi_files().items()} == {"train": 2, "valid": 1}
    for i in range(5):
        write_midi(tmp_path / "corpus" / "midis" / f"Composer, Piece {i}, id{i}.mid", seed=i, num_notes=30)
    flat = GiantMidiPianoDataModule(
        32, source=str(tmp_path / "corpus"), dataset_dir=str(tmp_path / "ds2"), valid_size=0.2, num_workers=0
    )
    splits = flat.load_splits()
    assert (len(splits["train"]), len(splits["valid"])) == (4, 1)
    assert GiantMidiPianoDataModule(32).dataset_dir == Path(".cache/giantmidi-piano")


def test_preproc_script_skips_unreadable_files_with_a_count(tmp_path, capsys):
    from perceiver.scripts.audio.preproc import main

    corpus = fake_maestro(tmp_path / "copy")
    data = main(["maestro-v3", "--max_seq_len=32", f"--source={corpus}", f"--dataset_dir={tmp_path}/ds"])
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if "skipping" in line] == [
        line for line in err if "truncated.midi" in line and "can not be read" in line
    ] and len([line for line in err if "skipping" in line]) == 1
    assert "warning: skipped 1 of 4 train MIDI files" in err
    assert (data.preproc_dir / "dataset_dict.json").is_file()


def command_line(path: Path) -> list:
    """The arguments of a `python -m perceiver.scripts.audio.symbolic ...` command line in a shell script."""
    words = shlex.split(path.read_text().replace("\\\n", " "))
    assert words[:3] == ["python", "-m", "perceiver.scripts.audio.symbolic"]
    return words[3:]


@pytest.mark.slow
@pytest.mark.parametrize("corpus", ["maestrov3", "giantmidi"])
def test_0_11_sam_command_lines_parse_and_train(corpus, tmp_path, monkeypatch):
    from perceiver.scripts.audio.symbolic import main

    args = command_line(ROOT / "examples" / "training" / "sam" / corpus / "train.sh")
    if corpus == "maestrov3":
        source = fake_maestro(tmp_path / "copy", corrupt=False)
    else:
        for i, split in enumerate(["train", "train", "valid"]):
            write_midi(tmp_path / "giantmidi" / split / f"{i}.mid", seed=i, num_notes=60)
        source = tmp_path / "giantmidi"
    monkeypatch.chdir(tmp_path)
    # 0.11's command line as it is, then a tiny model and data on one CPU for one step
    tiny = [
        "--model.num_channels=16", "--model.num_self_attention_layers=1", "--model.num_heads=2",
        "--model.max_latents=8", "--data.max_seq_len=32", f"--data.source={source}", "--data.batch_size=2",
        "--data.num_workers=0", "--data.dataset_dir=ds", "--trainer.accelerator=cpu", "--trainer.devices=1",
        "--trainer.max_steps=1", "--trainer.limit_val_batches=1", "--trainer.val_check_interval=1",
        "--trainer.accumulate_grad_batches=1", "--trainer.enable_progress_bar=false",
    ]  # fmt: skip
    if corpus == "giantmidi":
        tiny.append("--data.min_seq_len=12")
    assert args[0] == "fit"
    cli = main([*args, *tiny])
    assert cli.trainer.global_step == 1
    model = cli.model.backend_model
    assert (model.config.vocab_size, model.config.max_seq_len, model.config.residual_dropout) == (389, 32, 0.1)
    assert model.config.output_norm and not model.config.output_bias and not model.config.abs_pos_emb  # 0.11
    scheduler = cli.trainer.lr_scheduler_configs[0].scheduler
    assert type(scheduler).__name__ == "CosineWithWarmupLR" and scheduler.warmup_steps == 200
    optimizer = cli.trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"]  # 0.11's AdamW, fused kernel
    assert (tmp_path / "logs" / "sam").is_dir()


def test_download_and_extract_utils_of_0_11(tmp_path):
    """`perceiver.data.audio.utils.download_file` / `extract_file` (0.11's names), over http from a local server."""
    import functools
    import http.server
    import threading

    from perceiver.data.audio.utils import download_file, extract_file

    served = tmp_path / "served"
    write_midi(served / "a.mid", seed=0, num_notes=10)
    with zipfile.ZipFile(served / "corpus.zip", "w") as z:
        z.write(served / "a.mid", "corpus/2004/a.mid")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        download_file(f"{url}/corpus.zip", tmp_path / "down" / "corpus.zip")
        assert (tmp_path / "down" / "corpus.zip").read_bytes() == (served / "corpus.zip").read_bytes()
        with pytest.raises(FileNotFoundError, match="nothing to download at .*/missing.zip \\(HTTP 404\\)"):
            download_file(f"{url}/missing.zip", tmp_path / "down" / "missing.zip")
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(p.name for p in (tmp_path / "down").iterdir()) == ["corpus.zip"]  # nothing partial is left
    download_file((served / "a.mid").as_uri(), tmp_path / "local.mid")
    assert (tmp_path / "local.mid").read_bytes() == (served / "a.mid").read_bytes()
    with pytest.raises(FileNotFoundError):
        download_file((served / "missing.mid").as_uri(), tmp_path / "missing.mid")
    with pytest.raises(ValueError, match="must be an http\\(s\\) or file URI"):
        download_file("ftp://host/x.zip", tmp_path / "x.zip")

    extract_file(tmp_path / "down" / "corpus.zip", tmp_path / "extracted")
    assert encode_midi(tmp_path / "extracted" / "corpus" / "2004" / "a.mid") == encode_midi(served / "a.mid")
    with pytest.raises(ValueError, match="is not a zip file"):
        extract_file(served / "a.mid", tmp_path / "x")
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as z:
        z.writestr("../outside.txt", "no")
    with pytest.raises(ValueError, match="names a path outside the target directory"):
        extract_file(tmp_path / "evil.zip", tmp_path / "y")
    assert not (tmp_path / "outside.txt").exists()
