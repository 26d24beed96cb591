"""Shared by the data modules: where data comes from (a 🤗 hub id or local files), how splits are named, and where
preprocessed data is cached."""

import codecs
import contextlib
import glob
import hashlib
import itertools
import json
import logging
import os
import random
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

import datasets
import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, default_collate

from perceiver.common.checkpoint import read_lightning_checkpoint

logger = logging.getLogger(__name__)

DEFAULT_DATASET_DIR = os.path.join("~", ".cache", "perceiver-io", "datasets")

# split names found in hub datasets and local file names, mapped to the names the data modules use
SPLIT_ALIASES = {
    "train": "train",
    "validation": "valid",
    "valid": "valid",
    "val": "valid",
    "dev": "valid",
    "test": "test",
    "unsupervised": "unsupervised",
}

# builders for local files, by extension (compressed files are read through their inner extension)
_TEXT_BUILDERS = {".txt": "text", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
_IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_COMPRESSION_EXTENSIONS = {".gz", ".bz2", ".xz", ".zst"}


def is_local(source: str) -> bool:
    """Whether `source` names local files (an existing path, or one written as a path) rather than a hub id."""
    path = os.path.expanduser(source)
    if os.path.exists(path):
        return True
    # hub ids are "name" or "owner/name"; anything else that looks like a path is a local path that is missing
    return (
        os.path.isabs(path)
        or source.startswith(("./", "../", "~"))
        or source.count("/") > 1
        or Path(source).suffix.lower() in {*_TEXT_BUILDERS, *_COMPRESSION_EXTENSIONS}
    )


def check_source(source: str, name: str = "source") -> None:
    """Raises a FileNotFoundError naming `name` if `source` is a local path that does not exist."""
    if not isinstance(source, str) or not source:
        raise ValueError(f"{name} must be a 🤗 hub id or a local path, got {source!r}")
    if is_local(source) and not os.path.exists(os.path.expanduser(source)):
        raise FileNotFoundError(
            f"{name}={source!r} does not exist (expected a 🤗 hub id, or a local file or directory)"
        )


def load_source(
    source: Optional[str] = None,
    config_name: Optional[str] = None,
    revision: Optional[str] = None,
    cache_dir: Optional[str] = None,
    streaming: bool = False,
    data_files: Optional[Dict[str, Union[str, List[str]]]] = None,
    text_options: Optional[Dict[str, Any]] = None,
) -> Union[datasets.DatasetDict, datasets.IterableDatasetDict]:
    """Loads all splits of `source` (or of `data_files`) with split names normalized to train/valid/test/....

    `source` is a 🤗 hub id (with optional `config_name` and `revision`), a local directory (a downloaded hub
    snapshot, an image folder, or text/JSON/parquet/CSV files whose names or parent directories contain the split
    name; files without a split name are training data), or a single local file (training data). `data_files` maps
    split names to local files or glob patterns instead. Local text files are read line by line, keeping line
    breaks; `text_options` (e.g. `sample_by="document"`) go to 🤗's text builder.
    """
    if data_files is not None:
        builder, data_files = _explicit_data_files(data_files)
    elif source is None:
        raise ValueError("either source or data_files must be given")
    elif not is_local(source):
        dataset = datasets.load_dataset(
            source, config_name, revision=revision, cache_dir=cache_dir, streaming=streaming
        )
        return type(dataset)({_split_name(split): ds for split, ds in dataset.items()})
    else:
        check_source(source)
        builder, data_files = _local_data_files(Path(os.path.expanduser(source)), config_name)
    if builder == "text":
        check_text_files([f for fs in data_files.values() for f in ([fs] if isinstance(fs, str) else fs)])
    kwargs = {"keep_linebreaks": True, **(text_options or {})} if builder == "text" else {}
    dataset = datasets.load_dataset(builder, data_files=data_files, cache_dir=cache_dir, streaming=streaming, **kwargs)
    return type(dataset)({_split_name(split): ds for split, ds in dataset.items()})


def check_text_files(files: List[str]) -> None:
    """Raises a ValueError naming the file if a local (uncompressed) text file is empty or not UTF-8."""
    for file in files:
        path = Path(os.path.expanduser(file))
        if path.suffix.lower() in _COMPRESSION_EXTENSIONS or not path.is_file():
            continue
        if path.stat().st_size == 0:
            raise ValueError(f"text file {str(path)!r} is empty")
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as e:
                    raise ValueError(
                        f"text file {str(path)!r} is not UTF-8 text (invalid byte at offset {offset + e.start})"
                    ) from None
                offset += len(chunk)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise ValueError(
                    f"text file {str(path)!r} is not UTF-8 text (truncated character at its end)"
                ) from None


def local_text_files(source: str, config_name: Optional[str] = None) -> List[str]:
    """The local text files that `source` names (none for hub ids and other kinds of data)."""
    if not is_local(source) or not os.path.exists(os.path.expanduser(source)):
        return []
    try:
        builder, data_files = _local_data_files(Path(os.path.expanduser(source)), config_name)
    except (FileNotFoundError, ValueError):
        return []
    return [f for fs in data_files.values() for f in fs] if builder == "text" else []


def check_data_files(data_files: Dict[str, Union[str, List[str]]]) -> Dict[str, List[str]]:
    """The files matched by each split's files or glob patterns; raises a FileNotFoundError for patterns that match
    nothing."""
    if not isinstance(data_files, dict) or not data_files:
        raise ValueError(f"data_files must map split names to files or glob patterns, got {data_files!r}")
    result = {}
    for split, patterns in data_files.items():
        files = []
        for pattern in [patterns] if isinstance(patterns, str) else patterns:
            matched = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
            if not matched:
                raise FileNotFoundError(f"data_files[{split!r}]: {pattern!r} matches no file")
            files += matched
        result[split] = files
    return result


def _explicit_data_files(data_files):
    files = check_data_files(data_files)
    kinds = {_file_kind(Path(f)) or "text" for fs in files.values() for f in fs}
    if len(kinds) > 1:
        raise ValueError(f"data_files mixes data file kinds {sorted(kinds)}; use one kind")
    return kinds.pop(), files


def _split_name(split: str) -> str:
    return SPLIT_ALIASES.get(str(split).lower(), str(split))


def _file_kind(path: Path) -> Optional[str]:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION_EXTENSIONS:
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix in _IMAGE_EXTENSIONS:
        return "imagefolder"
    return _TEXT_BUILDERS.get(suffix)


def _local_data_files(path: Path, config_name: Optional[str]):
    if path.is_file():
        # a single file of any name (e.g. the raw `enwik8` file) is training data, read as text unless its
        # extension says otherwise
        return _file_kind(path) or "text", {"train": [str(path)]}
    root = path / config_name if config_name and (path / config_name).is_dir() else path
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and not _hidden(p.relative_to(root)) and _file_kind(p)]
    if not files:
        raise FileNotFoundError(
            f"source={str(path)!r} holds no data files (text, JSON, parquet, CSV or images) under {str(root)!r}"
        )
    kinds = {_file_kind(p) for p in files}
    if len(kinds) > 1:
        raise ValueError(f"source={str(path)!r} mixes data file kinds {sorted(kinds)}; use one kind per directory")
    data_files: Dict[str, list] = {}
    for p in files:
        data_files.setdefault(_split_of(p.relative_to(root)), []).append(str(p))
    return kinds.pop(), data_files


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _split_of(relative: Path) -> str:
    # the first path token that names a split, e.g. "plain_text/test-00000-of-00001.parquet", "train/cat/1.png",
    # "en/c4-validation.00000-of-00008.json.gz", "valid.txt"
    for token in re.split(r"[-_./\\]", str(relative).lower()):
        if token in SPLIT_ALIASES:
            return token
    return "train"


def fingerprint(**parts: Any) -> str:
    """A short hash of `parts` (JSON-serializable) naming a cache directory."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def source_fingerprint(
    source: Optional[str], revision: Optional[str] = None, data_files: Optional[Dict[str, Any]] = None
) -> Any:
    """What identifies the contents of `source` or `data_files`: the hub id and revision, or the local files'
    names, sizes and modification times (so that editing local data invalidates cached preprocessing)."""
    if data_files is not None:
        return {split: [_file_stat(Path(f)) for f in files] for split, files in check_data_files(data_files).items()}
    if not is_local(source):
        return [source, revision]
    path = Path(os.path.expanduser(source)).resolve()
    if path.is_file():
        return [_file_stat(path)]
    # hidden files and directories are no data (🤗 datasets skips them too), e.g. a cache inside the source directory
    files = [
        p
        for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    ]
    return [_file_stat(p) for p in sorted(files)]


def _file_stat(path: Path) -> list:
    stat = path.resolve().stat()
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]


def cached(cache_dir: Path, build: Callable[[], datasets.DatasetDict]) -> datasets.DatasetDict:
    """The dataset saved in `cache_dir`, built with `build` and saved there first if not yet present.

    Saving goes to a temporary directory that is renamed at the end, so an interrupted run leaves no partial cache.
    """
    if not (cache_dir / "dataset_dict.json").is_file():
        cache_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = cache_dir.parent / f".{cache_dir.name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            build().save_to_disk(str(tmp_dir))
            try:
                os.replace(tmp_dir, cache_dir)
            except OSError:
                if not (cache_dir / "dataset_dict.json").is_file():
                    raise
                # another process saved the same dataset meanwhile
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        logger.info("preprocessed dataset saved to %s", cache_dir)
    return datasets.load_from_disk(str(cache_dir))


def split_off(dataset: datasets.Dataset, size: Union[int, float], seed: int, stratify_by: Optional[str] = None):
    """Splits `dataset` into (rest, part) where part has `size` examples (int) or that fraction (float < 1)."""
    if isinstance(size, float) and not 0.0 < size < 1.0:
        raise ValueError(f"split size {size} must be a fraction in (0, 1) or a number of examples")
    if isinstance(size, int) and not 0 < size < len(dataset):
        raise ValueError(f"split size {size} must be in [1, {len(dataset) - 1}] for a dataset of {len(dataset)}")
    split = dataset.train_test_split(test_size=size, seed=seed, stratify_by_column=stratify_by)
    return split["train"], split["test"]


def dataloader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    collate_fn: Optional[Callable] = None,
    num_workers: int = 0,
    pin_memory: bool = True,
    seed: int = 0,
    passes: Optional[Iterator[int]] = None,
) -> DataLoader:
    """A DataLoader with the data modules' conventions: memory pinned only where a GPU can use it, workers kept
    alive between epochs, and reproducible batches that do not depend on when or where they are made:

    - the order of examples depends only on `seed` and the epoch (`loader.sampler.set_epoch`, called by Lightning),
      not on how often a loader was built, so that a run resumed at any epoch sees that epoch's order;
    - the randomness of loading and collating a batch (random shifts, crops, masking) comes from torch's, Python's
      and numpy's generators seeded from (`seed`, epoch, batch number) for that batch only (the global generators
      are restored afterwards), so that batches are the same with any number of workers, with prefetching, and
      after a resumed run skips the batches it has seen (`loader.sampler.resume`);
    - with `passes` (a counter shared by a data module's loaders), a pass over a loader whose epoch was never set
      (iterated by hand, or by `trainer.validate` / `test`; `fit` sets epochs) draws that randomness afresh, keyed by
      the pass's number, as perceiver-io 0.11's loaders did (e.g. new dynamic masks for each pass over the
      validation data); a new data module's first pass is the same in every run.
    """
    pin_memory = pin_memory and torch.cuda.is_available()
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        # streamed data: the order is the stream's (shuffled by its buffer)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            collate_fn=collate_fn,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=num_workers > 0,
        )
    sampler = EpochSampler(len(dataset), shuffle=shuffle, seed=seed, batch_size=batch_size, passes=passes)
    return DataLoader(
        _KeyedDataset(dataset, seed),
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=_KeyedCollate(collate_fn, seed),
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        # the workers' base seed is drawn when an iterator is made: from this generator, not the global one
        generator=torch.Generator().manual_seed(seed),
    )


class EpochSampler(Sampler):
    """Example indices of an epoch: a permutation seeded with (`seed`, epoch) if `shuffle`, else in order. Yields
    `(key, position, index)` keys that `_KeyedDataset` turns into examples; `key` seeds the randomness of loading:
    the epoch, or, while no epoch was set and with `passes` given, the number of this pass (see `dataloader`)."""

    def __init__(
        self,
        num_examples: int,
        shuffle: bool,
        seed: int = 0,
        batch_size: int = 1,
        passes: Optional[Iterator[int]] = None,
    ):
        self.num_examples, self.shuffle, self.seed, self.batch_size = num_examples, shuffle, seed, batch_size
        self.passes = passes
        self._epoch: Optional[int] = None
        self._skip = 0

    @property
    def epoch(self) -> int:
        return self._epoch or 0

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch

    def resume(self, epoch: int, num_batches_done: int) -> None:
        """The next iteration is epoch `epoch` without its first `num_batches_done` batches."""
        self._epoch, self._skip = epoch, num_batches_done * self.batch_size

    def __len__(self) -> int:
        return self.num_examples

    def __iter__(self):
        epoch, skip, self._skip = self.epoch, self._skip, 0
        key = epoch if self._epoch is not None or self.passes is None else ("pass", next(self.passes))
        if self.shuffle:
            generator = torch.Generator().manual_seed(_mix(self.seed, epoch))
            order = torch.randperm(self.num_examples, generator=generator).tolist()
        else:
            order = list(range(self.num_examples))
        for position in range(skip, self.num_examples):
            yield key, position, order[position]


def _mix(*values: int) -> int:
    return int.from_bytes(hashlib.sha256(repr(values).encode()).digest()[:8], "little") >> 1


class _Batch(list):
    """Examples of one batch, with the seed of the batch's collation."""

    seed: int = 0


class _KeyedDataset(Dataset):
    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: List[tuple]) -> "_Batch":
        epoch, position, _ = keys[0]
        batch_seed = _mix(self.seed, epoch, position)
        indices = [index for _, _, index in keys]
        with seeded_rng(batch_seed):
            if hasattr(self.dataset, "__getitems__"):
                examples = self.dataset.__getitems__(indices)
            else:
                examples = [self.dataset[i] for i in indices]
        batch = _Batch(examples)
        batch.seed = _mix(batch_seed, "collate")
        return batch


class _KeyedCollate:
    def __init__(self, collate_fn: Optional[Callable], seed: int):
        self.collate_fn = default_collate if collate_fn is None else collate_fn
        self.seed = seed

    def __call__(self, examples):
        if not isinstance(examples, _Batch):
            return self.collate_fn(examples)
        with seeded_rng(examples.seed):
            return self.collate_fn(list(examples))


@contextlib.contextmanager
def seeded_rng(seed: int):
    """Runs the block with torch's (CPU), Python's and numpy's global generators seeded with `seed`, and restores
    their states afterwards."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def rng_states() -> Dict[str, Any]:
    """The states of torch's (CPU and CUDA), Python's and numpy's global generators, as tensors and plain Python
    values (loadable with `torch.load(weights_only=True)`)."""
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached_gaussian)],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Dict[str, Any]) -> None:
    """Restores generator states returned by `rng_states`."""
    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached_gaussian = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached_gaussian))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class SplitDataModule(pl.LightningDataModule):
    """Base of the data modules: train/valid/test loaders over `self.ds_train`, `ds_valid`, `ds_test` (set in
    `setup`), with `batch_size`, `num_workers`, `pin_memory` and `seed` from the hyperparameters and the batches
    collated by `collator(train)`."""

    ds_train: Optional[Dataset] = None
    ds_valid: Optional[Dataset] = None
    ds_test: Optional[Dataset] = None

    @property
    def dataset_dir(self) -> Path:
        """Where downloads and preprocessed data are cached (hyperparameter `dataset_dir`)."""
        return Path(os.path.expanduser(self.hparams.dataset_dir))

    def collator(self, train: bool = False) -> Optional[Callable]:
        """Collates a list of examples into a batch (None: PyTorch's default collation)."""
        return None

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Union[str, os.PathLike], *args: Any, **kwargs: Any):
        """The data module of a Lightning checkpoint (local path or http(s) URL), built from its
        `datamodule_hyper_parameters` updated with `kwargs`. Unlike Lightning's method, the file is always read
        safely (`weights_only=True`, see `perceiver.common.checkpoint`); other positional arguments are ignored."""
        checkpoint = read_lightning_checkpoint(checkpoint_path)
        data_module = cls(**{**(checkpoint.get("datamodule_hyper_parameters") or {}), **kwargs})
        if cls.__qualname__ in checkpoint:
            data_module.load_state_dict(checkpoint[cls.__qualname__])
        return data_module

    def _dataloader(self, dataset: Dataset, shuffle: bool, train: bool = False) -> DataLoader:
        h = self.hparams
        # validation and test batches may be larger (`valid_batch_size`, perceiver-io 0.11's text data option)
        batch_size = h.batch_size if train else (h.get("valid_batch_size") or h.batch_size)
        return dataloader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            collate_fn=self.collator(train=train),
            num_workers=h.num_workers,
            pin_memory=h.pin_memory,
            seed=h.seed,
            passes=self._passes,
        )

    @property
    def _passes(self) -> Iterator[int]:
        # numbers the passes over this module's loaders that no trainer keyed with an epoch (see `dataloader`)
        if "_pass_counter" not in self.__dict__:
            self._pass_counter = itertools.count(1)
        return self._pass_counter

    def train_dataloader(self) -> DataLoader:
        # `shuffle=False` only where a data module has that option (perceiver-io 0.11's MNIST module)
        loader = self._dataloader(self.ds_train, shuffle=self.hparams.get("shuffle", True), train=True)
        resume, self._resume_state = getattr(self, "_resume_state", None), None
        if resume is not None and isinstance(loader.sampler, EpochSampler):
            epoch, done = resume["epoch"], resume["batches_done"]
            if done >= self._num_train_batches(loader):
                epoch, done = epoch + 1, 0
            loader.sampler.resume(epoch, done)
            # restored here, right before training goes on (not when the checkpoint is read: setting up the
            # model and optimizer in between may draw random numbers)
            set_rng_states(resume["rng_states"])
        return loader

    def state_dict(self) -> Dict[str, Any]:
        """Where training stands (epoch, batches done in it) and the global random generators' states, saved in
        Lightning checkpoints so that a resumed run continues exactly as an uninterrupted one."""
        trainer = self.trainer
        if trainer is None or not trainer.training:
            return {}
        return {
            "epoch": trainer.current_epoch,
            "batches_done": trainer.fit_loop.epoch_loop.batch_progress.current.processed,
            "rng_states": rng_states(),
        }

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        if "epoch" in state_dict:
            self._resume_state = state_dict

    def _num_train_batches(self, loader: DataLoader) -> int:
        num_batches = len(loader)
        limit = self.trainer.limit_train_batches if self.trainer is not None else None
        if isinstance(limit, int):
            return min(num_batches, limit)
        if isinstance(limit, float) and limit < 1.0:
            return int(num_batches * limit)
        return num_batches

    def val_dataloader(self) -> DataLoader:
        return self._dataloader(self.ds_valid, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        if self.ds_test is None:
            raise ValueError(f"source={self.hparams.source!r} has no test split")
        return self._dataloader(self.ds_test, shuffle=False)
