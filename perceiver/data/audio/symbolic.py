"""`SymbolicAudioDataModule`: MIDI files tokenized into event tokens and chunked for Perceiver AR training."""

import functools
import os
import re
import warnings
from pathlib import Path
from typing import Dict, List, Literal, Optional, Union

import datasets
from torch.utils.data import Dataset

from perceiver.data.common import (
    DEFAULT_DATASET_DIR,
    SPLIT_ALIASES,
    SplitDataModule,
    cached,
    check_source,
    fingerprint,
    source_fingerprint,
    split_off,
)
from perceiver.data.text.collator import CausalLanguageModelCollator
from perceiver.data.text.tasks import RandomShiftDataset, chunk
from perceiver.processing.midi import DEFAULT_MAX_TOKENS, ENCODINGS, Encoding, MidiTokenizer, encode_files

MIDI_EXTENSIONS = (".mid", ".midi")

# perceiver-io 0.11's positional arguments of SymbolicAudioDataModule, in its order
POSITIONAL_0_11 = (
    "dataset_dir",
    "max_seq_len",
    "min_seq_len",
    "padding_side",
    "batch_size",
    "num_workers",
    "preproc_workers",
    "pin_memory",
)


def accepts_0_11_positional_args(init):
    """Lets `SymbolicAudioDataModule.__init__` also take 0.11's positional arguments (`dataset_dir, max_seq_len,
    min_seq_len, ...`), recognized by an integer second argument (here the second is `dataset_dir`)."""

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        if len(args) >= 2 and isinstance(args[1], int) and not isinstance(args[1], bool):
            if len(args) > len(POSITIONAL_0_11):
                raise TypeError(f"at most {len(POSITIONAL_0_11)} positional arguments in 0.11's order, got {len(args)}")
            given = dict(zip(POSITIONAL_0_11, args))
            twice = sorted(given.keys() & kwargs.keys())
            if twice:
                raise TypeError(f"got multiple values for argument(s) {twice}")
            warnings.warn(
                "positional arguments in perceiver-io 0.11's order (dataset_dir, max_seq_len, min_seq_len, ...) are "
                f"deprecated, pass them by name: {', '.join(f'{k}={v!r}' for k, v in given.items())}",
                DeprecationWarning,
                stacklevel=2,
            )
            args, kwargs = (), {**given, **kwargs}
        init(self, *args, **kwargs)

    return wrapper


class SymbolicAudioDataModule(SplitDataModule):
    """MIDI files of a local directory, tokenized into event tokens (`MidiTokenizer`, vocabulary of 389), for causal
    (Perceiver AR) training, like the text data modules' `clm` task: the token ids of all files of a split are
    concatenated and split into chunks of `max_seq_len`; batches are `{"input_ids", "attention_mask", "labels"}`
    (labels are the input ids with -100 at padding, the model shifts them), padded on `padding_side`.

    Files are assigned to splits by file: a file whose path below `source` has a split name as a directory or name
    part (`train/`, `valid/`, `validation/`, `test/`, `..._test.mid`, ...) belongs to that split, other files are
    training files; without validation files, `valid_size` (a fraction or a number) of the training files is held
    out. Tokenization runs once per configuration (🤗 `datasets.map`, `preproc_workers` processes) and is cached as
    Arrow files under `dataset_dir`; editing the files invalidates the cache.

    :param source: local directory of `.mid`/`.midi` files (searched recursively). None for subclasses that implement
        perceiver-io 0.11's hook `load_source_dataset()` (the directories of the train and valid files).
    :param dataset_dir: directory of the tokenized (cached) data.
    :param max_seq_len: chunk length, the model's maximum sequence length.
    :param padding_side: "left" (default, where Perceiver AR's latents are) or "right".
    :param random_train_shift: start each training example at a random offset of the token stream.
    :param random_train_truncation: shorten each training batch to a random length in [`random_min_seq_len`,
        `max_seq_len`] (with Perceiver AR, a random prefix length).
    :param min_seq_len: 0.11's name for the same: random training lengths in [`min_seq_len`, `max_seq_len`]
        (`0 < min_seq_len < max_seq_len`); sets `random_train_truncation` and `random_min_seq_len`.
    :param max_tokens: files that encode into more ids (a corrupt file, a very long pause) are skipped with a
        warning naming them, as are files that can not be read; None: no limit.
    :param encoding: "0.11" (default) or "corrected" (see `perceiver.processing.midi`).
    :param random_min_seq_len: minimum length of `random_train_truncation`.
    :param valid_size: fraction (or number) of the training files held out for validation where there are no
        validation files.
    :param batch_size: examples per batch.
    :param num_workers: data loader worker processes.
    :param pin_memory: pin batches in memory (only where a GPU is available).
    :param preproc_workers: processes for tokenization (default: the number of CPUs).
    :param seed: seed of the validation split and of shuffling.

    perceiver-io 0.11's positional order (`dataset_dir, max_seq_len, min_seq_len, padding_side, batch_size,
    num_workers, preproc_workers, pin_memory`) is accepted too, with a DeprecationWarning.
    """

    @accepts_0_11_positional_args
    def __init__(
        self,
        source: Optional[str] = None,
        dataset_dir: str = DEFAULT_DATASET_DIR,
        max_seq_len: int = 1024,
        padding_side: Literal["left", "right"] = "left",
        random_train_shift: bool = False,
        random_train_truncation: bool = False,
        random_min_seq_len: int = 16,
        valid_size: Union[int, float] = 0.05,
        batch_size: int = 16,
        num_workers: int = 2,
        pin_memory: bool = True,
        preproc_workers: Optional[int] = None,
        seed: int = 0,
        min_seq_len: Optional[int] = None,
        max_tokens: Optional[int] = DEFAULT_MAX_TOKENS,
        encoding: Encoding = "0.11",
    ):
        super().__init__()
        if min_seq_len is not None:
            if not 0 < min_seq_len < max_seq_len:
                raise ValueError(f"min_seq_len={min_seq_len} must be in [1, max_seq_len={max_seq_len}) (0.11's rule)")
            random_train_truncation, random_min_seq_len = True, min_seq_len
        self.save_hyperparameters(logger=False)
        self.hparams.random_train_truncation = random_train_truncation
        self.hparams.random_min_seq_len = random_min_seq_len
        self._check_source()
        if max_seq_len < 1:
            raise ValueError(f"max_seq_len={max_seq_len} must be at least 1")
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side={padding_side!r} must be one of ['left', 'right']")
        if random_train_truncation and not 1 <= random_min_seq_len <= max_seq_len:
            raise ValueError(f"random_min_seq_len={random_min_seq_len} must be in [1, max_seq_len={max_seq_len}]")
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding={encoding!r} must be one of {list(ENCODINGS)}")
        self.tokenizer = MidiTokenizer(encoding=encoding, max_tokens=max_tokens)
        self.ds_train: Optional[Dataset] = None
        self.ds_valid: Optional[Dataset] = None
        self.ds_test: Optional[Dataset] = None

    def _check_source(self) -> None:
        source = self.hparams.source
        if source is None and self._has_source_hook():
            return
        if source is None:
            raise ValueError(f"{type(self).__name__} needs a source (or an implementation of load_source_dataset)")
        check_source(source)
        if not os.path.isdir(os.path.expanduser(source)):
            raise NotADirectoryError(f"source={source!r} must be a directory of MIDI files")

    @property
    def vocab_size(self) -> int:
        """Number of token ids (389), linked to the model's `vocab_size`."""
        return self.tokenizer.vocab_size

    @property
    def max_seq_len(self) -> int:
        return self.hparams.max_seq_len

    @property
    def source_dir(self) -> Path:
        return Path(os.path.expanduser(self.hparams.source))

    def source_origin(self) -> str:
        """What identifies the source data in the cache key of `preproc_dir` (a fingerprint of its files)."""
        if self.hparams.source is None:
            return {split: source_fingerprint(str(d)) for split, d in sorted(self._hook_dirs().items())}
        return source_fingerprint(str(self.source_dir))

    def load_source_dataset(self) -> Dict[str, Path]:
        """perceiver-io 0.11's hook for subclasses without a `source`: the directories of the "train" and "valid"
        (and optionally "test") MIDI files."""
        raise NotImplementedError("load_source_dataset must return a dict with keys 'train' and 'valid'")

    def _has_source_hook(self) -> bool:
        return type(self).load_source_dataset is not SymbolicAudioDataModule.load_source_dataset

    def _hook_dirs(self) -> Dict[str, Path]:
        dirs = {SPLIT_ALIASES.get(str(k), str(k)): Path(v) for k, v in self.load_source_dataset().items()}
        if "train" not in dirs or "valid" not in dirs:
            raise ValueError(f"load_source_dataset must return directories of 'train' and 'valid', got {sorted(dirs)}")
        for split, directory in dirs.items():
            if not directory.is_dir():
                raise NotADirectoryError(f"load_source_dataset's {split} directory {str(directory)!r} does not exist")
        return dirs

    @property
    def preproc_dir(self) -> Path:
        """Where the tokenized dataset of this configuration is saved."""
        h = self.hparams
        key = fingerprint(
            cls=type(self).__name__,
            source=self.source_origin(),
            vocab_size=self.vocab_size,
            encoding=h.encoding,
            max_tokens=h.max_tokens,
            max_seq_len=h.max_seq_len,
            valid_size=h.valid_size,
            seed=h.seed,
        )
        return self.dataset_dir / "preproc" / f"{type(self).__name__}-{key}"

    def midi_files(self) -> Dict[str, List[str]]:
        """The MIDI files of each split found in `source` (train, and valid and test where present)."""
        if self.hparams.source is None:
            files = {split: midi_files_below(d) for split, d in self._hook_dirs().items()}
            if not files["train"]:
                raise ValueError(f"{self._source_name()} holds no training MIDI files (*.mid, *.midi)")
            return files
        root = self.source_dir
        files: Dict[str, List[str]] = {}
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if path.suffix.lower() in MIDI_EXTENSIONS and path.is_file() and not _hidden(relative):
                files.setdefault(_split_of(relative), []).append(str(path))
        if not files.get("train"):
            raise ValueError(f"source={self.hparams.source!r} holds no training MIDI files (*.mid, *.midi)")
        return files

    def load_splits(self) -> datasets.DatasetDict:
        """Datasets of file paths (column `path`) per split, validation files split off the training files with
        `valid_size` where there are none."""
        files = self.midi_files()
        splits = {name: datasets.Dataset.from_dict({"path": paths}) for name, paths in files.items()}
        if "valid" not in splits:
            if len(splits["train"]) < 2:
                raise ValueError(f"source={self.hparams.source!r}: at least 2 MIDI files are needed to split off valid")
            splits["train"], splits["valid"] = split_off(splits["train"], self.hparams.valid_size, self.hparams.seed)
        return datasets.DatasetDict(splits)

    def prepare_data(self) -> None:
        """Tokenizes and caches the MIDI files (once per configuration)."""
        cached(self.preproc_dir, self._preprocess)

    def _preprocess(self) -> datasets.DatasetDict:
        h = self.hparams
        num_workers = h.preproc_workers or os.cpu_count() or 1
        result = datasets.DatasetDict()
        for name, ds in self.load_splits().items():
            files = list(ds["path"])
            encoded, skipped = encode_files(
                files,
                encoding=h.encoding,
                max_tokens=h.max_tokens,
                num_workers=num_workers if len(files) >= 50 else 1,
            )
            for path, problem in skipped:
                warnings.warn(f"skipping {path}: {problem}", UserWarning, stacklevel=2)
            if skipped:
                warnings.warn(f"skipped {len(skipped)} of {len(files)} {name} MIDI files", UserWarning, stacklevel=2)
            chunks = chunk({"input_ids": [ids for _, ids in encoded]}, h.max_seq_len)
            features = datasets.Features({"input_ids": datasets.List(datasets.Value("int64"))})
            result[name] = datasets.Dataset.from_dict(chunks, features=features)
            if len(result[name]) == 0:
                raise ValueError(f"{name} MIDI files of {self._source_name()} hold no notes")
        return result

    def _source_name(self) -> str:
        if self.hparams.source is None:
            return f"{type(self).__name__}.load_source_dataset()"
        return f"source={self.hparams.source!r}"

    def setup(self, stage: Optional[str] = None) -> None:
        if not (self.preproc_dir / "dataset_dict.json").is_file():
            self.prepare_data()  # used without a trainer (which calls prepare_data first)
        dataset = datasets.load_from_disk(str(self.preproc_dir))
        self.ds_train = dataset["train"]
        self.ds_valid = dataset["valid"]
        self.ds_test = dataset["test"] if "test" in dataset else None
        if self.hparams.random_train_shift:
            self.ds_train = RandomShiftDataset(self.ds_train)

    def collator(self, train: bool = False) -> CausalLanguageModelCollator:
        """The batch collator (`train`: with the random truncation of training batches)."""
        h = self.hparams
        return CausalLanguageModelCollator(
            self.tokenizer.pad_token_id,
            padding_side=h.padding_side,
            random_truncation=train and h.random_train_truncation,
            random_min_seq_len=h.random_min_seq_len,
        )


def midi_files_below(root: Path) -> List[str]:
    """The MIDI files below `root` (recursively, hidden ones left out), sorted."""
    return sorted(
        str(p)
        for p in root.rglob("*")
        if p.suffix.lower() in MIDI_EXTENSIONS and p.is_file() and not _hidden(p.relative_to(root))
    )


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _split_of(relative: Path) -> str:
    # the first path token that names a split (train/valid/test), e.g. "validation/a.mid", "b_test.midi"
    for token in re.split(r"[-_./\\]", str(relative.with_suffix("")).lower()):
        if SPLIT_ALIASES.get(token) in ("train", "valid", "test"):
            return SPLIT_ALIASES[token]
    return "train"
