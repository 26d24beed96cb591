"""`SymbolicAudioDataModule` on tiny MIDI files made in the test (real `datasets` preprocessing and caching)."""

import pytest
import torch

from perceiver.data.audio import PAD_TOKEN_ID, SymbolicAudioDataModule, encode_midi
from tests.test_audio_midi import write_midi


def write_midi_dir(root, splits=("train", "train", "train", "train"), num_notes: int = 30):
    """MIDI files `<split>/<i>.mid` (or `<i>.midi` directly in `root` for split None)."""
    for i, split in enumerate(splits):
        write_midi(root / split / f"{i}.mid" if split else root / f"{i}.midi", seed=i, num_notes=num_notes)
    return root


def test_split_directories_tokenize_and_chunk(tmp_path):
    source = write_midi_dir(tmp_path / "midi", ("train", "train", "validation", "test"))
    (tmp_path / "midi" / "notes.txt").write_text("not MIDI")
    data = SymbolicAudioDataModule(
        str(source), dataset_dir=str(tmp_path / "ds"), max_seq_len=32, batch_size=4, num_workers=0
    )
    assert (data.vocab_size, data.max_seq_len) == (389, 32)
    files = data.midi_files()
    assert {k: len(v) for k, v in files.items()} == {"train": 2, "valid": 1, "test": 1}
    data.prepare_data()
    data.setup()
    # the token ids of the training files, concatenated and chunked; the remainder is dropped
    stream = sum((encode_midi(f) for f in files["train"]), [])
    chunks = [data.ds_train[i]["input_ids"] for i in range(len(data.ds_train))]
    assert len(chunks) == len(stream) // 32 and sum(chunks, []) == stream[: len(chunks) * 32]
    assert len(data.ds_valid) == len(encode_midi(files["valid"][0])) // 32 and data.ds_test is not None

    batch = next(iter(data.train_dataloader()))
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert batch["input_ids"].shape == (4, 32) and batch["input_ids"].dtype == torch.long
    assert bool(batch["attention_mask"].all()) and torch.equal(batch["labels"], batch["input_ids"])
    assert int(batch["input_ids"].max()) < PAD_TOKEN_ID

    # preprocessing is cached: a second module of the same configuration finds it
    (tmp_path / "ds" / "cache").mkdir()
    again = SymbolicAudioDataModule(str(source), dataset_dir=str(tmp_path / "ds"), max_seq_len=32, num_workers=0)
    assert again.preproc_dir == data.preproc_dir and len(list((tmp_path / "ds" / "preproc").iterdir())) == 1


def test_valid_size_split_by_file_and_random_training_batches(tmp_path):
    source = write_midi_dir(tmp_path / "midi", (None, None, None, None), num_notes=12)
    data = SymbolicAudioDataModule(
        str(source),
        dataset_dir=str(tmp_path / "ds"),
        max_seq_len=16,
        valid_size=1,
        random_train_shift=True,
        random_train_truncation=True,
        random_min_seq_len=4,
        batch_size=2,
        num_workers=0,
    )
    splits = data.load_splits()
    assert (len(splits["train"]), len(splits["valid"])) == (3, 1)
    assert set(splits["train"]["path"]).isdisjoint(splits["valid"]["path"])
    data.setup()
    lengths = set()
    for batch in data.train_dataloader():
        n = batch["input_ids"].shape[1]
        assert 4 <= n <= 16 and batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
        lengths.add(n)
    assert len(lengths) > 1  # random prefix lengths
    assert {b["input_ids"].shape[1] for b in data.val_dataloader()} == {16}  # validation is not truncated


def test_invalid_sources(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SymbolicAudioDataModule(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no training MIDI files"):
        SymbolicAudioDataModule(str(tmp_path / "empty"), dataset_dir=str(tmp_path / "ds")).prepare_data()


class DirectoriesOf011(SymbolicAudioDataModule):
    """A subclass as perceiver-io 0.11 users wrote them: its sources come from `load_source_dataset()`."""

    source_root = None

    def load_source_dataset(self):
        return {"train": self.source_root / "train", "valid": self.source_root / "valid"}


def test_positional_arguments_and_source_hook_of_0_11(tmp_path):
    DirectoriesOf011.source_root = write_midi_dir(tmp_path / "midi", ("train", "train", "valid", "valid"))
    with pytest.warns(DeprecationWarning, match="positional arguments in perceiver-io 0.11's order"):
        # 0.11's order: dataset_dir, max_seq_len, min_seq_len, padding_side, batch_size, num_workers, preproc_workers
        data = DirectoriesOf011(str(tmp_path / "ds"), 32, 8, "right", 1, 0, 1)
    h = data.hparams
    assert (h.source, h.dataset_dir, h.max_seq_len, h.padding_side) == (None, str(tmp_path / "ds"), 32, "right")
    assert h.batch_size == 1
    assert (h.num_workers, h.preproc_workers, h.random_train_truncation, h.random_min_seq_len) == (0, 1, True, 8)
    files = data.midi_files()
    assert [len(files[s]) for s in ("train", "valid")] == [2, 2]
    data.setup()
    assert data.preproc_dir.parent == tmp_path / "ds" / "preproc"
    stream = sum((encode_midi(f) for f in files["train"]), [])
    assert len(data.ds_train) == len(stream) // 32
    lengths = {batch["input_ids"].shape[1] for batch in data.train_dataloader()}
    assert min(lengths) >= 8 and max(lengths) <= 32 and len(lengths) > 1  # min_seq_len: random training lengths
    valid = next(iter(data.val_dataloader()))
    assert valid["input_ids"].shape == (1, 32)
    # keyword arguments and this library's order are unchanged
    by_name = DirectoriesOf011(dataset_dir=str(tmp_path / "ds"), max_seq_len=32, min_seq_len=8, num_workers=0)
    assert by_name.preproc_dir == data.preproc_dir
    with pytest.raises(TypeError, match=r"multiple values for argument\(s\) \['max_seq_len'\]"):
        DirectoriesOf011(str(tmp_path / "ds"), 32, max_seq_len=16)
    with pytest.raises(ValueError, match="SymbolicAudioDataModule needs a source"):
        SymbolicAudioDataModule(str(tmp_path / "ds"), 32)
