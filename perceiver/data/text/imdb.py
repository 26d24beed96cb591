"""IMDb movie reviews: sentiment classification, or the text of all reviews for language model fine-tuning."""

from typing import Optional

import datasets

from perceiver.data.common import split_off
from perceiver.data.text.common import TaskName, TextDataModule


class ImdbDataModule(TextDataModule):
    """IMDb movie reviews (`stanfordnlp/imdb`: 25,000 train, 25,000 test, 50,000 unlabeled).

    With task `clf` (the default): sentiment classification, classes "neg" and "pos". With task `mlm` or `clm`: the
    text of the training and the unlabeled reviews (e.g. to fine-tune a language model before training a classifier
    on top of its encoder). Validation data are `valid_size` of the training data; test data the test reviews.

    `source` also takes a local copy: a directory with train, test (and unsupervised) parquet/JSON/CSV files with
    columns "text" and "label" (0: neg, 1: pos).
    """

    hub_source = "stanfordnlp/imdb"
    label_names = ["neg", "pos"]

    def __init__(
        self, source: str = "stanfordnlp/imdb", task: TaskName = "clf", config_name: Optional[str] = None, **kwargs
    ):
        super().__init__(source=source, task=task, config_name=config_name, **kwargs)

    def load_splits(self) -> datasets.DatasetDict:
        dataset = self.load_source()
        for name in ("train", "test"):
            if name not in dataset:
                raise ValueError(f"source={self.hparams.source!r} has no {name} split, found {sorted(dataset)}")
        train = dataset["train"]
        if self.hparams.task != "clf" and "unsupervised" in dataset:
            train = datasets.concatenate_datasets([train, dataset["unsupervised"]])
        train, valid = split_off(train, self.hparams.valid_size, self.hparams.seed)
        return datasets.DatasetDict(train=train, valid=valid, test=dataset["test"])
