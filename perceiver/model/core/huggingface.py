"""Shared base classes of the 🤗 wrappers: a config holding the backend config dict, a model holding the backend."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Dict, Iterator, Optional, Type, Union

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
    supports_gradient_checkpointing = False
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

    def save_pretrained(self, save_directory: Union[str, os.PathLike], **kwargs) -> None:
        """As `PreTrainedModel.save_pretrained`, but a failed save leaves no half-written `save_directory`."""
        with atomic_directory(save_directory) as tmp_dir:
            super().save_pretrained(tmp_dir, **kwargs)


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
    **save_kwargs: Any,
) -> PerceiverBackendModel:
    """Converts a checkpoint of Lightning wrapper `lit_model_class` (local path or URL, or a sharded checkpoint
    directory written by FSDP) into 🤗 wrapper `model_class`, saved in `save_dir` with `preprocessor` (tokenizer or
    image processor) beside it.

    :param config_kwargs: further 🤗 config arguments, e.g. `id2label`.
    :param save_kwargs: arguments of `save_pretrained`, e.g. `push_to_hub=True`.
    """
    from perceiver.model.core.lightning import is_sharded_checkpoint, load_sharded_checkpoint

    if is_sharded_checkpoint(ckpt_url):  # a directory written by FSDP (Lightning's FSDPStrategy)
        lit_model = load_sharded_checkpoint(lit_model_class, ckpt_url)
    else:
        lit_model = lit_model_class.load_checkpoint(ckpt_url, params=None)
    config = model_class.config_class(lit_model.backend_config, **(config_kwargs or {}))
    if isinstance(preprocessor, PreTrainedTokenizerBase):
        config.tokenizer_class = type(preprocessor).__name__
    model = model_class(config, backend_model=lit_model.backend_model.eval())
    with atomic_directory(save_dir) as tmp_dir:
        model.save_pretrained(tmp_dir, **save_kwargs)
        if preprocessor is not None:
            preprocessor.save_pretrained(tmp_dir)
    return model


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
