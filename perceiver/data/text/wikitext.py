"""WikiText-103: good and featured Wikipedia articles, for language modeling."""

from typing import Optional

from perceiver.data.text.common import TaskName, TextDataModule


class WikiTextDataModule(TextDataModule):
    """WikiText-103 (`Salesforce/wikitext`, config `wikitext-103-raw-v1`) with its train, validation and test splits,
    for tasks `mlm` and `clm`. `source` also takes a local copy (a hub snapshot, or train/validation/test files)."""

    hub_source = "Salesforce/wikitext"

    def __init__(
        self,
        source: str = "Salesforce/wikitext",
        config_name: Optional[str] = "wikitext-103-raw-v1",
        task: TaskName = "mlm",
        **kwargs,
    ):
        super().__init__(source=source, config_name=config_name, task=task, **kwargs)
