"""BookCorpus and BookCorpusOpen, for language modeling."""

from typing import Optional, Union

from perceiver.data.text.common import TaskName, TextDataModule


class BookCorpusDataModule(TextDataModule):
    """BookCorpus (`bookcorpus/bookcorpus`, read from the hub's parquet export, 74M sentences) for tasks `mlm` and
    `clm`; `valid_size` of the sentences are held out for validation. `source` also takes a local copy."""

    hub_source = "bookcorpus/bookcorpus"

    def __init__(
        self,
        source: str = "bookcorpus/bookcorpus",
        config_name: Optional[str] = "plain_text",
        revision: Optional[str] = "refs/convert/parquet",
        task: TaskName = "mlm",
        valid_size: Union[int, float] = 0.001,
        **kwargs,
    ):
        super().__init__(
            source=source, config_name=config_name, revision=revision, task=task, valid_size=valid_size, **kwargs
        )


class BookCorpusOpenDataModule(TextDataModule):
    """BookCorpusOpen (`lucadiliello/bookcorpusopen`, 17,868 books, one book per example) for tasks `mlm` and `clm`;
    `valid_size` of the books are held out for validation. `source` also takes a local copy (e.g. a directory of
    text files, one book per file, read with the generic `TextFilesDataModule` and `sample_by="document"`)."""

    hub_source = "lucadiliello/bookcorpusopen"

    def __init__(
        self,
        source: str = "lucadiliello/bookcorpusopen",
        task: TaskName = "clm",
        valid_size: Union[int, float] = 0.01,
        **kwargs,
    ):
        super().__init__(source=source, task=task, valid_size=valid_size, **kwargs)
