"""Data modules of published MIDI corpora (as perceiver-io 0.11 had them): a local copy laid out as the corpus ships
(a directory or its zip file), or a download of `dataset_uri` when there is none."""

import os
import shutil
from pathlib import Path
from typing import Dict, List, Optional

from perceiver.data.audio.symbolic import SymbolicAudioDataModule, midi_files_below  # noqa: F401 (re-exported)
from perceiver.data.audio.utils import download_file, extract_file
from perceiver.data.common import source_fingerprint
from perceiver.processing.midi import DEFAULT_MAX_TOKENS, Encoding


class MidiCorpusDataModule(SymbolicAudioDataModule):
    """A MIDI corpus with its own split layout (subclasses implement `corpus_splits`).

    :param max_seq_len: chunk length, the model's maximum sequence length (0.11's first positional argument).
    :param min_seq_len: random training lengths in [`min_seq_len`, `max_seq_len`] (0.11's option), or None.
    :param source: local copy of the corpus: its directory or zip file as downloaded. None: `dataset_uri` is
        downloaded (once) into `dataset_dir/source`.
    :param dataset_uri: where to download the corpus from (an http(s) or file URI of a zip file).
    :param dataset_dir: where downloads and preprocessed data are kept.
    :param valid_size: for corpora without a validation split: the fraction (or number) of files held out.
    See `SymbolicAudioDataModule` for the other arguments.
    """

    default_uri: str = ""
    default_dir: str = ""
    zip_name: str = "corpus.zip"

    def __init__(
        self,
        max_seq_len: int,
        min_seq_len: Optional[int] = None,
        padding_side: str = "left",
        batch_size: int = 16,
        num_workers: int = 1,
        preproc_workers: Optional[int] = None,
        pin_memory: bool = True,
        source: Optional[str] = None,
        dataset_uri: Optional[str] = None,
        dataset_dir: Optional[str] = None,
        random_train_shift: bool = True,
        valid_size: float = 0.05,
        max_tokens: Optional[int] = DEFAULT_MAX_TOKENS,
        encoding: Encoding = "0.11",
        seed: int = 0,
    ):
        super().__init__(
            source=source,
            dataset_dir=dataset_dir or self.default_dir,
            max_seq_len=max_seq_len,
            min_seq_len=min_seq_len,
            padding_side=padding_side,
            random_train_shift=random_train_shift,
            valid_size=valid_size,
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            preproc_workers=preproc_workers,
            max_tokens=max_tokens,
            encoding=encoding,
            seed=seed,
        )
        # save_hyperparameters records this signature's None defaults: the corpus' defaults replace them
        self.hparams.dataset_uri = dataset_uri or self.default_uri
        self.hparams.dataset_dir = dataset_dir or self.default_dir

    def _check_source(self) -> None:
        source = self.hparams.source
        if source is not None and not os.path.exists(os.path.expanduser(source)):
            raise FileNotFoundError(f"source={source!r} does not exist (a local copy of the corpus: directory or zip)")

    def _source_name(self) -> str:
        return f"source={self.hparams.source!r}" if self.hparams.source else f"dataset_uri={self.hparams.dataset_uri!r}"

    @property
    def source_dir(self) -> Path:
        """The corpus directory: the local copy, its extraction, or the download."""
        source = self.hparams.source
        if source is not None and os.path.isdir(os.path.expanduser(source)):
            return Path(os.path.expanduser(source))
        return self.dataset_dir / "source"

    def source_origin(self) -> str:
        # the local copy's files, or the download's URI (known before anything is downloaded)
        h = self.hparams
        return source_fingerprint(os.path.expanduser(h.source)) if h.source else h.dataset_uri

    def _fetch(self) -> Path:
        """The corpus directory, extracting a zip copy or downloading `dataset_uri` first where needed."""
        source = self.hparams.source
        if source is not None and os.path.isdir(os.path.expanduser(source)):
            return self.source_dir
        target = self.dataset_dir / "source"
        done = target / ".complete"
        if not done.is_file():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            if source is not None:
                archive = Path(os.path.expanduser(source))
            else:
                archive = target / ".download" / self.zip_name
                download_file(self.hparams.dataset_uri, archive)
            try:
                extract_file(archive, target)
            except ValueError as e:
                raise ValueError(f"{self._source_name()} is not a zip file of the corpus: {e}") from e
            shutil.rmtree(target / ".download", ignore_errors=True)
            done.touch()
        return target

    def midi_files(self) -> Dict[str, List[str]]:
        files = self.corpus_splits(self._fetch())
        if not files.get("train"):
            raise ValueError(f"{self._source_name()} holds no training MIDI files (*.mid, *.midi)")
        return files

    def corpus_splits(self, root: Path) -> Dict[str, List[str]]:
        """MIDI file paths per split ("train", "valid", "test") of the corpus in `root`."""
        raise NotImplementedError
