"""The base of the text data modules: loading, tokenization, chunking and caching, collators per task."""

import logging
import os
import warnings
from enum import StrEnum
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Tuple, Union

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
from perceiver.data.text.collator import RandomTruncateCollator  # noqa: F401 (0.11's import path)
from perceiver.data.text.tasks import (  # noqa: F401 (re-exported: their import paths before tasks.py)
    TEXT_TASKS,
    CLMDataset,
    RandomShiftDataset,
    StaticMaskedDataset,
    TextTask,
    chunk,
    non_empty,
    tokenize_and_chunk,
)
from perceiver.data.text.tokenizer import load_tokenizer

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


def sizes_0_11(
    owner: str, valid_size: Union[int, float], source_train_size: Any, source_valid_size: Any
) -> Dict[str, Any]:
    """`valid_size` and `train_size` of a data module that perceiver-io 0.11 configured with `source_valid_size` and
    `source_train_size` (still accepted, e.g. from its saved configs, with a DeprecationWarning). The data module
    records them with `use_sizes` after its base is initialized."""
    sizes: Dict[str, Any] = {"valid_size": valid_size}
    for old, new, value in [
        ("source_valid_size", "valid_size", source_valid_size),
        ("source_train_size", "train_size", source_train_size),
    ]:
        if value is not None:
            warnings.warn(f"{owner}({old}=...) is deprecated, use {owner}({new}=...)", DeprecationWarning, stacklevel=3)
            sizes[new] = value
    return sizes


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
    :param train_size: fraction (or number) of the training examples that are used (after `valid_size` is held out;
        drawn with `seed`); default: all.

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
        train_size: Optional[Union[int, float]] = None,
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
        if static_masking and not mask_words:
            # 0.11's wording
            raise ValueError("static_masking=true is only supported for mask_words=true")
        if preproc_batch_size < 1:
            raise ValueError(f"preproc_batch_size={preproc_batch_size} must be at least 1")
        if valid_batch_size is not None and valid_batch_size < 1:
            raise ValueError(f"valid_batch_size={valid_batch_size} must be at least 1")
        if train_size is not None and not (0 < train_size <= 1 if isinstance(train_size, float) else train_size >= 1):
            raise ValueError(f"train_size={train_size} must be a fraction in (0, 1] or a number >= 1")
        self.text_task: TextTask = TEXT_TASKS[task](self.hparams)  # everything that depends on the task
        self.text_task.check_options()

        self.tokenizer = load_tokenizer(tokenizer)
        self.tokenizer.padding_side = padding_side or self.text_task.padding_side
        self.text_task.check_tokenizer(self.tokenizer)
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
            valid_size=h.valid_size,
            text_column=h.text_column,
            seed=h.seed,
            **({} if h.get("train_size") is None else {"train_size": h.train_size}),
            **self.text_task.fingerprint_parts(),
        )
        return self.dataset_dir / "preproc" / f"{type(self).__name__}-{h.task}-{key}"

    def use_sizes(self, sizes: Dict[str, Any]) -> None:
        """Records `sizes` (from `sizes_0_11`) as hyperparameters instead of 0.11's names, which Lightning took from
        the subclass's arguments, so that the data and a data module rebuilt from a checkpoint use them."""
        self.hparams.update(sizes)
        for name in ("source_train_size", "source_valid_size"):
            self.hparams.pop(name, None)

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
        train_size = self.hparams.get("train_size")
        if train_size is not None:
            num_train = train_size if isinstance(train_size, int) else round(train_size * len(splits["train"]))
            if num_train < len(splits["train"]):
                splits["train"] = splits["train"].shuffle(seed=self.hparams.seed).select(range(max(num_train, 1)))
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
        splits = self.text_task.prepare_splits(splits, self.label_names)
        num_proc = h.preproc_workers or os.cpu_count()
        result = datasets.DatasetDict()
        for name, ds in splits.items():
            fn, fn_kwargs, features = self.text_task.tokenization(ds, self.tokenizer)
            result[name] = ds.map(
                fn,
                batched=True,
                batch_size=h.preproc_batch_size,
                fn_kwargs=dict(
                    tokenizer=self.tokenizer,
                    text_column=h.text_column,
                    add_special_tokens=h.add_special_tokens,
                    **fn_kwargs,
                ),
                remove_columns=ds.column_names,
                features=features,
                num_proc=num_proc if num_proc and num_proc > 1 and len(ds) >= 2 * h.preproc_batch_size else None,
                desc=f"Tokenizing ({name})",
            )
            if len(result[name]) == 0:
                raise ValueError(f"{name} split of source={h.source!r} holds no text")
        return result

    def _load_meta(self) -> dict:
        if self._meta is None:
            self.prepare_data()
            features = datasets.load_from_disk(str(self.preproc_dir))["train"].features
            self._meta = {"class_names": list(features["label"].names)} if "label" in features else {}
        return self._meta

    # ---- datasets and loaders ----

    def load_preprocessed(self) -> datasets.DatasetDict:
        """The preprocessed splits (preprocessed first where a trainer has not called `prepare_data`)."""
        if not (self.preproc_dir / "dataset_dict.json").is_file():
            self.prepare_data()
        return datasets.load_from_disk(str(self.preproc_dir))

    def setup(self, stage: Optional[str] = None) -> None:
        dataset = self.load_preprocessed()
        self.ds_train = dataset["train"]
        self.ds_valid = dataset["valid"]
        self.ds_test = dataset["test"] if "test" in dataset else None
        self.ds_train = self.text_task.wrap("train", self.ds_train, self.tokenizer)
        self.ds_valid = self.text_task.wrap("valid", self.ds_valid, self.tokenizer)
        if self.ds_test is not None:
            self.ds_test = self.text_task.wrap("test", self.ds_test, self.tokenizer)

    @property
    def random_shift(self) -> bool:
        """Whether training or validation examples start at random offsets (`clm`)."""
        return self.hparams.random_train_shift or self.hparams.random_valid_shift

    def collator(self, train: bool = False):
        """The collator of this task (`train`: of training batches, else of validation and test batches)."""
        return self.text_task.collator(self.tokenizer, train)

    def _require_task(self, task: str, name: str) -> None:
        if self.hparams.task != task:
            raise ValueError(f"{name} is defined for task {task!r}, this data module has task={self.hparams.task!r}")


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
