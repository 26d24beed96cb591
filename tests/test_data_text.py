"""Text data modules on small local data: real 🤗 datasets loading, real tokenizers (UTF-8 bytes and a WordPiece
tokenizer trained here), the English text of Python's pydoc topics."""

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import PerceiverTokenizer, PreTrainedTokenizerFast

from perceiver.data.text import (
    BookCorpusDataModule,
    BookCorpusOpenDataModule,
    C4DataModule,
    CausalLanguageModelCollator,
    Enwik8DataModule,
    ImdbDataModule,
    Task,
    TextDataModule,
    TextFilesDataModule,
    WikiBookDataModule,
    WikipediaDataModule,
    WikiTextDataModule,
)
from perceiver.data.text.common import CLMDataset, RandomShiftDataset
from tests.conftest import pydoc_text

BYTES = PerceiverTokenizer()
WHITESPACE_IDS = set(BYTES(" \t\n\r\x0b\x0c", add_special_tokens=False)["input_ids"])


def text_lines(num_chars: int = 60000) -> list:
    return [line + "\n" for line in pydoc_text(num_chars).split("\n")]


def write_text_splits(directory: Path, num_chars: int = 60000) -> Path:
    """train.txt and valid.txt with pydoc text (90/10 by lines)."""
    lines = text_lines(num_chars)
    directory.mkdir(parents=True, exist_ok=True)
    cut = int(len(lines) * 0.9)
    (directory / "train.txt").write_text("".join(lines[:cut]))
    (directory / "valid.txt").write_text("".join(lines[cut:]))
    return directory


def paragraphs(num_chars: int = 60000) -> list:
    return [p.strip() for p in pydoc_text(num_chars).split("\n\n") if p.strip()]


def train_wordpiece(path: Path, mask_token: bool = True, vocab_size: int = 400) -> str:
    """A BERT-like WordPiece tokenizer trained on pydoc text, saved to `path`."""
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + (["[MASK]"] if mask_token else [])
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(
        paragraphs(), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special)
    )
    kwargs = dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, **kwargs, **({"mask_token": "[MASK]"} if mask_token else {})
    )
    fast.save_pretrained(path)
    return str(path)


def write_imdb(directory: Path, num_train: int = 120, num_test: int = 40, num_unsup: int = 60) -> dict:
    """A local copy of IMDb in the hub's layout (plain_text/<split>-00000-of-00001.parquet), pydoc paragraphs as
    reviews."""
    texts = paragraphs()
    (directory / "plain_text").mkdir(parents=True, exist_ok=True)
    frames = {}
    start = 0
    for split, n in [("train", num_train), ("test", num_test), ("unsupervised", num_unsup)]:
        labels = [-1] * n if split == "unsupervised" else [(i * 7) % 3 % 2 for i in range(n)]
        frames[split] = pd.DataFrame({"text": texts[start : start + n], "label": labels})
        frames[split].to_parquet(directory / "plain_text" / f"{split}-00000-of-00001.parquet")
        start += n
    return frames


@pytest.fixture(scope="module")
def wordpiece(tmp_path_factory) -> str:
    return train_wordpiece(tmp_path_factory.mktemp("wordpiece"))


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory) -> Path:
    return write_text_splits(tmp_path_factory.mktemp("text"))


def module(cls=TextFilesDataModule, tmp_path=None, **kwargs) -> TextDataModule:
    kwargs = {"max_seq_len": 64, "batch_size": 16, "num_workers": 0, "preproc_workers": 1, **kwargs}
    dm = cls(dataset_dir=str(tmp_path / "datasets"), **kwargs)
    dm.setup()
    return dm


def original_tokens(batch) -> torch.Tensor:
    """The unmasked token ids of a masked language modeling batch."""
    return torch.where(batch["labels"] != -100, batch["labels"], batch["input_ids"])


# ---------- masked language modeling ----------


def test_whole_word_masking_bytes(tmp_path, text_dir):
    dm = module(source=str(text_dir), tmp_path=tmp_path, task="mlm", mask_words=True)
    assert dm.vocab_size == 262 and dm.max_seq_len == 64
    assert all(len(ids) == 64 for ids in list(dm.ds_train["input_ids"]))
    torch.manual_seed(0)
    words = masked_words = replaced = unchanged = 0
    for batch in dm.train_dataloader():
        assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
        assert batch["attention_mask"].all()
        original = original_tokens(batch)
        for ids, labels, inputs in zip(original.tolist(), batch["labels"].tolist(), batch["input_ids"].tolist()):
            # words: runs of non-whitespace bytes; a word's bytes are all masked (labeled) or none are
            run = []
            for i, token in enumerate(ids + [next(iter(WHITESPACE_IDS))]):
                if token in WHITESPACE_IDS:
                    if run:
                        labeled = {labels[j] != -100 for j in run}
                        assert len(labeled) == 1, [BYTES.decode(ids[run[0] : run[-1] + 1])]
                        words += 1
                        if labeled.pop():
                            masked_words += 1
                            replaced += all(inputs[j] == BYTES.mask_token_id for j in run)
                            unchanged += all(inputs[j] == ids[j] for j in run)
                    run = []
                else:
                    run.append(i)
            # whitespace is never masked
            assert all(labels[i] == -100 for i, t in enumerate(ids) if t in WHITESPACE_IDS)
    assert words > 1000
    assert 0.12 < masked_words / words < 0.18, masked_words / words
    assert 0.7 < replaced / masked_words < 0.9, replaced / masked_words
    assert 0.04 < unchanged / masked_words < 0.17, unchanged / masked_words


def test_whole_word_masking_wordpiece(tmp_path, text_dir, wordpiece):
    dm = module(source=str(text_dir), tmp_path=tmp_path, task="mlm", tokenizer=wordpiece, max_seq_len=48)
    assert dm.vocab_size == len(dm.tokenizer) == 400
    torch.manual_seed(0)
    continuations = 0
    for batch in dm.train_dataloader():
        original = original_tokens(batch)
        labeled = batch["labels"] != -100
        for ids, row in zip(original, labeled):
            tokens = dm.tokenizer.convert_ids_to_tokens(ids.tolist())
            for i in range(1, len(tokens)):
                if tokens[i].startswith("##"):
                    # a word piece is masked together with the piece before it
                    assert row[i] == row[i - 1], tokens[max(0, i - 3) : i + 2]
                    continuations += 1
    assert continuations > 500


def test_token_masking(tmp_path, text_dir, wordpiece):
    dm = module(source=str(text_dir), tmp_path=tmp_path, task="mlm", tokenizer=wordpiece, mask_words=False)
    torch.manual_seed(0)
    batches = list(dm.train_dataloader())
    labeled = torch.cat([(b["labels"] != -100).flatten() for b in batches])
    assert 0.13 < labeled.float().mean() < 0.17
    masked = torch.cat([(b["input_ids"] == dm.tokenizer.mask_token_id).flatten() for b in batches])
    assert 0.75 < masked.sum() / labeled.sum() < 0.85
    assert "word_ids" not in batches[0]


def test_deterministic_batches_with_worker_processes(tmp_path, text_dir):
    def first_batches(seed, num_workers):
        dm = module(source=str(text_dir), tmp_path=tmp_path, task="mlm", seed=seed, num_workers=num_workers)
        loader = dm.train_dataloader()
        assert loader.num_workers == num_workers and not loader.pin_memory  # no GPU: nothing to pin for
        torch.manual_seed(1)
        iterator = iter(loader)
        return [next(iterator) for _ in range(3)]

    a, b, c = first_batches(0, 2), first_batches(0, 2), first_batches(1, 2)
    for x, y in zip(a, b):
        for key in x.keys():
            assert torch.equal(x[key], y[key])
    assert not torch.equal(original_tokens(a[0]), original_tokens(c[0]))  # another seed: another order


# ---------- causal language modeling ----------


def test_clm_chunks_and_batches(tmp_path, text_dir):
    dm = module(source=str(text_dir), tmp_path=tmp_path, task="clm", add_eos_token=True, max_seq_len=32)
    assert dm.tokenizer.padding_side == "left"
    # the token stream: each line (line breaks kept) followed by EOS, cut into chunks of max_seq_len
    lines = (text_dir / "train.txt").read_text().splitlines(keepends=True)
    stream = [t for line in lines[:50] for t in BYTES(line, add_special_tokens=False)["input_ids"] + [2]]
    assert dm.ds_train[0]["input_ids"] == stream[:32]
    assert dm.ds_train[1]["input_ids"] == stream[32:64]
    batch = next(iter(dm.val_dataloader()))
    assert batch["input_ids"].shape == (16, 32)
    assert torch.equal(batch["labels"], batch["input_ids"])  # 🤗 convention: the model shifts labels


def test_clm_collator_pads_left():
    collator = CausalLanguageModelCollator(pad_token_id=0, padding_side="left")
    batch = collator([{"input_ids": [7, 8, 9, 10]}, {"input_ids": [11, 12]}])
    assert batch["input_ids"].tolist() == [[7, 8, 9, 10], [0, 0, 11, 12]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [0, 0, 1, 1]]
    assert batch["labels"].tolist() == [[7, 8, 9, 10], [-100, -100, 11, 12]]


def test_clm_random_shift_and_truncation(tmp_path, text_dir):
    dm = module(
        source=str(text_dir),
        tmp_path=tmp_path,
        task="clm",
        max_seq_len=32,
        random_train_shift=True,
        random_train_truncation=True,
        random_min_seq_len=10,
    )
    # 0.11's layout: the split's dataset wraps the randomly shifted one, which wraps the chunks
    assert isinstance(dm.ds_train, CLMDataset) and isinstance(dm.ds_train.dataset, RandomShiftDataset)
    assert not isinstance(dm.ds_valid.dataset, RandomShiftDataset)  # random_valid_shift=False
    chunks = list(dm.ds_train.dataset.dataset["input_ids"])
    assert len(dm.ds_train) == len(chunks) - 1
    torch.manual_seed(0)
    offsets = []
    for i in range(40):
        window = dm.ds_train[i]["input_ids"]
        pair = chunks[i] + chunks[i + 1]
        offset = next(k for k in range(32) if pair[k : k + 32] == window)
        offsets.append(offset)
    assert len(set(offsets)) > 10  # windows start at random offsets
    lengths = set()
    for batch in dm.train_dataloader():
        n = batch["input_ids"].shape[1]
        assert 10 <= n <= 32
        lengths.add(n)
        assert torch.equal(batch["labels"], batch["input_ids"])
    assert len(lengths) > 5
    # validation batches are neither shifted nor truncated
    assert {b["input_ids"].shape[1] for b in dm.val_dataloader()} == {32}


# ---------- classification, IMDb ----------


def test_imdb_classification(tmp_path, wordpiece):
    frames = write_imdb(tmp_path / "imdb")
    dm = module(ImdbDataModule, source=str(tmp_path / "imdb"), tmp_path=tmp_path, tokenizer=wordpiece, valid_size=0.25)
    assert dm.hparams.task == "clf" and dm.tokenizer.padding_side == "right"
    assert dm.num_classes == 2 and dm.id2label == {0: "neg", 1: "pos"}
    assert (len(dm.ds_train), len(dm.ds_valid), len(dm.ds_test)) == (90, 30, 40)
    assert sorted(list(dm.ds_train["label"]) + list(dm.ds_valid["label"])) == sorted(frames["train"]["label"])
    assert list(dm.ds_test["label"]) == frames["test"]["label"].tolist()
    lengths = [len(ids) for ids in list(dm.ds_train["input_ids"])]
    assert max(lengths) == 64 and min(lengths) < 64  # truncated to max_seq_len
    batch = next(iter(dm.val_dataloader()))
    assert batch["labels"].dtype == torch.long and batch["labels"].shape == (16,)
    assert batch["attention_mask"][:, 0].all() and not batch["attention_mask"].all()  # padded on the right
    assert torch.equal(batch["input_ids"] == dm.tokenizer.pad_token_id, batch["attention_mask"] == 0)


def test_imdb_language_modeling_includes_unlabeled_reviews(tmp_path):
    frames = write_imdb(tmp_path / "imdb")
    dm = module(ImdbDataModule, source=str(tmp_path / "imdb"), tmp_path=tmp_path, task="mlm", max_seq_len=16)
    num_tokens = sum(len(text.encode()) for split in ("train", "unsupervised") for text in frames[split]["text"])
    num_chunked = 16 * (len(dm.ds_train) + len(dm.ds_valid))
    # both splits' texts are chunked; at most one chunk's remainder is dropped per split and map batch
    assert num_tokens - 4 * 16 < num_chunked <= num_tokens


def test_generic_files_with_string_labels(tmp_path, wordpiece):
    texts = paragraphs()[:60]
    rows = [{"review": t, "sentiment": ["good", "bad", "meh"][i % 3]} for i, t in enumerate(texts)]
    (tmp_path / "data").mkdir()
    for name, part in [("a", rows[:40]), ("b", rows[40:])]:
        (tmp_path / "data" / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in part))
    dm = module(
        data_files={"train": str(tmp_path / "data" / "a.jsonl"), "valid": str(tmp_path / "data" / "b*.jsonl")},
        tmp_path=tmp_path,
        task="clf",
        tokenizer=wordpiece,
        text_column="review",
        label_column="sentiment",
    )
    assert dm.class_names == ["bad", "good", "meh"]
    assert (len(dm.ds_train), len(dm.ds_valid)) == (40, 20)
    assert list(dm.ds_valid["label"])[:3] == [0, 2, 1]  # rows 40, 41, 42: bad, meh, good
    with pytest.raises(ValueError, match="has no test split"):
        dm.test_dataloader()


# ---------- caching and preprocessing workers ----------


def test_preprocessing_is_cached_per_configuration(tmp_path, monkeypatch):
    text_dir = write_text_splits(tmp_path / "text")
    dm = module(source=str(text_dir), tmp_path=tmp_path, task="mlm")
    assert (dm.preproc_dir / "dataset_dict.json").is_file()

    def fail(self):
        raise AssertionError("preprocessed again")

    monkeypatch.setattr(TextDataModule, "_preprocess", fail)
    again = module(source=str(text_dir), tmp_path=tmp_path, task="mlm", batch_size=4)  # loader settings only
    assert again.preproc_dir == dm.preproc_dir and list(again.ds_train["input_ids"]) == list(dm.ds_train["input_ids"])
    for changed in [dict(max_seq_len=32), dict(mask_words=False), dict(tokenizer=None, seed=1)]:
        other = TextFilesDataModule(source=str(text_dir), dataset_dir=str(tmp_path / "datasets"), max_seq_len=64)
        other_changed = TextFilesDataModule(
            source=str(text_dir), dataset_dir=str(tmp_path / "datasets"), **{"max_seq_len": 64, **changed}
        )
        assert other.preproc_dir == dm.preproc_dir != other_changed.preproc_dir
    # editing the data invalidates the cache, too
    before = dm.preproc_dir
    with open(text_dir / "valid.txt", "a") as f:
        f.write("one more line\n")
    assert dm.preproc_dir != before


def test_task_objects_hold_each_tasks_rules(tmp_path, text_dir):
    """One object per task, chosen once: which options enter the cache key (EOS tokens only for clm, word ids only
    for mlm with whole-word masking, the label column only for clf), the padding side, the batch class."""
    from perceiver.data.text.collator import CausalTextBatch, TextBatch
    from perceiver.data.text.tasks import CausalLanguageModeling, Classification, MaskedLanguageModeling

    options = dict(add_eos_token=True, label_column="y", tokenizer=None)
    cases = [  # task, mask_words, task object, fingerprint parts (add_eos_token, word_ids, label_column)
        ("mlm", True, MaskedLanguageModeling, (False, True, None)),
        ("mlm", False, MaskedLanguageModeling, (False, False, None)),
        ("clm", True, CausalLanguageModeling, (True, False, None)),
        ("clf", True, Classification, (False, False, "y")),
    ]
    for task, mask_words, cls, parts in cases:
        dm = TextFilesDataModule(
            source=str(text_dir), dataset_dir=str(tmp_path), task=Task(task), mask_words=mask_words, **options
        )
        parts = dict(zip(("add_eos_token", "word_ids", "label_column"), parts))
        assert type(dm.text_task) is cls and dm.text_task.fingerprint_parts() == parts
        assert dm.tokenizer.padding_side == ("left" if task == "clm" else "right")
        assert dm.collator().batch_class is (CausalTextBatch if task == "clm" else TextBatch)
        assert dm.text_task.chunk_options(dm.tokenizer) == dict(
            eos_token_id=dm.tokenizer.eos_token_id if task == "clm" else None, with_word_ids=parts["word_ids"]
        )


def test_preprocessing_with_worker_processes(tmp_path):
    source = write_text_splits(tmp_path / "text", num_chars=200000)
    assert len((source / "train.txt").read_text().splitlines()) > 2000  # more than one map batch per process
    dm = module(source=str(source), tmp_path=tmp_path, task="clm", max_seq_len=64, preproc_workers=2)
    single = module(source=str(source), tmp_path=tmp_path / "single", task="clm", max_seq_len=64)
    assert all(len(ids) == 64 for ids in list(dm.ds_train["input_ids"]))
    # processes split the data at other places, so chunk remainders differ, not more
    assert abs(len(dm.ds_train) - len(single.ds_train)) <= 4
    assert dm.ds_train[0]["input_ids"] == single.ds_train[0]["input_ids"]


# ---------- the other data modules, on local copies in their hub layouts ----------


def write_parquet(path: Path, texts, **columns) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": texts, **columns}).to_parquet(path)


@pytest.mark.parametrize(
    "cls,layout,splits",
    [
        (WikiTextDataModule, "wikitext-103-raw-v1/{split}-00000-of-00001.parquet", ("train", "validation", "test")),
        (WikipediaDataModule, "20231101.en/{split}-00000-of-00001.parquet", ("train",)),
        (BookCorpusDataModule, "plain_text/{split}/0000.parquet", ("train",)),
        (BookCorpusOpenDataModule, "data/{split}-00000-of-00001.parquet", ("train",)),
    ],
)
def test_hub_layout_copies(tmp_path, cls, layout, splits):
    texts = paragraphs()
    if cls is not BookCorpusOpenDataModule:
        # a second config beside the module's config must not be read
        write_parquet(tmp_path / "copy" / "other-config" / "train.parquet", ["not this"] * 10)
    for i, split in enumerate(splits):
        write_parquet(tmp_path / "copy" / layout.format(split=split), texts[i * 60 : (i + 1) * 60], title="t")
    dm = module(cls, source=str(tmp_path / "copy"), tmp_path=tmp_path, task="clm", valid_size=0.2, max_seq_len=32)
    stream = "".join(
        dm.tokenizer.decode(ids) for ids in list(dm.ds_train["input_ids"]) + list(dm.ds_valid["input_ids"])
    )
    assert "not this" not in stream
    num_bytes = sum(len(t.encode()) for t in texts[:60])
    if len(splits) == 1:
        assert num_bytes - 2 * 32 < 32 * (len(dm.ds_train) + len(dm.ds_valid)) <= num_bytes
        assert dm.ds_test is None
    else:
        assert num_bytes - 32 < 32 * len(dm.ds_train) <= num_bytes
        assert dm.tokenizer.decode(dm.ds_test[0]["input_ids"]) == texts[120:][0][:32]
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == (16, 32)


def test_wikibook_concatenates_wikipedia_and_bookcorpus(tmp_path, wordpiece):
    texts = paragraphs()
    write_parquet(tmp_path / "wiki" / "20231101.en" / "train-00000-of-00001.parquet", texts[:60], title="t")
    write_parquet(tmp_path / "books" / "plain_text" / "train" / "0000.parquet", texts[60:120])
    args = dict(tokenizer=wordpiece, max_seq_len=32, valid_size=0.2, batch_size=8, num_workers=0, preproc_workers=1)
    dm = WikiBookDataModule(
        wikipedia_source=str(tmp_path / "wiki"),
        bookcorpus_source=str(tmp_path / "books"),
        dataset_dir=str(tmp_path / "datasets"),
        static_masking=True,
        **args,
    )
    dm.setup()
    # each corpus is preprocessed (and cached) by its own data module: the same configuration alone reuses it
    wiki = WikipediaDataModule(source=str(tmp_path / "wiki"), dataset_dir=str(tmp_path / "datasets"), **args)
    books = BookCorpusDataModule(source=str(tmp_path / "books"), dataset_dir=str(tmp_path / "datasets"), **args)
    assert dm.preproc_dirs == [wiki.preproc_dir, books.preproc_dir]
    assert all((d / "dataset_dict.json").is_file() for d in dm.preproc_dirs)
    wiki.setup(), books.setup()
    for split in ("train", "valid"):
        ours = getattr(dm, f"ds_{split}")
        parts = [getattr(wiki, f"ds_{split}"), getattr(books, f"ds_{split}")]
        assert len(ours) == sum(len(p) for p in parts) and all(len(p) > 0 for p in parts)
        assert ours.dataset[len(parts[0])]["input_ids"] == parts[1][0]["input_ids"]  # Bookcorpus after Wikipedia
    assert dm.ds_test is None
    # 0.11's default task and masking (whole words, here static)
    batch = next(iter(dm.val_dataloader()))
    assert batch["input_ids"].shape == (8, 32) and (batch["labels"] != -100).any()
    assert (batch["input_ids"] == dm.tokenizer.mask_token_id).any()
    assert batch["input_ids"].tolist() == next(iter(dm.val_dataloader()))["input_ids"].tolist()  # static masking
    # 0.11's separate directories
    separate = WikiBookDataModule(
        wikipedia_source=str(tmp_path / "wiki"),
        bookcorpus_source=str(tmp_path / "books"),
        dataset_dirs=(str(tmp_path / "w"), str(tmp_path / "b")),
        task="clm",
        **args,
    )
    separate.setup()
    assert [d.parent.parent for d in separate.preproc_dirs] == [tmp_path / "w", tmp_path / "b"]
    assert next(iter(separate.train_dataloader()))["input_ids"].shape == (8, 32)
    with pytest.raises(ValueError, match="supports tasks 'mlm' and 'clm', not 'clf'"):
        WikiBookDataModule(task="clf", tokenizer=wordpiece)
    with pytest.raises(ValueError, match="dataset_dirs=.* must be two directories"):
        WikiBookDataModule(dataset_dirs=["a"], tokenizer=wordpiece)
    with pytest.raises(ValueError, match="source='x': WikiBookDataModule takes wikipedia_source, bookcorpus_source"):
        WikiBookDataModule(source="x", tokenizer=wordpiece)
    # each module's own validation size unless given (the CLI passes what it lists)
    assert [p.hparams.valid_size for p in WikiBookDataModule(tokenizer=wordpiece).parts] == [0.005, 0.001]


def test_enwik8_raw_file(tmp_path):
    lines = text_lines(40000)
    (tmp_path / "enwik8").write_text("".join(lines))  # the raw file has no extension
    dm = module(Enwik8DataModule, source=str(tmp_path / "enwik8"), tmp_path=tmp_path, max_seq_len=32)
    assert dm.hparams.task == "clm"
    n = len([line for line in lines if line])
    train_end, valid_end = int(0.9 * n), int(0.95 * n)
    # split in order, line breaks kept
    assert dm.tokenizer.decode(dm.ds_train[0]["input_ids"]) == "".join(lines)[:32]
    assert dm.tokenizer.decode(dm.ds_valid[0]["input_ids"]) == "".join(lines[train_end:])[:32]
    assert dm.tokenizer.decode(dm.ds_test[0]["input_ids"]) == "".join(lines[valid_end:])[:32]


def test_c4_streaming(tmp_path):
    texts = paragraphs()
    directory = tmp_path / "c4" / "en"
    directory.mkdir(parents=True)
    for name, part in [
        ("c4-train.00000-of-00002.json.gz", texts[:50]),
        ("c4-train.00001-of-00002.json.gz", texts[50:100]),
        ("c4-validation.00000-of-00001.json.gz", texts[100:130]),
    ]:
        with gzip.open(directory / name, "wt") as f:
            f.write("\n".join(json.dumps({"text": t, "timestamp": "2019", "url": "u"}) for t in part))
    dm = C4DataModule(
        source=str(tmp_path / "c4"),
        dataset_dir=str(tmp_path / "datasets"),
        max_seq_len=32,
        batch_size=8,
        num_workers=0,
        shuffle_buffer_size=20,
    )
    dm.prepare_data()
    dm.setup()
    assert not (tmp_path / "datasets" / "preproc").exists()  # nothing preprocessed ahead
    batches = list(dm.train_dataloader())
    train_bytes = sum(len(t.encode()) for t in texts[:100])
    assert train_bytes - 40 * 32 < sum(b["input_ids"].shape[0] for b in batches) * 32 <= train_bytes
    assert all(b["input_ids"].shape[1] == 32 for b in batches)
    valid = next(iter(dm.val_dataloader()))
    assert dm.tokenizer.decode(original_tokens(valid)[0]) == texts[100][:32]


def test_c4_options_of_0_11(tmp_path):
    """0.11's C4 options (its FSDP example's `--data.min_seq_len`, `--data.concat_batch_size`,
    `--data.num_train_workers`, `--data.num_valid_workers`, ...) do what they did there, through this module's."""
    texts = paragraphs()
    directory = tmp_path / "c4" / "en"
    directory.mkdir(parents=True)
    for name, part in [
        ("c4-train.00000-of-00002.json.gz", texts[:50]),
        ("c4-train.00001-of-00002.json.gz", texts[50:100]),
        ("c4-validation.00000-of-00001.json.gz", texts[100:130]),
    ]:
        with gzip.open(directory / name, "wt") as f:
            f.write("\n".join(json.dumps({"text": t, "timestamp": "2019", "url": "u"}) for t in part))
    args = dict(source=str(tmp_path / "c4"), dataset_dir=str(tmp_path / "datasets"), max_seq_len=32, batch_size=4)
    with pytest.warns(DeprecationWarning) as warned:
        dm = C4DataModule(
            task="clm",
            min_seq_len=8,
            concat_batch_size=5,
            shuffle_window_size=20,
            shuffle_window_seed=3,
            num_train_workers=0,
            num_valid_workers=1,
            **args,
        )
    messages = " ".join(str(w.message) for w in warned)
    for old, new in [("min_seq_len", "random_train_truncation=True and random_min_seq_len=8"),
                     ("concat_batch_size", "preproc_batch_size"), ("shuffle_window_size", "shuffle_buffer_size"),
                     ("shuffle_window_seed", "seed")]:  # fmt: skip
        assert f"{old} is deprecated, use {new}" in messages
    h = dm.hparams
    assert (h.random_train_truncation, h.random_min_seq_len, h.preproc_batch_size) == (True, 8, 5)
    assert (h.shuffle_buffer_size, h.seed, h.min_seq_len, h.concat_batch_size) == (20, 3, None, None)
    dm.setup()
    # min_seq_len: training batches of random lengths in [8, 32], validation batches of full length
    train_lengths = {b["input_ids"].shape[1] for b in dm.train_dataloader()}
    assert len(train_lengths) > 1 and min(train_lengths) >= 8 and max(train_lengths) <= 32
    assert {b["input_ids"].shape[1] for b in dm.val_dataloader()} == {32}
    # concat_batch_size: documents concatenated per chunking batch (the validation stream is in order)
    lengths = [len(t.encode()) for t in texts[100:130]]
    expected = sum(max(sum(lengths[i : i + 5]) // 32, 1) for i in range(0, 30, 5))
    assert sum(b["input_ids"].shape[0] for b in dm.val_dataloader()) == expected
    # num_train_workers / num_valid_workers: the loaders' workers
    assert (dm.train_dataloader().num_workers, dm.val_dataloader().num_workers) == (0, 1)
    # rank / world_size (0.11's, default: the trainer's): each process streams its own shard
    second = C4DataModule(rank=1, world_size=2, num_workers=0, **args)
    second.setup()
    streamed = sum(b["attention_mask"].sum().item() for b in second.train_dataloader())
    shard_bytes = sum(len(t.encode()) for t in texts[50:100])
    assert shard_bytes - 40 * 32 < streamed <= shard_bytes
    with pytest.raises(ValueError, match="rank=2 and world_size=2 must both be given, with 0 <= rank < world_size"):
        C4DataModule(rank=2, world_size=2, **args)


# ---------- errors ----------


def test_missing_paths_fail_at_once(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"source='.*missing' does not exist"):
        TextFilesDataModule(source=str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=r"source='./missing/train.txt' does not exist"):
        ImdbDataModule(source="./missing/train.txt")
    with pytest.raises(FileNotFoundError, match=r"data_files\['train'\]: '.*\*.txt' matches no file"):
        TextFilesDataModule(data_files={"train": str(tmp_path / "*.txt")})
    with pytest.raises(FileNotFoundError, match=r"tokenizer='.*tok' does not exist"):
        WikiTextDataModule(tokenizer=str(tmp_path / "tok"))


def test_invalid_arguments_raise_clear_errors(tmp_path, text_dir):
    with pytest.raises(ValueError, match=r"task='lm' must be one of \['mlm', 'clm', 'clf'\]"):
        TextFilesDataModule(source=str(text_dir), task="lm")
    with pytest.raises(ValueError, match="random_train_shift and random_train_truncation apply to task 'clm'"):
        TextFilesDataModule(source=str(text_dir), task="mlm", random_train_shift=True)
    with pytest.raises(ValueError, match=r"random_min_seq_len=100 must be in \[1, max_seq_len=64\]"):
        TextFilesDataModule(
            source=str(text_dir), task="clm", max_seq_len=64, random_train_truncation=True, random_min_seq_len=100
        )
    with pytest.raises(ValueError, match="give exactly one of source and data_files"):
        TextFilesDataModule()
    no_mask = train_wordpiece(tmp_path / "no-mask", mask_token=False)
    with pytest.raises(ValueError, match="task 'mlm' needs a tokenizer with a mask token"):
        TextFilesDataModule(source=str(text_dir), tokenizer=no_mask)
    dm = TextFilesDataModule(source=str(text_dir), task="clf", dataset_dir=str(tmp_path / "datasets"))
    with pytest.raises(ValueError, match=r"train split has no label_column='label', columns are \['text'\]"):
        dm.prepare_data()


def test_0_11_source_sizes_and_train_size(tmp_path, wordpiece):
    """0.11's `source_valid_size` / `source_train_size` (in its saved configs of Wikipedia and BookCorpus) are
    `valid_size` / `train_size`, with a DeprecationWarning; `train_size` keeps that many training examples."""
    texts = paragraphs()
    write_parquet(tmp_path / "wiki" / "20231101.en" / "train-00000-of-00001.parquet", texts[:100], title="t")
    args = dict(tokenizer=wordpiece, task="clf", max_seq_len=32, num_workers=0, preproc_workers=1)
    args.update(source=str(tmp_path / "wiki"), dataset_dir=str(tmp_path / "datasets"), label_column="title")
    with pytest.warns(DeprecationWarning, match=r"source_valid_size=...\) is deprecated, use .*valid_size"):
        old = WikipediaDataModule(source_train_size=30, source_valid_size=20, **args)
    new = WikipediaDataModule(train_size=30, valid_size=20, **args)
    assert old.preproc_dir == new.preproc_dir != WikipediaDataModule(valid_size=20, **args).preproc_dir
    new.setup()
    assert (len(new.ds_train), len(new.ds_valid)) == (30, 20)
    everything = WikipediaDataModule(valid_size=20, train_size=1.0, **args)
    everything.setup()
    assert len(everything.ds_train) == 80
    with pytest.raises(ValueError, match="train_size=0"):
        WikipediaDataModule(train_size=0, **args)
    with pytest.warns(DeprecationWarning, match="BookCorpusDataModule"):
        assert BookCorpusDataModule(source_valid_size=0.02, **args).hparams.valid_size == 0.02
