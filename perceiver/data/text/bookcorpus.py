"""BookCorpus and BookCorpusOpen, for language modeling."""

from typing import Optional, Union

from perceiver.data.text.common import TaskName, TextDataModule, sizes_0_11


class BookCorpusDataModule(TextDataModule):
    """BookCorpus (`bookcorpus/bookcorpus`, read from the hub's parquet export, 74M sentences) for tasks `mlm` and
    `clm`; `valid_size` of the sentences are held out for validation. `source` also takes a local copy.

    :param source_valid_size: perceiver-io 0.11's name of `valid_size` (deprecated).
    :param source_train_size: perceiver-io 0.11's name of `train_size` (deprecated).
    """

    hub_source = "bookcorpus/bookcorpus"

    def __init__(
        self,
        source: str = "bookcorpus/bookcorpus",
        config_name: Optional[str] = "plain_text",
        revision: Optional[str] = "refs/convert/parquet",
        task: TaskName = "mlm",
        valid_size: Union[int, float] = 0.001,
        source_train_size: Optional[Union[int, float]] = None,
        source_valid_size: Optional[Union[int, float]] = None,
        **kwargs,
    ):
        sizes = sizes_0_11(type(self).__name__, valid_size, source_train_size, source_valid_size)
        super().__init__(source=source, config_name=config_name, revision=revision, task=task, **sizes, **kwargs)
        self.use_sizes(sizes)


class BookCorpusOpenDataModule(TextDataModule):
    """BookCorpusOpen (`lucadiliello/bookcorpusopen`, 17,868 books, one book per example) for tasks `mlm` and `clm`;
    `valid_size` of the books are held out for validation. `source` also takes a local copy (e.g. a directory of
    text files, one book per file, read with the generic `TextFilesDataModule` and `sample_by="document"`).

    :param source_valid_size: perceiver-io 0.11's name of `valid_size` (deprecated).
    :param source_train_size: perceiver-io 0.11's name of `train_size` (deprecated).
    """

    hub_source = "lucadiliello/bookcorpusopen"

    def __init__(
        self,
        source: str = "lucadiliello/bookcorpusopen",
        task: TaskName = "clm",
        valid_size: Union[int, float] = 0.01,
        source_train_size: Optional[Union[int, float]] = None,
        source_valid_size: Optional[Union[int, float]] = None,
        **kwargs,
    ):
        sizes = sizes_0_11(type(self).__name__, valid_size, source_train_size, source_valid_size)
        super().__init__(source=source, task=task, **sizes, **kwargs)
        self.use_sizes(sizes)
