"""Shared base class of the Lightning wrappers."""

import dataclasses
import inspect
import pickle
import re
import typing
from pathlib import Path
from typing import Any, ClassVar, Dict, List, Optional, Tuple, Type

import lightning.pytorch as pl
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from perceiver.model.core.config import config_from_dict, config_to_dict
from perceiver.model.core.position import check_computed_buffers
from perceiver.model.core.weights import load_backend_state_dict

_PARAM = re.compile(r":param (\w+):(.*?)(?=\n\s*:param |\n\s*:cvar |\Z)", re.DOTALL)


def _param_docs(*docstrings: Optional[str]) -> Dict[str, str]:
    """`:param name: description` entries of docstrings (first one wins), descriptions on one line."""
    docs: Dict[str, str] = {}
    for docstring in docstrings:
        for name, text in _PARAM.findall(inspect.cleandoc(docstring or "")):
            docs.setdefault(name, " ".join(text.split()))
    return docs


def _document_init_args(cls: type) -> None:
    """Adds `:param` entries to `cls.__doc__` for init arguments of `cls` that are fields of its backend config,
    described in the config dataclass docstrings (of the class and its bases) but not in the docstrings of `cls`."""
    config_class = getattr(cls, "backend_config_class", None)
    if config_class is None or not dataclasses.is_dataclass(config_class):
        return
    own = _param_docs(cls.__doc__, cls.__init__.__doc__)
    config_docs = _param_docs(*(c.__doc__ for c in config_class.__mro__ if dataclasses.is_dataclass(c)))
    fields = {f.name for f in dataclasses.fields(config_class)}
    names = [n for n in inspect.signature(cls.__init__).parameters if n in fields and n not in own and n in config_docs]
    if names:
        entries = "\n".join(f":param {name}: {config_docs[name]}" for name in names)
        cls.__doc__ = f"{inspect.cleandoc(cls.__doc__ or '')}\n\n{entries}\n"


class LitModel(pl.LightningModule):
    """Lightning wrapper of one backend model, built from the wrapper's init arguments.

    Subclasses set `backend_config_class` and `backend_model_class` and take the backend config's fields as init
    arguments (so that the Lightning CLI can set each of them); `create(config)` passes a config dataclass instead.
    A subclass's docstring gets the config's `:param` descriptions of the init arguments it does not describe itself
    (the Lightning CLI's `--help` shows them).

    :param params: pretrained weights: a 🤗 model directory, safetensors file or hub id saved by this library.
    :param lr: learning rate of the default AdamW optimizer (with the CLI's `--optimizer`, the optimizer's applies).
    :param weight_decay: weight decay of the default AdamW optimizer (with the CLI's `--optimizer`, the optimizer's
        applies).
    """

    backend_config_class: ClassVar[type]
    backend_model_class: ClassVar[Type[nn.Module]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _document_init_args(cls)

    def __init__(self, *args, params: Optional[str] = None, lr: float = 1e-3, weight_decay: float = 0.0, **kwargs):
        super().__init__()
        self.save_hyperparameters()
        self.backend_model = self.backend_model_class(self.backend_config)
        if params is not None:
            self.backend_model.load_state_dict(load_backend_state_dict(params))
            check_computed_buffers(self.backend_model)

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


SHARDED_METADATA = "meta.pt"
"""The file of a sharded checkpoint directory with everything but the model and optimizer states (Lightning's)."""


def is_sharded_checkpoint(path: Any) -> bool:
    """Whether `path` is a sharded checkpoint directory as Lightning's `FSDPStrategy(state_dict_type="sharded")` writes
    it: `torch.distributed.checkpoint` files (`.metadata`, `__<rank>_0.distcp`) and `meta.pt`."""
    path = Path(str(path)).expanduser()
    return path.is_dir() and (path / SHARDED_METADATA).is_file() and (path / ".metadata").is_file()


def load_sharded_checkpoint(lit_model_class: Type[LitModel], path: Any) -> LitModel:
    """Loads a sharded (FSDP) checkpoint directory of `lit_model_class` in this process, on CPU, without a process
    group: the hyperparameters from `meta.pt`, the model's shards (saved under key `model`) from the
    `torch.distributed.checkpoint` files. Only the config dataclasses and the checkpoint format's own metadata classes
    are unpickled."""
    import torch.distributed.checkpoint as dcp

    path = Path(str(path)).expanduser()
    if not is_sharded_checkpoint(path):
        raise ValueError(f"path={str(path)!r} is not a sharded checkpoint directory (with .metadata and meta.pt)")
    with torch.serialization.safe_globals(_dataclasses_of(lit_model_class.backend_config_class)):
        checkpoint = torch.load(path / SHARDED_METADATA, map_location="cpu", weights_only=True)
    hparams = {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if k != "_instantiator"}
    lit_model = lit_model_class(**{**hparams, "params": None})
    state_dict = lit_model.state_dict()
    reader = _trusted_reader(path)
    reader.read_metadata()  # checked here, so that a bad file raises its own error, not one wrapped by the loader
    dcp.load({"model": state_dict}, storage_reader=reader, no_dist=True)
    lit_model.load_state_dict(state_dict)
    return lit_model


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


def _trusted_reader(path: Path):
    """A `torch.distributed.checkpoint` reader of `path` that unpickles the metadata with `_MetadataUnpickler`."""
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
