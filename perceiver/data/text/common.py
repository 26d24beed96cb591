"""The base of the text data modules: loading, tokenization, chunking and caching, collators per task."""

import logging
import os
import warnings
from enum import StrEnum
from itertools import chain
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Union

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
    CausalTextBatch,
    ClassificationCollator,
    MaskedExamplesCollator,
    RandomTruncateCollator,
    TextBatch,
    TokenMaskingCollator,
    WordMaskingCollator,
)
from perceiver.data.text.tokenizer import is_bytes_tokenizer, load_tokenizer, word_ids

logger = logging.getLogger(__name__)

# fast tokenizers in forked map workers would otherwise warn and disable their own parallelism
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TaskName = Literal["mlm", "clm", "clf"]
TASKS = ("mlm", "clm", "clf")


class Task(StrEnum):
    """The tasks of the text data modules as perceiver-io 0.11's enum (`Task.mlm`); the plain strings "mlm", "clm"
    and "clf" work everywhere too (members equal their strings)."""

    mlm = "mlm"  # masked language modeling
    clm = "clm"  # causal language modeling
    clf = "clf"  # classification


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
    :param static_masking: (`mlm`, with `mask_words`) mask each example once, the same in every epoch, instead of
        anew in each batch.
    :param random_valid_shift: (`clm`) `random_train_shift` for validation data.
    :param random_valid_truncation: (`clm`) `random_train_truncation` for validation batches.
    :param preproc_batch_size: texts per preprocessing batch (texts of a batch are concatenated before chunking).
    :param valid_batch_size: examples per validation and test batch (default: `batch_size`).

    Batches are dicts; unpacked (`labels, input_ids, pad_mask = batch`) they are perceiver-io 0.11's batch tuples.
    Subclasses may implement 0.11's hook `load_source_dataset()` (a `DatasetDict` with train and valid splits of raw
    text) instead of giving a `source`.
    """

    hub_source: Optional[str] = None  # hub id of subclasses' default source, for their docs
    label_names: Optional[List[str]] = None  # fixed class names of subclasses with a known label set

    def __init__(
        self,
        source: Optional[str] = None,
        config_name: Optional[str] = None,
        revision: Optional[str] = None,
        dataset_dir: str = DEFAULT_DATASET_DIR,
        tokenizer: Optional[str] = None,
        task: TaskName = "mlm",
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
        static_masking: bool = False,
        random_valid_shift: bool = False,
        random_valid_truncation: bool = False,
        preproc_batch_size: int = _MAP_BATCH_SIZE,
        valid_batch_size: Optional[int] = None,
    ):
        super().__init__()
        if isinstance(task, Task):
            task = task.value  # hyperparameters hold plain strings
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
        random_options = random_train_shift or random_train_truncation or random_valid_shift or random_valid_truncation
        if task != "clm" and random_options:
            raise ValueError(
                "random_train_shift and random_train_truncation apply to task 'clm' (as do random_valid_shift and "
                f"random_valid_truncation), not {task!r}"
            )
        if static_masking and not mask_words:
            # 0.11's wording
            raise ValueError("static_masking=true is only supported for mask_words=true")
        if preproc_batch_size < 1:
            raise ValueError(f"preproc_batch_size={preproc_batch_size} must be at least 1")
        if valid_batch_size is not None and valid_batch_size < 1:
            raise ValueError(f"valid_batch_size={valid_batch_size} must be at least 1")
        if (random_train_truncation or random_valid_truncation) and not 1 <= random_min_seq_len <= max_seq_len:
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
        has_source = h.source is not None or self.data_files is not None
        key = fingerprint(
            cls=type(self).__name__,
            source=source_fingerprint(h.source, h.revision, self.data_files) if has_source else None,
            # a subclass's own arguments, which its `load_source_dataset` may use
            subclass_args=None if has_source else sorted((k, str(v)) for k, v in h.items()),
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
        dataset = self.load_source_dataset()
        dataset = datasets.DatasetDict({_split_alias(name): ds for name, ds in dataset.items()})
        if "train" not in dataset:
            raise ValueError(f"source={self.hparams.source!r} has no train split, found {sorted(dataset)}")
        splits = {name: dataset[name] for name in ("train", "valid", "test") if name in dataset}
        if "valid" not in splits:
            splits["train"], splits["valid"] = split_off(splits["train"], self.hparams.valid_size, self.hparams.seed)
        return datasets.DatasetDict(splits)

    def load_source_dataset(self) -> datasets.DatasetDict:
        """The source's splits of raw text (perceiver-io 0.11's hook; default: `load_source()`)."""
        if self.hparams.source is None and self.data_files is None:
            raise ValueError(f"{type(self).__name__} needs a source (or an implementation of load_source_dataset)")
        return self.load_source()

    def _train_valid_split(self, dataset: datasets.Dataset, train_size: int, valid_size: int) -> datasets.DatasetDict:
        """`train_size` and `valid_size` examples of `dataset` (shuffled with `seed`) as train and valid splits."""
        if train_size + valid_size > len(dataset):
            raise ValueError(f"train_size + valid_size = {train_size + valid_size} exceed the {len(dataset)} examples")
        shuffled = dataset.shuffle(seed=self.hparams.seed)
        return datasets.DatasetDict(
            train=shuffled.select(range(train_size)),
            valid=shuffled.select(range(train_size, train_size + valid_size)),
        )

    def text_preprocessor(self) -> "TextPreprocessor":
        """perceiver-io 0.11's inference preprocessing with this data module's tokenizer and `max_seq_len`."""
        return TextPreprocessor(self.tokenizer, self.hparams.max_seq_len, self.hparams.add_special_tokens)

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
                batch_size=h.preproc_batch_size,
                fn_kwargs={**fn_kwargs, **fn_kwargs_task},
                remove_columns=ds.column_names,
                features=features,
                num_proc=num_proc if num_proc and num_proc > 1 and len(ds) >= 2 * h.preproc_batch_size else None,
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
        h = self.hparams
        if h.task == "clm" and h.random_train_shift:
            self.ds_train = RandomShiftDataset(self.ds_train)
        if h.task == "clm" and h.random_valid_shift:
            self.ds_valid = RandomShiftDataset(self.ds_valid)
        if h.task == "mlm" and h.static_masking:
            masker = WordMaskingCollator(self.tokenizer, mask_prob=h.mask_prob)
            self.ds_train = StaticMaskedDataset(self.ds_train, masker, h.seed)
            self.ds_valid = StaticMaskedDataset(self.ds_valid, masker, h.seed + 1)
            if self.ds_test is not None:
                self.ds_test = StaticMaskedDataset(self.ds_test, masker, h.seed + 2)

    @property
    def random_shift(self) -> bool:
        """Whether training or validation examples start at random offsets (`clm`)."""
        return self.hparams.random_train_shift or self.hparams.random_valid_shift

    def collator(self, train: bool = False):
        """The collator of this task (`train`: of training batches, else of validation and test batches)."""
        h = self.hparams
        if h.task == "mlm":
            if h.static_masking:
                collator = MaskedExamplesCollator(self.tokenizer.pad_token_id, self.tokenizer.padding_side)
            else:
                cls = WordMaskingCollator if h.mask_words else TokenMaskingCollator
                collator = cls(self.tokenizer, mask_prob=h.mask_prob)
        elif h.task == "clm":
            if h.random_train_truncation if train else h.random_valid_truncation:
                collator = RandomTruncateCollator(
                    self.tokenizer.pad_token_id, self.tokenizer.padding_side, h.random_min_seq_len
                )
            else:
                collator = CausalLanguageModelCollator(self.tokenizer.pad_token_id, self.tokenizer.padding_side)
        else:
            collator = ClassificationCollator(self.tokenizer)
        collator.batch_class = CausalTextBatch if h.task == "clm" else TextBatch
        return collator

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


class TextPreprocessor:
    """Texts to model inputs for inference (perceiver-io 0.11's API): `preprocess_batch(texts)` gives padded and
    truncated `(input_ids, pad_mask)` (`pad_mask` True at padding).

    Deprecated: call the tokenizer (`tokenizer(texts, padding=True, truncation=True, return_tensors="pt")`).

    :param tokenizer: a tokenizer, or its name or path (see `load_tokenizer`).
    """

    def __init__(self, tokenizer, max_seq_len: int, add_special_tokens: bool = False):
        warnings.warn(
            "TextPreprocessor is deprecated, call the tokenizer instead "
            "(perceiver.data.text.load_tokenizer(name)(texts, padding=True, truncation=True, return_tensors='pt'))",
            DeprecationWarning,
            stacklevel=2,
        )
        self.tokenizer = load_tokenizer(tokenizer) if tokenizer is None or isinstance(tokenizer, str) else tokenizer
        self.max_seq_len = max_seq_len
        self.add_special_tokens = add_special_tokens

    def preprocess(self, text: str) -> Tuple[torch.Tensor, torch.Tensor]:
        input_ids, pad_mask = self.preprocess_batch([text])
        return input_ids[0], pad_mask[0]

    def preprocess_batch(self, text_batch: List[str]) -> Tuple[torch.Tensor, torch.Tensor]:
        encoding = self.tokenizer(
            list(text_batch),
            padding=True,
            truncation=True,
            max_length=self.max_seq_len,
            add_special_tokens=self.add_special_tokens,
            return_token_type_ids=False,
            return_attention_mask=True,
            return_tensors="pt",
        )
        return encoding["input_ids"], encoding["attention_mask"] == 0


def _split_alias(name: str) -> str:
    return {"validation": "valid", "val": "valid", "dev": "valid"}.get(str(name), str(name))


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
