"""Wikipedia articles, for language modeling."""

from typing import Optional, Union

from perceiver.data.text.common import TaskName, TextDataModule


class WikipediaDataModule(TextDataModule):
    """English Wikipedia (`wikimedia/wikipedia`, config `20231101.en`, 6.4M articles) for tasks `mlm` and `clm`;
    `valid_size` of the articles are held out for validation. `source` also takes a local copy."""

    hub_source = "wikimedia/wikipedia"

    def __init__(
        self,
        source: str = "wikimedia/wikipedia",
        config_name: Optional[str] = "20231101.en",
        task: TaskName = "mlm",
        valid_size: Union[int, float] = 0.005,
        **kwargs,
    ):
        super().__init__(source=source, config_name=config_name, task=task, valid_size=valid_size, **kwargs)
