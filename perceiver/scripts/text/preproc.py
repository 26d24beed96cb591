"""Preprocesses (downloads, tokenizes and caches) a text dataset before training, as perceiver-io 0.11's
`python -m perceiver.scripts.text.preproc <dataset> --tokenizer=... --max_seq_len=... [--task=...]` did.

Each dataset takes the arguments of its data module (e.g. `imdb` those of `ImdbDataModule`); training with the same
data arguments then reuses the cache. 0.11's `--filter_empty` and `--filter_headers` are accepted and ignored (empty
texts are always removed).
"""

import sys
import warnings
from typing import Optional, Sequence

from jsonargparse import ArgumentParser

from perceiver.data.text import (
    BookCorpusDataModule,
    BookCorpusOpenDataModule,
    C4DataModule,
    Enwik8DataModule,
    ImdbDataModule,
    TextFilesDataModule,
    WikiBookDataModule,
    WikipediaDataModule,
    WikiTextDataModule,
)

DATAMODULE_CLASSES = {
    "bookcorpus": BookCorpusDataModule,
    "bookcorpusopen": BookCorpusOpenDataModule,
    "c4": C4DataModule,
    "enwik8": Enwik8DataModule,
    "imdb": ImdbDataModule,
    "textfiles": TextFilesDataModule,
    "wikibook": WikiBookDataModule,
    "wikipedia": WikipediaDataModule,
    "wikitext": WikiTextDataModule,
}
_IGNORED = ("filter_empty", "filter_headers")


def main(args: Optional[Sequence[str]] = None) -> None:
    parser = ArgumentParser(description=__doc__)
    subcommands = parser.add_subcommands(dest="dataset")
    for name, cls in DATAMODULE_CLASSES.items():
        subparser = ArgumentParser()
        subparser.add_class_arguments(cls)
        for ignored in _IGNORED:
            subparser.add_argument(f"--{ignored}", type=Optional[bool], default=None, help="ignored (0.11 option)")
        subcommands.add_subcommand(name, subparser, help=f"preprocess with {cls.__name__}")
    config = parser.parse_args(sys.argv[1:] if args is None else list(args))
    name = config.dataset
    sub = config[name]
    for ignored in _IGNORED:
        if sub.get(ignored) is not None:
            warnings.warn(f"--{ignored} is ignored (empty texts are always removed)", DeprecationWarning, stacklevel=1)
    kwargs = {k: v for k, v in sub.items() if k not in _IGNORED and k != "__path__"}
    data_module = DATAMODULE_CLASSES[name](**kwargs)
    data_module.prepare_data()
    preproc_dirs = getattr(data_module, "preproc_dirs", [data_module.preproc_dir])
    print(f"preprocessed {name} into {', '.join(map(str, preproc_dirs))}")


if __name__ == "__main__":
    main()
