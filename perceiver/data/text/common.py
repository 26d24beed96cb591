"""The base of the text data modules: loading, tokenization, chunking and caching, collators per task."""

import logging
import os
from itertools import chain
from pathlib import Path
from typing import Dict, List, Literal, Optional, Union

import datasets
import torch
from torch.utils.data import Dataset

from perceiver.data.common import (
    DEFAULT_DATASET_DIR,
    SplitDataModule,
    cached,
    check_source,
    fingerprint,
    load_source,
    source_fingerprint,
    split_off,
)
from perceiver.data.text.collator import (
    CausalLanguageModelCollator,
    ClassificationCollator,
    TokenMaskingCollator,
    WordMaskingCollator,
)
from perceiver.data.text.tokenizer import is_bytes_tokenizer, load_tokenizer, word_ids

logger = logging.getLogger(__name__)

# fast tokenizers in forked map workers would otherwise warn and disable their own parallelism
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

Task = Literal["mlm", "clm", "clf"]
TASKS = ("mlm", "clm", "clf")

# examples per `map` batch; texts of one batch are concatenated before chunking (mlm, clm)
_MAP_BATCH_SIZE = 1000


class TextDataModule(SplitDataModule):
    """Text data for one of three tasks, from a 🤗 hub dataset or local files, tokenized once and cached.

    - `mlm` (masked language modeling): texts are tokenized, concatenated and split into chunks of `max_seq_len`
      tokens; batches `{"input_ids", "attention_mask", "labels"}` with whole words (`mask_words`) or single tokens
      masked (`mask_prob` 15% selected, of which 80% masked, 10% random, 10% unchanged), labels -100 where not masked.
    - `clm` (causal language modeling): texts (each followed by the EOS token if `add_eos_token`) are concatenated
      and split into chunks of `max_seq_len` tokens; batches `{"input_ids", "attention_mask", "labels"}` in 🤗's
      convention (labels are the input ids with -100 at padding; the model shifts them), padded on the left by
      default.
      `random_train_shift` starts each training example at a random offset of the token stream;
      `random_train_truncation` shortens each training batch to a random length in [`random_min_seq_len`,
      `max_seq_len`], keeping the last positions (with Perceiver AR, a random prefix length).
    - `clf` (classification): texts truncated to `max_seq_len` tokens; batches `{"input_ids", "attention_mask",
      "labels"}` with integer class labels.

    Preprocessing runs in `prepare_data` with `preproc_workers` processes (🤗 `datasets.map`) and is saved as Arrow
    files under `dataset_dir`, in a directory named by a hash of everything that affects it; later runs memory-map
    it. Raw downloads are cached in `dataset_dir` too.

    :param source: 🤗 hub id or local path (a downloaded hub snapshot, a directory of text/JSON/parquet/CSV files
        whose names contain the split name, or a single file). Subclasses default to their hub id.
    :param config_name: hub dataset config (for a local snapshot: the sub-directory of that name, if present).
    :param revision: hub dataset revision.
    :param dataset_dir: directory of downloads and preprocessed data.
    :param tokenizer: 🤗 tokenizer name or path, or None / "perceiver-bytes" for the Perceiver UTF-8 bytes tokenizer.
    :param task: "mlm", "clm" or "clf".
    :param max_seq_len: sequence length of the model input (the length of chunks; the truncation length of `clf`).
    :param add_special_tokens: add the tokenizer's special tokens (e.g. [CLS] and [SEP]) to each text.
    :param add_eos_token: (`clm`) end each text with the tokenizer's EOS token.
    :param padding_side: "left" or "right"; default: left for `clm`, right otherwise.
    :param mask_prob: (`mlm`) probability that a token (or word) is masked.
    :param mask_words: (`mlm`) mask whole words (all tokens of a word) instead of single tokens.
    :param random_train_shift: (`clm`) start each training example at a random offset of the text.
    :param random_train_truncation: (`clm`) shorten each training batch to a random length in
        [`random_min_seq_len`, `max_seq_len`] (with Perceiver AR, a random prefix length).
    :param random_min_seq_len: (`clm`) minimum length of `random_train_truncation`.
    :param valid_size: fraction (or number) of training examples held out for validation where the source has no
        validation split.
    :param text_column: name of the text column of the source.
    :param label_column: (`clf`) name of the label column of the source (integers or strings).
    :param batch_size: examples per batch.
    :param num_workers: data loader worker processes.
    :param pin_memory: pin batches in memory (only where a GPU is available).
    :param preproc_workers: processes for preprocessing (default: the number of CPUs).
    :param seed: seed of the validation split and of shuffling.
    """

    hub_source: Optional[str] = None  # hub id of subclasses' default source, for their docs
    label_names: Optional[List[str]] = None  # fixed class names of subclasses with a known label set

    def __init__(
        self,
        source: Optional[str],
        config_name: Optional[str] = None,
        revision: Optional[str] = None,
        dataset_dir: str = DEFAULT_DATASET_DIR,
        tokenizer: Optional[str] = None,
        task: Task = "mlm",
        max_seq_len: int = 512,
        add_special_tokens: bool = False,
        add_eos_token: bool = False,
        padding_side: Optional[Literal["left", "right"]] = None,
        mask_prob: float = 0.15,
        mask_words: bool = True,
        random_train_shift: bool = False,
        random_train_truncation: bool = False,
        random_min_seq_len: int = 16,
        valid_size: Union[int, float] = 0.05,
        text_column: str = "text",
        label_column: str = "label",
        batch_size: int = 64,
        num_workers: int = 2,
        pin_memory: bool = True,
        preproc_workers: Optional[int] = None,
        seed: int = 0,
    ):
        super().__init__()
        # not merged into the model's logged hyperparameters, where names such as `tokenizer` would clash
        self.save_hyperparameters(logger=False)
        if source is not None:
            check_source(source)
        _check_choice("task", task, TASKS)
        _check_choice("padding_side", padding_side, (None, "left", "right"))
        if max_seq_len < 1:
            raise ValueError(f"max_seq_len={max_seq_len} must be at least 1")
        if not 0.0 < mask_prob < 1.0:
            raise ValueError(f"mask_prob={mask_prob} must be in (0, 1)")
        if task != "clm" and (random_train_shift or random_train_truncation):
            raise ValueError(f"random_train_shift and random_train_truncation apply to task 'clm', not {task!r}")
        if random_train_truncation and not 1 <= random_min_seq_len <= max_seq_len:
            raise ValueError(f"random_min_seq_len={random_min_seq_len} must be in [1, max_seq_len={max_seq_len}]")

        self.tokenizer = load_tokenizer(tokenizer)
        self.tokenizer.padding_side = padding_side or ("left" if task == "clm" else "right")
        if task == "mlm" and self.tokenizer.mask_token_id is None:
            raise ValueError(f"task 'mlm' needs a tokenizer with a mask token, tokenizer={tokenizer!r} has none")
        if task == "mlm" and mask_words and not (self.tokenizer.is_fast or is_bytes_tokenizer(self.tokenizer)):
            raise ValueError(
                "mask_words=True needs a fast tokenizer or the UTF-8 bytes tokenizer, "
                f"got {type(self.tokenizer).__name__}"
            )
        if task == "clm" and add_eos_token and self.tokenizer.eos_token_id is None:
            raise ValueError(f"add_eos_token=True, but tokenizer={tokenizer!r} has no EOS token")
        self.ds_train: Optional[Dataset] = None
        self.ds_valid: Optional[Dataset] = None
        self.ds_test: Optional[Dataset] = None
        self._meta: Optional[dict] = None
        # set by the generic files module
        self.data_files: Optional[Dict[str, Union[str, List[str]]]] = None
        self.text_options: Optional[dict] = None

    # ---- properties for linking data and model arguments ----

    @property
    def vocab_size(self) -> int:
        """Number of token ids, including added tokens."""
        return len(self.tokenizer)

    @property
    def max_seq_len(self) -> int:
        return self.hparams.max_seq_len

    @property
    def num_classes(self) -> int:
        """(`clf`) number of classes (preprocesses the data to find them unless the label set is known)."""
        return len(self.class_names)

    @property
    def class_names(self) -> List[str]:
        """(`clf`) class names, index = label id."""
        if self.label_names is not None:
            return list(self.label_names)
        self._require_task("clf", "class_names")
        return self._load_meta()["class_names"]

    @property
    def id2label(self) -> Dict[int, str]:
        return dict(enumerate(self.class_names))

    # ---- preprocessing ----

    @property
    def preproc_dir(self) -> Path:
        """Where the preprocessed dataset of this configuration is saved."""
        h = self.hparams
        key = fingerprint(
            cls=type(self).__name__,
            source=source_fingerprint(h.source, h.revision, self.data_files),
            text_options=self.text_options,
            config_name=h.config_name,
            tokenizer=self._tokenizer_fingerprint(),
            task=h.task,
            max_seq_len=h.max_seq_len,
            add_special_tokens=h.add_special_tokens,
            add_eos_token=h.add_eos_token and h.task == "clm",
            word_ids=h.task == "mlm" and h.mask_words,
            valid_size=h.valid_size,
            text_column=h.text_column,
            label_column=h.label_column if h.task == "clf" else None,
            seed=h.seed,
        )
        return self.dataset_dir / "preproc" / f"{type(self).__name__}-{h.task}-{key}"

    def _tokenizer_fingerprint(self) -> str:
        vocab = sorted(self.tokenizer.get_vocab().items())
        return fingerprint(cls=type(self.tokenizer).__name__, vocab=vocab, special=self.tokenizer.all_special_tokens)

    def load_source(self, **kwargs) -> datasets.DatasetDict:
        """All splits of the source, named train/valid/test (and others such as unsupervised)."""
        h = self.hparams
        return load_source(
            h.source,
            h.config_name,
            h.revision,
            cache_dir=str(self.dataset_dir / "cache"),
            data_files=self.data_files,
            text_options=self.text_options,
            **kwargs,
        )

    def load_splits(self) -> datasets.DatasetDict:
        """The train, valid and (where available) test splits of raw text. Subclasses override this to combine or
        split the source's splits; validation data defaults to `valid_size` of the training data."""
        dataset = self.load_source()
        if "train" not in dataset:
            raise ValueError(f"source={self.hparams.source!r} has no train split, found {sorted(dataset)}")
        splits = {name: dataset[name] for name in ("train", "valid", "test") if name in dataset}
        if "valid" not in splits:
            splits["train"], splits["valid"] = split_off(splits["train"], self.hparams.valid_size, self.hparams.seed)
        return datasets.DatasetDict(splits)

    def prepare_data(self) -> None:
        """Loads, tokenizes and caches the data (once per configuration)."""
        cached(self.preproc_dir, self._preprocess)

    def _preprocess(self) -> datasets.DatasetDict:
        h = self.hparams
        splits = self.load_splits()
        for name, ds in splits.items():
            if h.text_column not in ds.column_names:
                raise ValueError(f"{name} split has no text_column={h.text_column!r}, columns are {ds.column_names}")
            if h.task == "clf" and h.label_column not in ds.column_names:
                raise ValueError(f"{name} split has no label_column={h.label_column!r}, columns are {ds.column_names}")
        if h.task == "clf":
            splits = self._encode_labels(splits)
        num_proc = h.preproc_workers or os.cpu_count()
        fn_kwargs = dict(
            tokenizer=self.tokenizer,
            text_column=h.text_column,
            add_special_tokens=h.add_special_tokens,
        )
        result = datasets.DatasetDict()
        for name, ds in splits.items():
            features = None
            if h.task == "clf":
                fn, fn_kwargs_task = _tokenize_clf, dict(max_seq_len=h.max_seq_len, label_column=h.label_column)
                # keeps the class names with the preprocessed data
                features = datasets.Features(
                    {"input_ids": datasets.List(datasets.Value("int64")), "label": ds.features[h.label_column]}
                )
            else:
                ds = ds.filter(non_empty, input_columns=[h.text_column], desc=f"Removing empty texts ({name})")
                fn_kwargs_task = dict(
                    block_len=h.max_seq_len,
                    eos_token_id=self.tokenizer.eos_token_id if h.task == "clm" and h.add_eos_token else None,
                    with_word_ids=h.task == "mlm" and h.mask_words,
                )
                fn = tokenize_and_chunk
            result[name] = ds.map(
                fn,
                batched=True,
                batch_size=_MAP_BATCH_SIZE,
                fn_kwargs={**fn_kwargs, **fn_kwargs_task},
                remove_columns=ds.column_names,
                features=features,
                num_proc=num_proc if num_proc and num_proc > 1 and len(ds) >= 2 * _MAP_BATCH_SIZE else None,
                desc=f"Tokenizing ({name})",
            )
            if len(result[name]) == 0:
                raise ValueError(f"{name} split of source={h.source!r} holds no text")
        return result

    def _encode_labels(self, splits: datasets.DatasetDict) -> datasets.DatasetDict:
        column = self.hparams.label_column
        feature = splits["train"].features[column]
        if self.label_names is not None:
            names = list(self.label_names)
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

    def _load_meta(self) -> dict:
        if self._meta is None:
            self.prepare_data()
            features = datasets.load_from_disk(str(self.preproc_dir))["train"].features
            self._meta = {"class_names": list(features["label"].names)} if "label" in features else {}
        return self._meta

    # ---- datasets and loaders ----

    def setup(self, stage: Optional[str] = None) -> None:
        if not (self.preproc_dir / "dataset_dict.json").is_file():
            # used without a trainer (which calls prepare_data first)
            self.prepare_data()
        dataset = datasets.load_from_disk(str(self.preproc_dir))
        self.ds_train = dataset["train"]
        self.ds_valid = dataset["valid"]
        self.ds_test = dataset["test"] if "test" in dataset else None
        if self.hparams.task == "clm" and self.hparams.random_train_shift:
            self.ds_train = RandomShiftDataset(self.ds_train)

    def collator(self, train: bool = False):
        """The collator of this task (`train`: with the random truncation of training batches)."""
        h = self.hparams
        if h.task == "mlm":
            cls = WordMaskingCollator if h.mask_words else TokenMaskingCollator
            return cls(self.tokenizer, mask_prob=h.mask_prob)
        if h.task == "clm":
            return CausalLanguageModelCollator(
                self.tokenizer.pad_token_id,
                padding_side=self.tokenizer.padding_side,
                random_truncation=train and h.random_train_truncation,
                random_min_seq_len=h.random_min_seq_len,
            )
        return ClassificationCollator(self.tokenizer)

    def _require_task(self, task: str, name: str) -> None:
        if self.hparams.task != task:
            raise ValueError(f"{name} is defined for task {task!r}, this data module has task={self.hparams.task!r}")


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


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} must be one of {list(choices)}")


def non_empty(text: Optional[str]) -> bool:
    """Whether `text` holds anything."""
    # whitespace-only texts stay: with line-by-line text files they are the blank lines between paragraphs
    return bool(text)


def _tokenize_clf(batch, tokenizer, text_column, add_special_tokens, max_seq_len, label_column):
    encoding = tokenizer(
        batch[text_column],
        add_special_tokens=add_special_tokens,
        truncation=True,
        max_length=max_seq_len,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    return {"input_ids": encoding["input_ids"], "label": batch[label_column]}


def tokenize_and_chunk(batch, tokenizer, text_column, add_special_tokens, block_len, eos_token_id, with_word_ids):
    """Tokenizes the texts of a `map` batch (with word ids, and EOS tokens if given), concatenates and chunks them."""
    encoding = tokenizer(
        batch[text_column],
        add_special_tokens=add_special_tokens,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
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
