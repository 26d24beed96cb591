"""Text data from any local text, JSON, parquet or CSV files (or any 🤗 hub dataset with a text column)."""

from typing import Dict, List, Literal, Optional, Union

from perceiver.data.common import check_data_files
from perceiver.data.text.common import TaskName, TextDataModule


class TextFilesDataModule(TextDataModule):
    """Text data from local files, for any task: give either `source` (a directory whose file names contain the
    split names, e.g. `train.txt` and `valid.txt`, a single file, or a hub id) or `data_files`, a mapping of split
    names (train, valid, test) to files or glob patterns, e.g. `{"train": "data/*.jsonl"}`.

    Text files are read by line (`sample_by="line"`, line breaks kept), paragraph or whole document; JSON, parquet
    and CSV files need a `text_column` (and a `label_column` for `clf`). Without a validation split, `valid_size` of
    the training data are held out.

    :param source: directory, file or hub id of the text (or None, with `data_files`).
    :param data_files: split name (train, valid, test) -> file or glob pattern, or list of them (or None, with
        `source`).
    :param sample_by: examples of text files: a "line", a "paragraph" or a whole "document".
    :param task: "mlm", "clm" or "clf".
    """

    def __init__(
        self,
        source: Optional[str] = None,
        data_files: Optional[Dict[str, Union[str, List[str]]]] = None,
        sample_by: Literal["line", "paragraph", "document"] = "line",
        task: TaskName = "mlm",
        **kwargs,
    ):
        if (source is None) == (data_files is None):
            raise ValueError("give exactly one of source and data_files")
        if data_files is not None:
            check_data_files(data_files)
        super().__init__(source=source, task=task, **kwargs)
        self.data_files = data_files
        self.text_options = {"sample_by": sample_by}
