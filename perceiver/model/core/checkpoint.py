"""Reading Lightning training checkpoints safely: the one place where checkpoints are unpickled and where the
layout of perceiver-io 0.11's checkpoints is translated into this library's.

Checkpoints are read with `torch.load(weights_only=True)`. Beyond tensors and plain Python types, only the config
dataclasses of this library and of perceiver-io 0.11 (by their module paths) may appear in a checkpoint's pickle;
they come back as plain dicts of their fields, so that no class or function named in a file is ever called. The
data modules' `Task` enum comes back as its name. Anything else is refused with a ValueError.

Translated from 0.11: the backend's state-dict keys (`model.*` there, `backend_model.*` here) and hyperparameters
holding config dataclasses (dicts here). Lightning's `_instantiator` and `_class_path` hyperparameters are dropped:
a checkpoint's hyperparameters are only ever passed to the constructor of the class that loads it.
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
from typing import Any, Dict, Optional, Union

import torch

from perceiver.model.core.weights import BACKEND_PREFIX

LEGACY_BACKEND_PREFIX = "model."  # perceiver-io 0.11's Lightning wrappers held the backend as `self.model`

# key under which checkpoints written by this library's Lightning wrappers record their backend config class
TASK_KEY = "perceiver_backend_config"

# what each backend config class (by name) is, for error messages
TASK_DESCRIPTIONS = {
    "MaskedLanguageModelConfig": "masked language model (LitMaskedLanguageModel)",
    "TextClassifierConfig": "text classifier (LitTextClassifier)",
    "CausalLanguageModelConfig": "causal language model (LitCausalLanguageModel)",
    "SymbolicAudioModelConfig": "symbolic audio model (LitSymbolicAudioModel)",
    "ImageClassifierConfig": "image classifier (LitImageClassifier)",
    "OpticalFlowConfig": "optical flow model",
    "CausalSequenceModelConfig": "Perceiver AR sequence model (LitCausalSequenceModel)",
}

_LIGHTNING_CLASSES = {
    "LitMaskedLanguageModel": "MaskedLanguageModelConfig",
    "LitTextClassifier": "TextClassifierConfig",
    "LitCausalLanguageModel": "CausalLanguageModelConfig",
    "LitSymbolicAudioModel": "SymbolicAudioModelConfig",
    "LitImageClassifier": "ImageClassifierConfig",
}

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


def read_checkpoint(
    path: Union[str, os.PathLike],
    map_location: Any = "cpu",
    expected_config: Optional[str] = None,
    expected_class: Optional[str] = None,
    require_state_dict: bool = True,
) -> Dict[str, Any]:
    """Reads a Lightning checkpoint from a local path or an http(s) URL, safely, in this library's layout.

    :param expected_config: name of the backend config class the checkpoint must be of (e.g.
        "CausalLanguageModelConfig"); a checkpoint of another task raises a ValueError naming both.
    :param expected_class: name of the loading class, for error messages.
    :param require_state_dict: False for the `meta.pt` of a sharded checkpoint, whose weights are stored beside it.
    :raises ValueError: if the file is no Lightning checkpoint, holds objects other than tensors, plain types and
        config dataclasses, or is a checkpoint of another task. FileNotFoundError if a local file is missing.
    """
    source = str(path)
    raw = _load(source, map_location)
    if not isinstance(raw, dict) or not isinstance(raw.get("state_dict", None if require_state_dict else {}), dict):
        raise ValueError(f"{source} is not a Lightning checkpoint (no state_dict of a LightningModule)")
    checkpoint = translate_checkpoint({"state_dict": {}, **raw})
    if expected_config is not None:
        check_task(checkpoint, expected_config, source, expected_class)
    return checkpoint


def _load(source: str, map_location: Any) -> Any:
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


def translate_checkpoint(checkpoint: Dict[str, Any]) -> Dict[str, Any]:
    """A checkpoint as read by `torch.load` in this library's layout: 0.11's `model.*` keys renamed to
    `backend_model.*`, pickled configs as dicts, and no `_instantiator` / `_class_path` hyperparameters (the class
    path is kept under `TASK_KEY` if it names a wrapper of this library)."""
    result = dict(checkpoint)
    state_dict = checkpoint["state_dict"]
    if not any(k.startswith(BACKEND_PREFIX) for k in state_dict):
        n = len(LEGACY_BACKEND_PREFIX)
        state_dict = {
            (BACKEND_PREFIX + k[n:] if k.startswith(LEGACY_BACKEND_PREFIX) else k): v for k, v in state_dict.items()
        }
    result["state_dict"] = state_dict
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    hparams.pop("_instantiator", None)
    class_path = hparams.pop("_class_path", None)
    if TASK_KEY not in result and isinstance(class_path, str):
        config = _LIGHTNING_CLASSES.get(class_path.rsplit(".", 1)[-1])
        if config is not None:
            result[TASK_KEY] = config
    result["hyper_parameters"] = plain(hparams)
    if "datamodule_hyper_parameters" in checkpoint:
        result["datamodule_hyper_parameters"] = plain(checkpoint["datamodule_hyper_parameters"])
    return result


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


def checkpoint_task(checkpoint: Dict[str, Any]) -> Optional[str]:
    """Name of the backend config class a (translated) checkpoint is of, as recorded by this library, or inferred
    from the hyperparameters of a 0.11 checkpoint; None if unknown."""
    if isinstance(checkpoint.get(TASK_KEY), str):
        return checkpoint[TASK_KEY]
    hparams = checkpoint.get("hyper_parameters") or {}
    encoder, decoder = hparams.get("encoder"), hparams.get("decoder")
    if isinstance(encoder, dict) and isinstance(decoder, dict):
        if "image_shape" in encoder:
            return "ImageClassifierConfig"
        if "num_classes" in decoder:
            return "TextClassifierConfig"
        if "vocab_size" in decoder:
            return "MaskedLanguageModelConfig"
        return None
    if "max_latents" in hparams and "vocab_size" in hparams:
        datamodule = checkpoint.get("datamodule_hyper_parameters")
        if isinstance(datamodule, dict) and datamodule:
            # text data modules of 0.11 have a tokenizer, its MIDI data modules none
            return "CausalLanguageModelConfig" if "tokenizer" in datamodule else "SymbolicAudioModelConfig"
        # 0.11's symbolic audio wrapper had no rotary layer argument, its causal language model one
        if "num_self_attention_rotary_layers" in hparams:
            return "CausalLanguageModelConfig"
        return "SymbolicAudioModelConfig"
    return None


def check_task(
    checkpoint: Dict[str, Any], expected_config: str, source: str, expected_class: Optional[str] = None
) -> None:
    """Raises a ValueError naming both tasks if `checkpoint` is of another task than `expected_config`."""
    found = checkpoint_task(checkpoint)
    if found is None or found == expected_config:
        return
    perceiver_ar = ("CausalLanguageModelConfig", "SymbolicAudioModelConfig")
    if expected_config == "CausalSequenceModelConfig" and found in perceiver_ar:
        return
    expected = TASK_DESCRIPTIONS.get(expected_config, expected_config)
    loader = f"{expected_class} loads" if expected_class else "expected"
    raise ValueError(
        f"checkpoint {source} is of a {TASK_DESCRIPTIONS.get(found, found)}, but {loader} checkpoints of a {expected}"
    )


def backend_state_dict(checkpoint: Dict[str, Any], prefix: str = "") -> Dict[str, torch.Tensor]:
    """The backend model's weights in a (translated) checkpoint; `prefix` keeps only a sub-module's keys (e.g.
    `"0."` for a Perceiver IO encoder), with the prefix removed."""
    full_prefix = BACKEND_PREFIX + prefix
    state_dict = checkpoint["state_dict"]
    return {k[len(full_prefix) :]: v for k, v in state_dict.items() if k.startswith(full_prefix)}


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
