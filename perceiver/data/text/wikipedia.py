"""Wikipedia articles, for language modeling."""

from typing import Optional, Union

from perceiver.data.text.common import TaskName, TextDataModule, sizes_0_11


class WikipediaDataModule(TextDataModule):
    """English Wikipedia (`wikimedia/wikipedia`, config `20231101.en`, 6.4M articles) for tasks `mlm` and `clm`;
    `valid_size` of the articles are held out for validation. `source` also takes a local copy.

    :param source_valid_size: perceiver-io 0.11's name of `valid_size` (deprecated).
    :param source_train_size: perceiver-io 0.11's name of `train_size` (deprecated).
    """

    hub_source = "wikimedia/wikipedia"

    def __init__(
        self,
        source: str = "wikimedia/wikipedia",
        config_name: Optional[str] = "20231101.en",
        task: TaskName = "mlm",
        valid_size: Union[int, float] = 0.005,
        source_train_size: Optional[Union[int, float]] = None,
        source_valid_size: Optional[Union[int, float]] = None,
        **kwargs,
    ):
        sizes = sizes_0_11(type(self).__name__, valid_size, source_train_size, source_valid_size)
        super().__init__(source=source, config_name=config_name, task=task, **sizes, **kwargs)
        self.use_sizes(sizes)
