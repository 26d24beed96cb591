"""Wikipedia and BookCorpus together, perceiver-io 0.11's pretraining data of its masked language model."""

from typing import Optional, Sequence, Union

import datasets

try:
    from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
except ImportError:  # a Lightning version without it
    _given_hyperparameters = None

from perceiver.data.common import DEFAULT_DATASET_DIR
from perceiver.data.text.bookcorpus import BookCorpusDataModule
from perceiver.data.text.common import TaskName, TextDataModule
from perceiver.data.text.wikipedia import WikipediaDataModule


class WikiBookDataModule(TextDataModule):
    """English Wikipedia and BookCorpus, for tasks `mlm` and `clm`: a `WikipediaDataModule` and a
    `BookCorpusDataModule` with the same arguments preprocess and cache their sources each (reused by runs on either
    alone), and their train and valid examples are concatenated (no test split).

    :param wikipedia_source: hub id or local copy of Wikipedia (see `WikipediaDataModule`).
    :param bookcorpus_source: hub id or local copy of BookCorpus (see `BookCorpusDataModule`).
    :param dataset_dirs: perceiver-io 0.11's option: the `dataset_dir` of Wikipedia and of BookCorpus (default: both
        `dataset_dir`).
    :param valid_size: fraction (or number) of each source's examples held out for validation (default: each
        module's own, 0.005 of Wikipedia's articles and 0.001 of BookCorpus' sentences).

    The other arguments are those of `TextDataModule` (but `source`, `config_name`, `revision`), given to both.
    """

    def __init__(
        self,
        wikipedia_source: str = WikipediaDataModule.hub_source,
        bookcorpus_source: str = BookCorpusDataModule.hub_source,
        dataset_dirs: Optional[Sequence[str]] = None,
        dataset_dir: str = DEFAULT_DATASET_DIR,
        task: TaskName = "mlm",
        valid_size: Optional[Union[int, float]] = None,
        **kwargs,
    ):
        for name in ("source", "config_name", "revision"):  # each part's own (the CLI lists them, as None)
            value = kwargs.pop(name, None)
            if value is not None:
                raise ValueError(f"{name}={value!r}: WikiBookDataModule takes wikipedia_source, bookcorpus_source")
        if valid_size is not None:
            kwargs["valid_size"] = valid_size
        super().__init__(dataset_dir=dataset_dir, task=task, **kwargs)
        if self.hparams.task == "clf":
            raise ValueError("WikiBookDataModule supports tasks 'mlm' and 'clm', not 'clf'")
        if dataset_dirs is not None and len(dataset_dirs) != 2:
            raise ValueError(f"dataset_dirs={dataset_dirs!r} must be two directories (Wikipedia's, BookCorpus')")
        wikipedia_dir, bookcorpus_dir = dataset_dirs or (dataset_dir, dataset_dir)
        self.parts = [
            _part(WikipediaDataModule, source=wikipedia_source, dataset_dir=wikipedia_dir, task=task, **kwargs),
            _part(BookCorpusDataModule, source=bookcorpus_source, dataset_dir=bookcorpus_dir, task=task, **kwargs),
        ]

    @property
    def preproc_dirs(self) -> list:
        """Where the preprocessed Wikipedia and BookCorpus data are saved."""
        return [part.preproc_dir for part in self.parts]

    def prepare_data(self) -> None:
        for part in self.parts:
            part.prepare_data()

    def load_preprocessed(self) -> datasets.DatasetDict:
        loaded = [part.load_preprocessed() for part in self.parts]
        return datasets.DatasetDict(
            {split: datasets.concatenate_datasets([d[split] for d in loaded]) for split in ("train", "valid")}
        )


def _part(cls, **kwargs) -> TextDataModule:
    # Lightning's `save_hyperparameters` records a data module's arguments from the enclosing `__init__` frames on the
    # stack (so the part is built outside `__init__`), or, while the Lightning CLI instantiates a class, from the
    # CLI's configuration (of this module, not the part's: unset here while the part is built)
    token = _given_hyperparameters.set(None) if _given_hyperparameters is not None else None
    try:
        return cls(**kwargs)
    finally:
        if token is not None:
            _given_hyperparameters.reset(token)
