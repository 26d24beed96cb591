"""Reading checkpoints safely: the one place where checkpoint files are unpickled. It holds no model code, so that
every layer (data modules restoring their state, the model's checkpoint translation, the scripts) reads checkpoints
through it.

Checkpoints are read with `torch.load(weights_only=True)`. Beyond tensors and plain Python types, only the config
dataclasses of this library and of perceiver-io 0.11 (named by their module paths, never imported) may appear in a
checkpoint's pickle; they come back as plain dicts of their fields, so that no class or function named in a file is
ever called. The text data modules' `Task` enum comes back as its name. Anything else is refused with a ValueError.
The metadata of sharded (FSDP) checkpoint directories is unpickled with an allow-list too.

The translation of perceiver-io 0.11's checkpoint layout into this library's (state-dict keys, task detection) is
model knowledge and lives in `perceiver.model.core.checkpoint`, on top of this module.
"""

import dataclasses
import enum
import io
import os
import pickle
import re
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Dict, Union

import torch

# config dataclasses that may be unpickled, by module and class names of this library and of perceiver-io 0.11
# (where 0.11 had a class in a single-file module, e.g. `perceiver.model.text.mlm`, that path is listed too)
_CONFIG_CLASSES = {
    "perceiver.model.core.config": [
        "EncoderConfig",
        "DecoderConfig",
        "ClassificationDecoderConfig",
        "PerceiverIOConfig",
        "PerceiverARConfig",
        "PerceiverConfig",
        "CausalSequenceModelConfig",
    ],
    "perceiver.model.core.perceiver_ar": ["CausalSequenceModelConfig"],
    "perceiver.model.core.perceiver_ar.backend": ["CausalSequenceModelConfig"],
    "perceiver.model.core.modules": ["CausalSequenceModelConfig"],
    "perceiver.model.text.common.backend": ["TextEncoderConfig"],
    "perceiver.model.text.common": ["TextEncoderConfig"],
    "perceiver.model.text.mlm.backend": ["TextDecoderConfig", "MaskedLanguageModelConfig"],
    "perceiver.model.text.mlm": ["TextDecoderConfig", "MaskedLanguageModelConfig"],
    "perceiver.model.text.classifier.backend": ["TextClassifierConfig"],
    "perceiver.model.text.classifier": ["TextClassifierConfig"],
    "perceiver.model.text.clm.backend": ["CausalLanguageModelConfig"],
    "perceiver.model.text.clm": ["CausalLanguageModelConfig"],
    "perceiver.model.vision.image_classifier.backend": ["ImageEncoderConfig", "ImageClassifierConfig"],
    "perceiver.model.vision.image_classifier": ["ImageEncoderConfig", "ImageClassifierConfig"],
    "perceiver.model.vision.optical_flow.backend": [
        "OpticalFlowEncoderConfig",
        "OpticalFlowDecoderConfig",
        "OpticalFlowConfig",
    ],
    "perceiver.model.audio.symbolic.backend": ["SymbolicAudioModelConfig"],
}
# the text data modules' task enum (in checkpoints' `datamodule_hyper_parameters`)
_TASK_ENUMS = ["perceiver.data.text.common.Task", "perceiver.data.text.Task"]


class PickledConfig:
    """What a pickled config dataclass is read as: only its fields (`state`), never its class."""

    def __init__(self):
        self.state: Dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"config state must be a dict, got {type(state).__name__}")
        self.state = dict(state)


def _task_name(value: Any) -> Any:
    """What a pickled member of the text data modules' `Task` enum is read as: its name ("mlm", "clm", "clf"), also
    where the enum's values were numbers."""
    return {0: "mlm", 1: "clm", 2: "clf"}.get(value, value) if not isinstance(value, bool) else value


def allowed_globals() -> list:
    """The globals a checkpoint's pickle may name (for `torch.serialization.safe_globals`)."""
    result: list = [(PickledConfig, f"{module}.{name}") for module, names in _CONFIG_CLASSES.items() for name in names]
    result += [(_task_name, name) for name in _TASK_ENUMS]
    return result


def is_url(path: Union[str, os.PathLike]) -> bool:
    return str(path).startswith(("http://", "https://"))


def is_checkpoint_path(path: Union[str, os.PathLike]) -> bool:
    """Whether `path` names a Lightning checkpoint (a URL or a local file that is not a safetensors file) rather
    than a saved 🤗 model (a directory, a safetensors file or a hub id)."""
    if is_url(path):
        return True
    local = Path(os.path.expanduser(str(path)))
    return local.is_file() and local.suffix != ".safetensors"


def load_checkpoint_file(source: str, map_location: Any = "cpu") -> Any:
    """`torch.load` of a local file or an http(s) URL with `weights_only=True` and only `allowed_globals()`; a file
    that is no checkpoint or holds other objects raises a ValueError, a missing local file a FileNotFoundError."""
    if is_url(source):
        with urllib.request.urlopen(source, timeout=120) as response:  # noqa: S310 (http(s) only, see is_url)
            f: Any = io.BytesIO(response.read())
    else:
        local = Path(os.path.expanduser(source))
        if not local.is_file():
            raise FileNotFoundError(f"checkpoint {source} does not exist or is not a file")
        f = str(local)
    try:
        with torch.serialization.safe_globals(allowed_globals()):
            return torch.load(f, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        message = str(e)
        if re.search(r"GLOBAL|unrecognized function|Unsupported class|Can only build", message):
            found = re.search(r"(?:unsupported GLOBAL|global: GLOBAL|unrecognized function) ([^\s]+)", message)
            what = f" ({found.group(1)})" if found else ""
            raise ValueError(
                f"refused to load checkpoint {source}: it holds an object{what} that is not allowed; only tensors, "
                "plain Python types and the config dataclasses of perceiver-io are read from checkpoints"
            ) from None
        raise ValueError(f"{source} is not a Lightning checkpoint ({message.splitlines()[0]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, UnicodeDecodeError, OSError) as e:
        first_line = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{source} is not a Lightning checkpoint ({first_line})") from None


def read_lightning_checkpoint(
    path: Union[str, os.PathLike], map_location: Any = "cpu", require_state_dict: bool = True
) -> Dict[str, Any]:
    """A Lightning checkpoint (local path or http(s) URL) read safely, as stored, except that its
    `hyper_parameters` and `datamodule_hyper_parameters` are plain (config dataclasses as dicts, enums as values).

    :param require_state_dict: False for the `meta.pt` of a sharded checkpoint, whose weights are stored beside it.
    :raises ValueError: if the file is no Lightning checkpoint or holds objects other than tensors, plain types and
        config dataclasses. FileNotFoundError if a local file is missing.
    """
    source = str(path)
    raw = load_checkpoint_file(source, map_location)
    if not isinstance(raw, dict) or not isinstance(raw.get("state_dict", None if require_state_dict else {}), dict):
        raise ValueError(f"{source} is not a Lightning checkpoint (no state_dict of a LightningModule)")
    checkpoint = {"state_dict": {}, **raw}
    for key in ("hyper_parameters", "datamodule_hyper_parameters"):
        if key in checkpoint:
            checkpoint[key] = plain(checkpoint[key])
    return checkpoint


def plain(value: Any) -> Any:
    """`value` with config dataclasses (read or live) turned into dicts and enums into their values."""
    if isinstance(value, PickledConfig):
        return {k: plain(v) for k, v in value.state.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value


# ---------------------------------------------------------------- sharded (FSDP) checkpoint directories

SHARDED_METADATA = "meta.pt"
"""The file of a sharded checkpoint directory with everything but the model and optimizer states (Lightning's)."""


def is_sharded_checkpoint(path: Any) -> bool:
    """Whether `path` is a sharded checkpoint directory as Lightning's `FSDPStrategy(state_dict_type="sharded")` writes
    it: `torch.distributed.checkpoint` files (`.metadata`, `__<rank>_0.distcp`) and `meta.pt`."""
    path = Path(str(path)).expanduser()
    return path.is_dir() and (path / SHARDED_METADATA).is_file() and (path / ".metadata").is_file()


class _MetadataUnpickler(pickle.Unpickler):
    """Unpickles `torch.distributed.checkpoint` metadata: only its metadata classes, torch sizes, dtypes and layouts
    and paths; anything else raises an `UnpicklingError` naming it."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = (
            module == "torch.distributed.checkpoint.metadata"
            or (module == "torch.distributed.checkpoint.filesystem" and name == "_StorageInfo")
            or (module == "torch" and (name == "Size" or isinstance(getattr(torch, name, None), torch.dtype)))
            or (module == "torch.serialization" and name == "_get_layout")
            or (module == "pathlib" and name in ("Path", "PosixPath", "WindowsPath"))
            or (module == "collections" and name == "OrderedDict")
        )
        if not allowed:
            raise pickle.UnpicklingError(f"sharded checkpoint metadata refers to {module}.{name}, which is not allowed")
        return super().find_class(module, name)


def sharded_checkpoint_reader(path: Path):
    """A `torch.distributed.checkpoint` reader of sharded checkpoint directory `path` that unpickles its metadata
    with `_MetadataUnpickler`."""
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import StorageMeta, TensorStorageMetadata

    class TrustedMetadataReader(FileSystemReader):
        def read_metadata(self, *args: Any, **kwargs: Any):
            with open(Path(self.path) / ".metadata", "rb") as f:
                metadata = _MetadataUnpickler(f).load()
            # model entries must be tensors: other entries are torch.load-ed without weights_only by the loader
            for key, entry in metadata.state_dict_metadata.items():
                if key.startswith("model.") and not isinstance(entry, TensorStorageMetadata):
                    raise ValueError(f"sharded checkpoint entry {key!r} is not a tensor")
            if getattr(metadata, "storage_meta", None) is None:
                metadata.storage_meta = StorageMeta()
            metadata.storage_meta.load_id = self.load_id
            return metadata

    return TrustedMetadataReader(path)
