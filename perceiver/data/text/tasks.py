"""The three tasks of the text data modules, one object each: which options a task takes, what of them enters the
cache key of the preprocessed data, how its texts are tokenized and how its examples become batches.
`TextDataModule` picks one from its `task` argument (`TEXT_TASKS[task](hparams)`) and asks it, never the task name."""

from itertools import chain
from typing import Callable, Dict, List, Optional, Tuple

import datasets
import torch
from torch.utils.data import Dataset

from perceiver.data.text.collator import (
    CausalLanguageModelCollator,
    CausalTextBatch,
    ClassificationCollator,
    MaskedExamplesCollator,
    RandomTruncateCollator,
    TextBatch,
    TokenMaskingCollator,
    WordMaskingCollator,
)
from perceiver.data.text.tokenizer import is_bytes_tokenizer, word_ids

# a `datasets.map` function, its keyword arguments, and the output features (None: inferred)
Tokenization = Tuple[Callable, dict, Optional[datasets.Features]]


class TextTask:
    """A task of the text data modules; `h` are the data module's hyperparameters (read when asked, so that
    subclasses of the data module may still adjust them after construction).

    The defaults are those of the tasks on a concatenated token stream: empty texts dropped, texts tokenized,
    concatenated and cut into chunks of `max_seq_len`, no random shifts or truncations."""

    name: str
    padding_side: str = "right"  # default padding side
    batch_class: type = TextBatch

    def __init__(self, hparams):
        self.h = hparams

    def check_options(self) -> None:
        """Raises a ValueError for options this task does not take (before the tokenizer is loaded)."""
        h = self.h
        if h.random_train_shift or h.random_train_truncation or h.random_valid_shift or h.random_valid_truncation:
            raise ValueError(
                "random_train_shift and random_train_truncation apply to task 'clm' (as do random_valid_shift and "
                f"random_valid_truncation), not {self.name!r}"
            )

    def check_tokenizer(self, tokenizer) -> None:
        """Raises a ValueError if `tokenizer` lacks what this task needs."""

    def fingerprint_parts(self) -> dict:
        """The task's options that change the preprocessed data (part of its cache key; options of other tasks
        are recorded with their neutral values, so that cache keys do not depend on them)."""
        return dict(add_eos_token=False, word_ids=False, label_column=None)

    def chunk_options(self, tokenizer) -> dict:
        """`tokenize_and_chunk`'s task options: the EOS token id appended to each text (or None), word ids."""
        return dict(eos_token_id=None, with_word_ids=False)

    def prepare_splits(self, splits: datasets.DatasetDict, label_names: Optional[List[str]]) -> datasets.DatasetDict:
        """The raw splits made ready for tokenization (checked, labels encoded)."""
        return datasets.DatasetDict(
            {
                name: ds.filter(non_empty, input_columns=[self.h.text_column], desc=f"Removing empty texts ({name})")
                for name, ds in splits.items()
            }
        )

    def tokenization(self, dataset: datasets.Dataset, tokenizer) -> Tokenization:
        """How the texts of `dataset` are tokenized (besides `tokenizer`, `text_column`, `add_special_tokens`)."""
        return tokenize_and_chunk, dict(block_len=self.h.max_seq_len, **self.chunk_options(tokenizer)), None

    def wrap(self, split: str, dataset: Dataset, tokenizer) -> Dataset:
        """The dataset of a split as the loaders see it (`split`: train, valid or test)."""
        return dataset

    def make_collator(self, tokenizer, train: bool) -> Callable:
        raise NotImplementedError

    def collator(self, tokenizer, train: bool = False) -> Callable:
        """The collator of training (`train`) or of validation and test batches."""
        collator = self.make_collator(tokenizer, train)
        collator.batch_class = self.batch_class
        return collator


class MaskedLanguageModeling(TextTask):
    """`mlm`: chunks with word ids (for whole-word masking); tokens or whole words masked per batch, or once per
    example (`static_masking`)."""

    name = "mlm"

    def check_tokenizer(self, tokenizer) -> None:
        if tokenizer.mask_token_id is None:
            raise ValueError(f"task 'mlm' needs a tokenizer with a mask token, tokenizer={self.h.tokenizer!r} has none")
        if self.h.mask_words and not (tokenizer.is_fast or is_bytes_tokenizer(tokenizer)):
            raise ValueError(
                f"mask_words=True needs a fast tokenizer or the UTF-8 bytes tokenizer, got {type(tokenizer).__name__}"
            )

    def fingerprint_parts(self) -> dict:
        return {**super().fingerprint_parts(), "word_ids": self.h.mask_words}

    def chunk_options(self, tokenizer) -> dict:
        return dict(eos_token_id=None, with_word_ids=self.h.mask_words)

    def wrap(self, split: str, dataset: Dataset, tokenizer) -> Dataset:
        h = self.h
        if not h.static_masking:
            return dataset
        masker = WordMaskingCollator(tokenizer, mask_prob=h.mask_prob)
        return StaticMaskedDataset(dataset, masker, h.seed + ("train", "valid", "test").index(split))

    def make_collator(self, tokenizer, train: bool) -> Callable:
        h = self.h
        if h.static_masking:
            return MaskedExamplesCollator(tokenizer.pad_token_id, tokenizer.padding_side)
        cls = WordMaskingCollator if h.mask_words else TokenMaskingCollator
        return cls(tokenizer, mask_prob=h.mask_prob)


class CausalLanguageModeling(TextTask):
    """`clm`: chunks of texts each ending with EOS (`add_eos_token`), padded on the left by default; random shifts of
    examples and random truncations of batches."""

    name = "clm"
    padding_side = "left"
    batch_class = CausalTextBatch

    def check_options(self) -> None:
        h = self.h
        if (h.random_train_truncation or h.random_valid_truncation) and not 1 <= h.random_min_seq_len <= h.max_seq_len:
            raise ValueError(f"random_min_seq_len={h.random_min_seq_len} must be in [1, max_seq_len={h.max_seq_len}]")

    def check_tokenizer(self, tokenizer) -> None:
        if self.h.add_eos_token and tokenizer.eos_token_id is None:
            raise ValueError(f"add_eos_token=True, but tokenizer={self.h.tokenizer!r} has no EOS token")

    def fingerprint_parts(self) -> dict:
        return {**super().fingerprint_parts(), "add_eos_token": self.h.add_eos_token}

    def chunk_options(self, tokenizer) -> dict:
        return dict(eos_token_id=tokenizer.eos_token_id if self.h.add_eos_token else None, with_word_ids=False)

    def wrap(self, split: str, dataset: Dataset, tokenizer) -> Dataset:
        shift = {"train": self.h.random_train_shift, "valid": self.h.random_valid_shift}.get(split, False)
        return CLMDataset(RandomShiftDataset(dataset) if shift else dataset)

    def make_collator(self, tokenizer, train: bool) -> Callable:
        h = self.h
        if h.random_train_truncation if train else h.random_valid_truncation:
            return RandomTruncateCollator(tokenizer.pad_token_id, tokenizer.padding_side, h.random_min_seq_len)
        return CausalLanguageModelCollator(tokenizer.pad_token_id, tokenizer.padding_side)


class Classification(TextTask):
    """`clf`: each text truncated to `max_seq_len` tokens, with its label (encoded as a `ClassLabel`)."""

    name = "clf"

    def fingerprint_parts(self) -> dict:
        return {**super().fingerprint_parts(), "label_column": self.h.label_column}

    def prepare_splits(self, splits: datasets.DatasetDict, label_names: Optional[List[str]]) -> datasets.DatasetDict:
        column = self.h.label_column
        for name, ds in splits.items():
            if column not in ds.column_names:
                raise ValueError(f"{name} split has no label_column={column!r}, columns are {ds.column_names}")
        feature = splits["train"].features[column]
        if label_names is not None:
            names = list(label_names)
        elif isinstance(feature, datasets.ClassLabel):
            names = list(feature.names)
        else:
            values = sorted(set(chain.from_iterable(ds.unique(column) for ds in splits.values())))
            if all(isinstance(v, int) and v >= 0 for v in values):
                names = [str(i) for i in range(max(values) + 1)]
            elif all(isinstance(v, str) for v in values):
                names = values
            else:
                raise ValueError(f"label_column={column!r} must hold class indices >= 0 or class names, got {values}")
        class_label = datasets.ClassLabel(names=names)
        return datasets.DatasetDict({name: ds.cast_column(column, class_label) for name, ds in splits.items()})

    def tokenization(self, dataset: datasets.Dataset, tokenizer) -> Tokenization:
        h = self.h
        # keeps the class names with the preprocessed data
        features = datasets.Features(
            {"input_ids": datasets.List(datasets.Value("int64")), "label": dataset.features[h.label_column]}
        )
        return _tokenize_clf, dict(max_seq_len=h.max_seq_len, label_column=h.label_column), features

    def make_collator(self, tokenizer, train: bool) -> Callable:
        return ClassificationCollator(tokenizer)


TEXT_TASKS: Dict[str, type] = {
    task.name: task for task in (MaskedLanguageModeling, CausalLanguageModeling, Classification)
}


# ---------------------------------------------------------------- tokenization


def non_empty(text: Optional[str]) -> bool:
    """Whether `text` holds anything."""
    # whitespace-only texts stay: with line-by-line text files they are the blank lines between paragraphs
    return bool(text)


# token ids only (the collators build masks), without warnings about sequence lengths (chunking follows)
_TOKEN_IDS_ONLY = dict(return_attention_mask=False, return_token_type_ids=False, verbose=False)


def _tokenize_clf(batch, tokenizer, text_column, add_special_tokens, max_seq_len, label_column):
    encoding = tokenizer(
        batch[text_column],
        add_special_tokens=add_special_tokens,
        truncation=True,
        max_length=max_seq_len,
        **_TOKEN_IDS_ONLY,
    )
    return {"input_ids": encoding["input_ids"], "label": batch[label_column]}


def tokenize_and_chunk(batch, tokenizer, text_column, add_special_tokens, block_len, eos_token_id, with_word_ids):
    """Tokenizes the texts of a `map` batch (with word ids, and EOS tokens if given), concatenates and chunks them."""
    encoding = tokenizer(batch[text_column], add_special_tokens=add_special_tokens, **_TOKEN_IDS_ONLY)
    columns = {"input_ids": encoding["input_ids"]}
    if with_word_ids:
        columns["word_ids"] = word_ids(tokenizer, encoding)
    if eos_token_id is not None:
        columns["input_ids"] = [ids + [eos_token_id] for ids in columns["input_ids"]]
    return chunk(columns, block_len)


def chunk(columns: Dict[str, List[List[int]]], block_len: int) -> Dict[str, List[List[int]]]:
    """Concatenates the sequences of each column and splits them into blocks of `block_len`; the remainder is
    dropped unless there is no full block."""
    concatenated = {name: list(chain.from_iterable(sequences)) for name, sequences in columns.items()}
    total = len(concatenated["input_ids"])
    if total >= block_len:
        total = total // block_len * block_len
    return {name: [seq[i : i + block_len] for i in range(0, total, block_len)] for name, seq in concatenated.items()}


# ---------------------------------------------------------------- datasets of the loaders


class RandomShiftDataset(Dataset):
    """Training examples of a chunked token stream, each starting at a random offset: example i is a window of the
    chunk length taken from chunks i and i + 1, so that chunk boundaries differ from epoch to epoch."""

    def __init__(self, dataset: datasets.Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return max(len(self.dataset) - 1, 1)

    def __getitem__(self, index: int) -> dict:
        if len(self.dataset) == 1:
            return self.dataset[0]
        tokens = self.dataset[index]["input_ids"]
        following = self.dataset[index + 1]["input_ids"]
        shift = int(torch.randint(len(tokens), ()))
        return {"input_ids": (tokens + following)[shift : shift + len(tokens)]}


class CLMDataset(Dataset):
    """The examples of a causal language modeling split, as they are (labels are made by the collator): the outer
    dataset of the split as perceiver-io 0.11 laid it out, so that `ds_train.dataset` is the chunked (and maybe
    randomly shifted) data."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return self.dataset[index]

    def __getitems__(self, indices: List[int]) -> list:
        if hasattr(self.dataset, "__getitems__"):
            return self.dataset.__getitems__(indices)
        return [self.dataset[i] for i in indices]


class StaticMaskedDataset(Dataset):
    """Examples of `dataset` masked by `masker` (a `WordMaskingCollator`) once: the same for each access, drawn from
    a generator seeded with `seed` and the example's index."""

    def __init__(self, dataset: datasets.Dataset, masker: WordMaskingCollator, seed: int):
        self.dataset = dataset
        self.masker = masker
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((self.seed << 32) + index)
            batch = self.masker([self.dataset[index]])
        return {"input_ids": batch["input_ids"][0].tolist(), "labels": batch["labels"][0].tolist()}
