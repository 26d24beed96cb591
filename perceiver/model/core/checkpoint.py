"""The layout of Lightning training checkpoints: perceiver-io 0.11's translated into this library's, the task a
checkpoint is of, and the backend's weights in it. Files are read by `perceiver.common.checkpoint` (the one place
where checkpoints are unpickled, safely; its names are re-exported here).

Translated from 0.11: the backend's state-dict keys (`model.*` there, `backend_model.*` here) and hyperparameters
holding config dataclasses (dicts here). Lightning's `_instantiator` and `_class_path` hyperparameters are dropped:
a checkpoint's hyperparameters are only ever passed to the constructor of the class that loads it.
"""

import os
from typing import Any, Dict, Optional, Union

import torch

from perceiver.common.checkpoint import (  # noqa: F401 (re-exported: this module's names before the move)
    SHARDED_METADATA,
    PickledConfig,
    allowed_globals,
    is_checkpoint_path,
    is_sharded_checkpoint,
    is_url,
    load_checkpoint_file,
    plain,
    read_lightning_checkpoint,
    sharded_checkpoint_reader,
)
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
    checkpoint = translate_checkpoint(read_lightning_checkpoint(source, map_location, require_state_dict))
    if expected_config is not None:
        check_task(checkpoint, expected_config, source, expected_class)
    return checkpoint


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
