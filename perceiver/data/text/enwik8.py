"""enwik8: the first 100M bytes of an English Wikipedia XML dump (the Hutter prize benchmark)."""

from typing import Optional

import datasets

from perceiver.data.text.common import TaskName, TextDataModule


class Enwik8DataModule(TextDataModule):
    """enwik8 (`LTCB/enwik8`, read from the hub's parquet export) for tasks `clm` and `mlm`, usually with the UTF-8
    bytes tokenizer (the default). As is standard, the data are split in order into 90% train, 5% validation and 5%
    test (by lines).

    `source` also takes the raw `enwik8` file (unzipped from http://mattmahoney.net/dc/enwik8.zip), read line by
    line with line breaks kept.
    """

    hub_source = "LTCB/enwik8"

    def __init__(
        self,
        source: str = "LTCB/enwik8",
        config_name: Optional[str] = "enwik8",
        revision: Optional[str] = "refs/convert/parquet",
        task: TaskName = "clm",
        **kwargs,
    ):
        super().__init__(source=source, config_name=config_name, revision=revision, task=task, **kwargs)

    def load_splits(self) -> datasets.DatasetDict:
        dataset = self.load_source()
        # one sequence: concatenate all splits the source may have, in order, then split 90/5/5 in order
        splits = [dataset[name] for name in ("train", "valid", "test") if name in dataset]
        lines = datasets.concatenate_datasets(splits) if len(splits) > 1 else splits[0]
        n = len(lines)
        if n < 3:
            raise ValueError(f"source={self.hparams.source!r} has {n} lines, too few to split 90/5/5")
        train_end, valid_end = max(1, int(0.9 * n)), max(2, int(0.95 * n))
        return datasets.DatasetDict(
            train=lines.select(range(train_end)),
            valid=lines.select(range(train_end, valid_end)),
            test=lines.select(range(valid_end, n)),
        )
