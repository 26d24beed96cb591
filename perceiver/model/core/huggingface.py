"""Shared base classes of the 🤗 wrappers: a config holding the backend config dict, a model holding the backend."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, Iterator, Optional, Type, Union

import torch.nn as nn
from transformers import (
    AutoConfig,
    AutoTokenizer,
    PerceiverTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from perceiver.model.core.config import config_from_dict, config_to_dict
from perceiver.model.core.position import check_computed_buffers


class PerceiverBackendConfig(PretrainedConfig):
    """🤗 config that stores a backend config dataclass as the dict `model_config` (the 0.11 format).

    Subclasses set `model_type` and `backend_config_class`.
    """

    backend_config_class: ClassVar[type]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # transformers 5 turns config subclasses into keyword-only dataclasses; keep this class's init, which takes
        # the backend config positionally
        cls.__init__ = PerceiverBackendConfig.__init__

    def __init__(self, backend_config: Optional[Any] = None, **kwargs):
        model_config = kwargs.pop("model_config", None)
        if backend_config is None:
            if model_config is None:
                backend_config = self.backend_config_class()
            else:
                backend_config = config_from_dict(self.backend_config_class, model_config)
        elif not isinstance(backend_config, self.backend_config_class):
            raise TypeError(
                f"backend_config must be a {self.backend_config_class.__name__}, got {type(backend_config).__name__}"
            )
        self.model_config = config_to_dict(backend_config)
        super().__init__(**kwargs)

    @property
    def backend_config(self) -> Any:
        """The backend config dataclass (a new instance built from `model_config`)."""
        return config_from_dict(self.backend_config_class, self.model_config)


class PerceiverBackendModel(PreTrainedModel):
    """🤗 model that wraps exactly one backend model as `self.backend_model`.

    Subclasses set `config_class` and `backend_model_class`. The backend model initializes its own parameters, so
    `_init_weights` leaves modules alone.
    """

    backend_model_class: ClassVar[Type[nn.Module]]
    base_model_prefix = "backend_model"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: PerceiverBackendConfig, backend_model: Optional[nn.Module] = None):
        super().__init__(config)
        self.backend_model = self.backend_model_class(config.backend_config) if backend_model is None else backend_model
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        pass

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """As `PreTrainedModel.from_pretrained`, and checks persisted position encodings against the config."""
        model = super().from_pretrained(*args, **kwargs)
        check_computed_buffers(model.backend_model)
        return model

    def get_input_embeddings(self) -> nn.Module:
        """The token embedding of text and Perceiver AR models (used by 🤗 for gradient checkpointing and adapters)."""
        backend = self.backend_model
        adapter = getattr(getattr(backend, "encoder", backend), "input_adapter", None)
        embedding = getattr(adapter, "txt_embedding", None)
        if embedding is None:
            raise NotImplementedError(f"{type(self).__name__} has no token embedding")
        return embedding

    def _set_gradient_checkpointing(
        self, enable: bool = True, gradient_checkpointing_func: Optional[Callable] = None, every_n_layers: int = 1
    ) -> None:
        """Maps 🤗 gradient checkpointing (`gradient_checkpointing_enable()`, the Trainer's
        `gradient_checkpointing=True`) onto the backend's activation checkpointing.

        The backend checkpoints each attention layer with `torch.utils.checkpoint` (non-reentrant) itself, so
        `gradient_checkpointing_func` is not used. Like 🤗 models, the setting is not saved with the model.
        """
        if every_n_layers != 1:
            raise ValueError(f"every_n_layers={every_n_layers} is not supported, only 1 (every attention layer)")
        set_activation_checkpointing(self.backend_model, enable)

    @property
    def is_activation_checkpointing(self) -> bool:
        """Whether the backend checkpoints activations (set by `gradient_checkpointing_enable()` or its config)."""
        return any(getattr(m, "activation_checkpointing", False) for m in self.backend_model.modules())

    @property
    def is_gradient_checkpointing(self) -> bool:
        return self.is_activation_checkpointing

    def save_pretrained(self, save_directory: Union[str, os.PathLike], **kwargs) -> None:
        """As `PreTrainedModel.save_pretrained`, but a failed save leaves no half-written `save_directory`."""
        with atomic_directory(save_directory) as tmp_dir:
            super().save_pretrained(tmp_dir, **kwargs)


def set_activation_checkpointing(backend_model: nn.Module, enable: bool) -> None:
    """Turns activation checkpointing of every layer of `backend_model` that supports it on or off."""
    found = False
    for module in backend_model.modules():
        if hasattr(module, "activation_checkpointing"):
            module.activation_checkpointing = enable
            found = True
    if not found:
        raise ValueError(f"{type(backend_model).__name__} has no layers that support activation checkpointing")


PERCEIVER_BYTES = "perceiver-bytes"
"""Tokenizer name of the Perceiver UTF-8 bytes tokenizer (`transformers.PerceiverTokenizer`, needs no files)."""


def load_tokenizer(name: Optional[str] = None, **kwargs: Any):
    """Tokenizer `name` (hub id or local directory), or the UTF-8 bytes tokenizer for None / "perceiver-bytes"."""
    if name is None or name == PERCEIVER_BYTES:
        return PerceiverTokenizer(**kwargs)
    return AutoTokenizer.from_pretrained(os.path.expanduser(str(name)), verbose=False, **kwargs)


def convert_lightning_checkpoint(
    lit_model_class: type,
    model_class: Type[PerceiverBackendModel],
    save_dir: Union[str, os.PathLike],
    ckpt_url: Union[str, os.PathLike],
    preprocessor: Any = None,
    config_kwargs: Optional[Dict[str, Any]] = None,
    generation_token_ids: Optional[Dict[str, int]] = None,
    **save_kwargs: Any,
) -> PerceiverBackendModel:
    """Converts a checkpoint of Lightning wrapper `lit_model_class` (local path or URL, or a sharded checkpoint
    directory written by FSDP) into 🤗 wrapper `model_class`, saved in `save_dir` with `preprocessor` (tokenizer or
    image processor) beside it.

    :param config_kwargs: further 🤗 config arguments, e.g. `id2label`. Default `id2label`: the one saved in the
        checkpoint's hyperparameters, if any.
    :param generation_token_ids: `pad_token_id`, `eos_token_id`, `bos_token_id` of the saved generation config of a
        generative model. Default: those the tokenizer `preprocessor` has.
    :param save_kwargs: arguments of `save_pretrained`, e.g. `push_to_hub=True`.
    """
    lit_model = lit_model_class.load_checkpoint(ckpt_url, params=None)
    config_kwargs = dict(config_kwargs or {})
    if "id2label" not in config_kwargs and lit_model.hparams.get("id2label") is not None:
        id2label = {int(k): str(v) for k, v in lit_model.hparams["id2label"].items()}
        config_kwargs.update(id2label=id2label, label2id={v: k for k, v in id2label.items()})
    config = model_class.config_class(lit_model.backend_config, **config_kwargs)
    if isinstance(preprocessor, PreTrainedTokenizerBase):
        config.tokenizer_class = type(preprocessor).__name__
    model = model_class(config, backend_model=lit_model.backend_model.eval())
    if model.can_generate():
        if generation_token_ids is None:
            generation_token_ids = special_token_ids(preprocessor)
        for name, token_id in generation_token_ids.items():
            setattr(model.generation_config, name, token_id)
    with atomic_directory(save_dir) as tmp_dir:
        model.save_pretrained(tmp_dir, **save_kwargs)
        if preprocessor is not None:
            preprocessor.save_pretrained(tmp_dir)
    return model


def special_token_ids(tokenizer: Any) -> Dict[str, int]:
    """The `pad_token_id`, `eos_token_id` and `bos_token_id` that `tokenizer` defines (none for None)."""
    names = ("pad_token_id", "eos_token_id", "bos_token_id")
    return {name: getattr(tokenizer, name) for name in names if getattr(tokenizer, name, None) is not None}


def register_auto_class(config_class: Type[PerceiverBackendConfig], model_class: type, auto_class: Any = None) -> None:
    """Registers `config_class` with `AutoConfig` and `model_class` with `auto_class` (e.g. AutoModelForMaskedLM)."""
    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    if auto_class is not None:
        auto_class.register(config_class, model_class, exist_ok=True)


@contextlib.contextmanager
def atomic_directory(save_dir: Union[str, os.PathLike]) -> Iterator[Path]:
    """Yields a temporary directory next to `save_dir` that replaces `save_dir` only if the block succeeds.

    Files of an existing `save_dir` are kept unless the new directory has a file of the same name.
    """
    save_dir = Path(save_dir)
    save_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{save_dir.name}.", dir=save_dir.parent))
    try:
        yield tmp_dir
        save_dir.mkdir(exist_ok=True)
        for item in tmp_dir.iterdir():
            target = save_dir / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
