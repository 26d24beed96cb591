"""Reading this library's saved 🤗 model weights (directory, safetensors file or hub id) without transformers."""

import os
from pathlib import Path
from typing import Dict, Optional, Union

import torch

BACKEND_PREFIX = "backend_model."


def resolve_model_file(path_or_repo_id: Union[str, os.PathLike], filename: str = "model.safetensors") -> Path:
    """`filename` in a local model directory, a local file itself, or `filename` downloaded from a hub repo."""
    path = Path(path_or_repo_id).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        if not (path / filename).is_file():
            raise ValueError(f"{str(path)!r} is a directory without {filename}")
        return path / filename
    name = str(path_or_repo_id)
    if path.is_absolute() or name.startswith(("./", "../", "~")) or name.count("/") > 1:
        raise ValueError(f"{name!r} is neither an existing file or directory nor a hub id ('owner/name')")
    from huggingface_hub import hf_hub_download  # hub ids only

    return Path(hf_hub_download(name, filename))


def load_backend_state_dict(
    path_or_repo_id: Union[str, os.PathLike], prefix: str = "", expected_config: Optional[str] = None
) -> Dict[str, torch.Tensor]:
    """The backend model's state dict from a saved 🤗 model (directory, safetensors file or hub id) or a Lightning
    checkpoint (local file or http(s) URL, this library's or perceiver-io 0.11's, read safely, see
    `perceiver.model.core.checkpoint`).

    :param expected_config: name of the backend config class a Lightning checkpoint must be of (None: any).

    :param prefix: keep only keys under this backend sub-module prefix (e.g. `"0."` for a Perceiver IO encoder),
        with the prefix removed.
    """
    from safetensors.torch import load_file

    from perceiver.model.core import checkpoint

    if checkpoint.is_checkpoint_path(path_or_repo_id):
        ckpt = checkpoint.read_checkpoint(path_or_repo_id, expected_config=expected_config)
        return checkpoint.backend_state_dict(ckpt, prefix)
    path = resolve_model_file(path_or_repo_id)
    try:
        state_dict = load_file(str(path))
    except Exception as e:  # safetensors raises its own SafetensorError (no subclass of OSError or ValueError)
        raise corrupt_weights_error(path, e) from e
    full_prefix = BACKEND_PREFIX + prefix
    return {k[len(full_prefix) :]: v for k, v in state_dict.items() if k.startswith(full_prefix)}


def corrupt_weights_error(path: Union[str, os.PathLike], cause: BaseException) -> ValueError:
    """The error for weights file `path` that cannot be read (truncated, corrupt, not safetensors)."""
    return ValueError(f"weights file {str(path)!r} is truncated or corrupt ({cause}); save or download it again")


def find_corrupt_weights(directory: Union[str, os.PathLike]) -> Optional[Path]:
    """The first safetensors file in `directory` whose header or size is broken, or None."""
    from safetensors import safe_open

    for path in sorted(Path(directory).glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    f.get_slice(key)
        except Exception:
            return path
    return None
