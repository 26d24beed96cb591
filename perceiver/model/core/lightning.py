"""Shared base class of the Lightning wrappers."""

import dataclasses
import typing
from typing import Any, ClassVar, List, Optional, Type

import lightning.pytorch as pl
import torch
import torch.nn as nn

from perceiver.model.core.position import check_computed_buffers
from perceiver.model.core.weights import load_backend_state_dict


class LitModel(pl.LightningModule):
    """Lightning wrapper of one backend model, built from the wrapper's init arguments.

    Subclasses set `backend_config_class` and `backend_model_class` and take the backend config's fields as init
    arguments (so that the Lightning CLI can set each of them); `create(config)` passes a config dataclass instead.

    :param params: pretrained weights: a 🤗 model directory, safetensors file or hub id saved by this library.
    :param optimizer_init: AdamW learning rate and weight decay (the Lightning CLI's `--optimizer` overrides).
    """

    backend_config_class: ClassVar[type]
    backend_model_class: ClassVar[Type[nn.Module]]

    def __init__(self, *args, params: Optional[str] = None, lr: float = 1e-3, weight_decay: float = 0.0, **kwargs):
        super().__init__()
        self.save_hyperparameters()
        self.backend_model = self.backend_model_class(self.backend_config)
        if params is not None:
            self.backend_model.load_state_dict(load_backend_state_dict(params))
            check_computed_buffers(self.backend_model)

    @property
    def backend_config(self) -> Any:
        """The backend config dataclass, built from this wrapper's hyperparameters."""
        names = [f.name for f in dataclasses.fields(self.backend_config_class)]
        return self.backend_config_class(**{name: self.hparams[name] for name in names if name in self.hparams})

    @classmethod
    def create(cls, config: Any, **kwargs: Any) -> "LitModel":
        """Creates the wrapper from a backend config dataclass; `params=path` loads pretrained weights."""
        if not isinstance(config, cls.backend_config_class):
            raise TypeError(f"config must be a {cls.backend_config_class.__name__}, got {type(config).__name__}")
        fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        return cls(**fields, **kwargs)

    @classmethod
    def load_checkpoint(cls, ckpt_url: str, **kwargs: Any) -> "LitModel":
        """Loads a checkpoint (local path or URL) written by this wrapper, on CPU.

        Checkpoints hold the config dataclasses as hyperparameters; only these classes are allowed to be unpickled
        (in addition to what `torch.load(weights_only=True)` allows).
        """
        with torch.serialization.safe_globals(_dataclasses_of(cls.backend_config_class)):
            return cls.load_from_checkpoint(str(ckpt_url), map_location="cpu", **kwargs)

    def configure_optimizers(self):
        return torch.optim.AdamW(
            [p for p in self.parameters() if p.requires_grad],
            lr=self.hparams.lr,
            weight_decay=self.hparams.weight_decay,
        )


def _dataclasses_of(config_class: type) -> List[type]:
    """`config_class` and the dataclasses of its (nested) fields."""
    result = [config_class]
    for f in dataclasses.fields(config_class):
        field_type = typing.get_type_hints(config_class)[f.name]
        if dataclasses.is_dataclass(field_type):
            result += _dataclasses_of(field_type)
    return result
