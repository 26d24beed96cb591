"""Downloading and extracting data files (perceiver-io 0.11's `perceiver.data.audio.utils`), as the MIDI corpus data
modules do it."""

import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Union

PathLike = Union[str, os.PathLike]


def download_file(uri: str, target_file: PathLike) -> None:
    """Downloads `uri` (http, https or file) to `target_file`, completely or not at all (written to a temporary file
    beside it that replaces it at the end).

    :raises FileNotFoundError: if there is nothing at `uri` (HTTP 404, a missing local file).
    :raises ValueError: for a URI of another scheme.
    """
    if not uri.startswith(("http://", "https://", "file:")):
        raise ValueError(f"uri={uri!r} must be an http(s) or file URI")
    target = Path(target_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(uri, timeout=120) as response:  # noqa: S310 (see above)
            shutil.copyfileobj(response, f, length=1 << 20)
        os.replace(partial, target)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise FileNotFoundError(f"nothing to download at {uri} (HTTP 404)") from None
        raise
    except urllib.error.URLError as e:
        if isinstance(e.reason, FileNotFoundError):
            raise FileNotFoundError(f"nothing to download at {uri} ({e.reason.strerror})") from None
        raise
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def extract_file(dataset_file: PathLike, target_dir: PathLike) -> None:
    """Extracts the zip file `dataset_file` into `target_dir` (created if needed).

    :raises ValueError: if `dataset_file` is no zip file or names paths outside `target_dir`.
    """
    target = Path(target_dir).resolve()
    try:
        with zipfile.ZipFile(dataset_file) as archive:
            for name in archive.namelist():
                if not (target / name).resolve().is_relative_to(target):
                    raise ValueError(f"{dataset_file} names a path outside the target directory: {name!r}")
            target.mkdir(parents=True, exist_ok=True)
            archive.extractall(target)
    except zipfile.BadZipFile as e:
        raise ValueError(f"{dataset_file} is not a zip file: {e}") from None
