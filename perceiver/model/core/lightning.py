"""Shared base class of the Lightning wrappers."""

import dataclasses
import typing
from typing import Any, ClassVar, List, Optional, Tuple, Type

import lightning.pytorch as pl
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from perceiver.model.core.config import config_from_dict, config_to_dict
from perceiver.model.core.position import check_computed_buffers
from perceiver.model.core.weights import load_backend_state_dict


class LitModel(pl.LightningModule):
    """Lightning wrapper of one backend model, built from the wrapper's init arguments.

    Subclasses set `backend_config_class` and `backend_model_class` and take the backend config's fields as init
    arguments (so that the Lightning CLI can set each of them); `create(config)` passes a config dataclass instead.

    :param params: pretrained weights: a 🤗 model directory, safetensors file or hub id saved by this library.
    :param optimizer_init: AdamW learning rate and weight decay (the Lightning CLI's `--optimizer` overrides).
    :param compile: compile the backend model's forward with `torch.compile` (in place: state-dict keys unchanged).
    """

    backend_config_class: ClassVar[type]
    backend_model_class: ClassVar[Type[nn.Module]]

    def __init__(
        self,
        *args,
        params: Optional[str] = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        compile: bool = False,
        **kwargs,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.backend_model = self.backend_model_class(self.backend_config)
        if params is not None:
            self.backend_model.load_state_dict(load_backend_state_dict(params))
            check_computed_buffers(self.backend_model)
        if compile:
            self.backend_model.compile()

    @property
    def backend_config(self) -> Any:
        """The backend config dataclass, built from this wrapper's hyperparameters.

        Nested configs are dataclasses when passed in Python, or dicts when the Lightning CLI saved them.
        """
        names = [f.name for f in dataclasses.fields(self.backend_config_class)]
        values = {name: self.hparams[name] for name in names if name in self.hparams}
        values = {name: config_to_dict(v) if dataclasses.is_dataclass(v) else v for name, v in values.items()}
        return config_from_dict(self.backend_config_class, values)

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


class LitClassifier(LitModel):
    """Lightning wrapper of a classifier (config with `decoder.num_classes`): cross-entropy loss and accuracy,
    logged as `{train,val,test}_{loss,acc}`. Subclasses implement `classify(batch) -> (logits, labels)`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        num_classes = self.backend_config.decoder.num_classes
        self.train_acc = MulticlassAccuracy(num_classes)
        self.val_acc = MulticlassAccuracy(num_classes)
        self.test_acc = MulticlassAccuracy(num_classes)

    def classify(self, batch: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError()

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        logits, labels = self.classify(batch)
        loss = F.cross_entropy(logits, labels)
        accuracy = getattr(self, f"{stage}_acc")
        accuracy(logits, labels)
        self.log(f"{stage}_loss", loss, prog_bar=True, sync_dist=stage != "train")
        self.log(f"{stage}_acc", accuracy, prog_bar=True)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test")


def _dataclasses_of(config_class: type) -> List[type]:
    """`config_class` and the dataclasses of its (nested) fields."""
    result = [config_class]
    for f in dataclasses.fields(config_class):
        field_type = typing.get_type_hints(config_class)[f.name]
        if dataclasses.is_dataclass(field_type):
            result += _dataclasses_of(field_type)
    return result
