"""C4 (Colossal Clean Crawled Corpus), streamed: nothing is downloaded or preprocessed ahead of training."""

import warnings
from typing import Optional

from datasets.distributed import split_dataset_by_node
from torch.utils.data import DataLoader

from perceiver.data.common import dataloader
from perceiver.data.text.common import TaskName, TextDataModule
from perceiver.data.text.tasks import non_empty, tokenize_and_chunk


class C4DataModule(TextDataModule):
    """English C4 (`allenai/c4`, config `en`, 365M documents), streamed and tokenized on the fly, for tasks `mlm`
    and `clm`. Training documents are shuffled in a buffer of `shuffle_buffer_size` documents.

    `source` also takes a local copy (e.g. a directory of `c4-train.*.json.gz` and `c4-validation.*.json.gz` files),
    which is streamed too. Without a validation split, the first `valid_size` (a number) training documents are used
    for validation. Random train shift is not available (streamed data have no random access); data loader workers
    each read different shards of the source, and so does each process of a distributed run (`rank` of
    `world_size`).

    :param valid_size: number of training documents used for validation where the source has no validation split.
    :param shuffle_buffer_size: documents in the buffer that shuffles the training stream.
    :param preproc_batch_size: documents concatenated before they are cut into chunks.
    :param num_train_workers: data loader workers of training data (default: `num_workers`).
    :param num_valid_workers: data loader workers of validation data (default: `num_workers`).
    :param rank: this process' rank among `world_size` processes, each streaming its own part of the data (default:
        the trainer's).
    :param world_size: number of processes of a distributed run (default: the trainer's).
    :param min_seq_len: perceiver-io 0.11's option: training examples of random length in [`min_seq_len`,
        `max_seq_len`]; use `random_train_truncation=True` and `random_min_seq_len`.
    :param concat_batch_size: perceiver-io 0.11's name of `preproc_batch_size`.
    :param shuffle_window_size: perceiver-io 0.11's name of `shuffle_buffer_size`.
    :param shuffle_window_seed: perceiver-io 0.11's name of `seed`.
    """

    hub_source = "allenai/c4"

    def __init__(
        self,
        source: str = "allenai/c4",
        config_name: Optional[str] = "en",
        task: TaskName = "mlm",
        valid_size: int = 10000,
        shuffle_buffer_size: int = 10000,
        preproc_batch_size: int = 100,
        num_train_workers: Optional[int] = None,
        num_valid_workers: Optional[int] = None,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        min_seq_len: Optional[int] = None,
        concat_batch_size: Optional[int] = None,
        shuffle_window_size: Optional[int] = None,
        shuffle_window_seed: Optional[int] = None,
        **kwargs,
    ):
        # 0.11's names: thin aliases of this module's options
        legacy = dict(
            concat_batch_size=("preproc_batch_size", concat_batch_size),
            shuffle_window_size=("shuffle_buffer_size", shuffle_window_size),
            shuffle_window_seed=("seed", shuffle_window_seed),
        )
        for old, (new, value) in legacy.items():
            if value is not None:
                warnings.warn(f"{old} is deprecated, use {new}", DeprecationWarning, stacklevel=2)
        preproc_batch_size = concat_batch_size if concat_batch_size is not None else preproc_batch_size
        shuffle_buffer_size = shuffle_window_size if shuffle_window_size is not None else shuffle_buffer_size
        if shuffle_window_seed is not None:
            kwargs["seed"] = shuffle_window_seed
        if min_seq_len is not None:
            warnings.warn(
                f"min_seq_len is deprecated, use random_train_truncation=True and random_min_seq_len={min_seq_len}",
                DeprecationWarning,
                stacklevel=2,
            )
            kwargs.update(random_train_truncation=True, random_min_seq_len=min_seq_len)
        super().__init__(
            source=source,
            config_name=config_name,
            task=task,
            valid_size=valid_size,
            preproc_batch_size=preproc_batch_size,
            **kwargs,
        )
        # the values in effect as hyperparameters (the Lightning CLI records those it was given), the aliases unset
        h = self.hparams
        h.update(preproc_batch_size=preproc_batch_size, shuffle_buffer_size=shuffle_buffer_size)
        h.update({k: kwargs[k] for k in ("seed", "random_train_truncation", "random_min_seq_len") if k in kwargs})
        h.update(min_seq_len=None, concat_batch_size=None, shuffle_window_size=None, shuffle_window_seed=None)
        self.text_task.check_options()
        if task == "clf":
            raise ValueError("C4DataModule supports tasks 'mlm' and 'clm', not 'clf'")
        if h.random_train_shift:
            raise ValueError("random_train_shift=True is not supported with streamed data")
        for name in ("num_train_workers", "num_valid_workers"):
            if h[name] is not None and h[name] < 0:
                raise ValueError(f"{name}={h[name]} must be at least 0")
        if (rank is None) != (world_size is None) or (world_size is not None and not 0 <= rank < world_size):
            raise ValueError(f"rank={rank} and world_size={world_size} must both be given, with 0 <= rank < world_size")

    def prepare_data(self) -> None:
        pass  # streamed

    def _rank_and_world_size(self):
        h = self.hparams
        if h.world_size is not None:
            return h.rank, h.world_size
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

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
        rank, world_size = self._rank_and_world_size()
        if world_size > 1:
            # each process streams its own shards (or every world_size-th document)
            train = split_dataset_by_node(train, rank=rank, world_size=world_size)
            valid = split_dataset_by_node(valid, rank=rank, world_size=world_size)
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
                batch_size=h.preproc_batch_size,
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
        num_workers = h.num_train_workers if train else h.num_valid_workers
        # streamed data are shuffled by the dataset's buffer, not by the loader
        return dataloader(
            dataset,
            batch_size=h.batch_size if train else (h.valid_batch_size or h.batch_size),
            shuffle=False,
            collate_fn=self.collator(train=train),
            num_workers=h.num_workers if num_workers is None else num_workers,
            pin_memory=h.pin_memory,
        )
