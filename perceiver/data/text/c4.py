"""C4 (Colossal Clean Crawled Corpus), streamed: nothing is downloaded or preprocessed ahead of training."""

from typing import Optional

from torch.utils.data import DataLoader

from perceiver.data.common import dataloader
from perceiver.data.text.common import TaskName, TextDataModule
from perceiver.data.text.tasks import non_empty, tokenize_and_chunk

_MAP_BATCH_SIZE = 100


class C4DataModule(TextDataModule):
    """English C4 (`allenai/c4`, config `en`, 365M documents), streamed and tokenized on the fly, for tasks `mlm`
    and `clm`. Training documents are shuffled in a buffer of `shuffle_buffer_size` documents.

    `source` also takes a local copy (e.g. a directory of `c4-train.*.json.gz` and `c4-validation.*.json.gz` files),
    which is streamed too. Without a validation split, the first `valid_size` (a number) training documents are used
    for validation. Random train shift is not available (streamed data have no random access); data loader workers
    each read different shards of the source.

    :param valid_size: number of training documents used for validation where the source has no validation split.
    :param shuffle_buffer_size: documents in the buffer that shuffles the training stream.
    """

    hub_source = "allenai/c4"

    def __init__(
        self,
        source: str = "allenai/c4",
        config_name: Optional[str] = "en",
        task: TaskName = "mlm",
        valid_size: int = 10000,
        shuffle_buffer_size: int = 10000,
        **kwargs,
    ):
        super().__init__(source=source, config_name=config_name, task=task, valid_size=valid_size, **kwargs)
        if task == "clf":
            raise ValueError("C4DataModule supports tasks 'mlm' and 'clm', not 'clf'")
        if self.hparams.random_train_shift:
            raise ValueError("random_train_shift=True is not supported with streamed data")

    def prepare_data(self) -> None:
        pass  # streamed

    def setup(self, stage: Optional[str] = None) -> None:
        h = self.hparams
        dataset = self.load_source(streaming=True)
        if "train" not in dataset:
            raise ValueError(f"source={h.source!r} has no train split, found {sorted(dataset)}")
        train = dataset["train"].shuffle(seed=h.seed, buffer_size=h.shuffle_buffer_size)
        if "valid" in dataset:
            valid = dataset["valid"]
        else:
            if not isinstance(h.valid_size, int):
                raise ValueError(f"valid_size={h.valid_size!r} must be a number of documents for streamed data")
            valid, train = dataset["train"].take(h.valid_size), train.skip(h.valid_size)
        self.ds_train, self.ds_valid = self._tokenized(train), self._tokenized(valid)
        self.ds_test = None

    def _tokenized(self, dataset):
        h = self.hparams
        return (
            dataset.select_columns([h.text_column])
            .filter(non_empty, input_columns=[h.text_column])
            .map(
                tokenize_and_chunk,
                batched=True,
                batch_size=_MAP_BATCH_SIZE,
                remove_columns=[h.text_column],
                fn_kwargs=dict(
                    tokenizer=self.tokenizer,
                    text_column=h.text_column,
                    add_special_tokens=h.add_special_tokens,
                    block_len=h.max_seq_len,
                    **self.text_task.chunk_options(self.tokenizer),
                ),
            )
        )

    def _dataloader(self, dataset, shuffle: bool, train: bool = False) -> DataLoader:
        h = self.hparams
        # streamed data are shuffled by the dataset's buffer, not by the loader
        return dataloader(
            dataset,
            batch_size=h.batch_size,
            shuffle=False,
            collate_fn=self.collator(train=train),
            num_workers=h.num_workers,
            pin_memory=h.pin_memory,
        )
