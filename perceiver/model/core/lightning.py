"""Shared base class of the Lightning wrappers."""

import dataclasses
import inspect
import os
import re
import warnings
from pathlib import Path
from typing import Any, ClassVar, Dict, Optional, Tuple, Type, Union

import lightning.pytorch as pl
import torch
import torch.nn as nn
import torch.nn.functional as F
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from torchmetrics.classification import MulticlassAccuracy

from perceiver._compat import deprecated_aliases
from perceiver.model.core import checkpoint as ckpt
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

    :param params: pretrained weights: a 🤗 model directory, safetensors file or hub id saved by this library, or a
        Lightning checkpoint of the same task (local file or http(s) URL; also perceiver-io 0.11's), read safely.
    :param lr: learning rate of the default AdamW optimizer (with the CLI's `--optimizer`, the optimizer's applies).
    :param weight_decay: weight decay of the default AdamW optimizer (with the CLI's `--optimizer`, the optimizer's
        applies).
    :param compile: compile the backend model's forward with `torch.compile` (in place: state-dict keys unchanged).
    """

    backend_config_class: ClassVar[type]
    backend_model_class: ClassVar[Type[nn.Module]]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _document_init_args(cls)

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
            state_dict = load_backend_state_dict(params, expected_config=self.backend_config_class.__name__)
            self.backend_model.load_state_dict(state_dict)
            check_computed_buffers(self.backend_model)
        if compile:
            self.backend_model.compile()

    @property
    def model(self) -> nn.Module:
        """perceiver-io 0.11's name of `backend_model` (deprecated)."""
        warnings.warn(
            f"{type(self).__name__}.model is deprecated (perceiver-io 0.11), use {type(self).__name__}.backend_model",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.backend_model

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
    def load_checkpoint(cls, ckpt_url: Union[str, os.PathLike], **kwargs: Any) -> "LitModel":
        """Loads a checkpoint of this wrapper's task (local path or http(s) URL; also perceiver-io 0.11's, or a sharded
        checkpoint directory written by FSDP) on CPU; see `load_from_checkpoint`."""
        if ckpt.is_sharded_checkpoint(ckpt_url):
            return load_sharded_checkpoint(cls, ckpt_url)
        return cls.load_from_checkpoint(ckpt_url, map_location="cpu", **kwargs)

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: Union[str, os.PathLike],
        map_location: Any = None,
        hparams_file: Optional[str] = None,
        strict: Optional[bool] = None,
        weights_only: Optional[bool] = None,
        **kwargs: Any,
    ) -> "LitModel":
        """Loads a checkpoint (local path or http(s) URL) written by this wrapper or by its perceiver-io 0.11
        predecessor.

        Unlike Lightning's method, the file is always read with `weights_only=True` and only this library's config
        classes allowed (`weights_only` is ignored; see `perceiver.model.core.checkpoint`), a checkpoint of another
        task raises a ValueError, and the wrapper is built from the checkpoint's hyperparameters updated with
        `kwargs` (`params` defaults to None: the weights come from the checkpoint).

        :param map_location: device to load the weights to (default: CPU).
        """
        if hparams_file is not None:
            raise ValueError(f"hparams_file={hparams_file!r} is not supported (the checkpoint has the hyperparameters)")
        checkpoint = ckpt.read_checkpoint(
            checkpoint_path,
            expected_config=cls.backend_config_class.__name__,
            expected_class=cls.__name__,
        )
        hparams = without_params(checkpoint.get("hyper_parameters", {}))
        hparams.update(kwargs)
        parameters = inspect.signature(cls.__init__).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            hparams = {k: v for k, v in hparams.items() if k in parameters}
        model = cls(**hparams)
        model.on_load_checkpoint(checkpoint)
        model.load_state_dict(checkpoint["state_dict"], strict=True if strict is None else strict)
        if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
            model = model.to(map_location)
        return model

    def on_save_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        # the task of a checkpoint, so that loading it into a wrapper of another task fails clearly
        checkpoint[ckpt.TASK_KEY] = self.backend_config_class.__name__

    def setup(self, stage: str) -> None:
        # the trainer's `ckpt_path` (resume, validate, test) is read by its strategy's checkpoint IO, which Lightning
        # unpickles without restriction for http(s) URLs: the default one is replaced by one that reads safely
        strategy = self.trainer.strategy
        if type(strategy.checkpoint_io) is TorchCheckpointIO:
            strategy.checkpoint_io = SafeCheckpointIO(self.backend_config_class.__name__, type(self).__name__)

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(
            params,
            lr=self.hparams.lr,
            weight_decay=self.hparams.weight_decay,
            fused=fused_optimizer_supported(params),
        )


# optimizers with a fused kernel (one kernel for all parameters instead of a loop over them; on CPU about 2.5x
# faster than the default loop for AdamW): chosen when the user leaves `fused` and `foreach` unset
FUSED_OPTIMIZERS = ("torch.optim.Adam", "torch.optim.AdamW", "torch.optim.adam.Adam", "torch.optim.adamw.AdamW")


def fused_optimizer_supported(params) -> Optional[bool]:
    """True when `params` are floating point tensors on CPU or CUDA (devices with fused Adam/AdamW kernels), else
    None (the optimizer's default)."""
    params = list(params)
    ok = params and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return True if ok else None


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

    def setup(self, stage: str) -> None:
        # class names of the training data, for `convert_checkpoint`, unless given as the `id2label` hyperparameter;
        # hyperparameters are written into each checkpoint when it is saved
        datamodule = getattr(self.trainer, "datamodule", None)
        if stage == "fit" and self.hparams.get("id2label") is None and hasattr(datamodule, "id2label"):
            self.hparams["id2label"] = dict(datamodule.id2label)

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


def without_params(hparams: Dict[str, Any]) -> Dict[str, Any]:
    """`hparams` with `params` (pretrained weights, also of nested configs such as `encoder.params`) set to None: a
    checkpoint's own weights replace them, and the files they named may be gone."""
    result = {}
    for name, value in hparams.items():
        if name == "params":
            value = None
        elif isinstance(value, dict):
            value = without_params(value)
        result[name] = value
    return result


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO that reads checkpoints (local or http(s)) with `perceiver.model.core.checkpoint`:
    `weights_only=True` with only this library's config classes allowed, 0.11 checkpoints translated, and checkpoints
    of another task refused."""

    def __init__(self, expected_config: Optional[str] = None, expected_class: Optional[str] = None):
        self.expected_config = expected_config
        self.expected_class = expected_class

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: Optional[bool] = None) -> Dict:
        return ckpt.read_checkpoint(
            path,
            map_location=map_location if map_location is not None else "cpu",
            expected_config=self.expected_config,
            expected_class=self.expected_class,
        )


def load_sharded_checkpoint(lit_model_class: Type[LitModel], path: Any) -> LitModel:
    """Loads a sharded (FSDP) checkpoint directory of `lit_model_class` in this process, on CPU, without a process
    group: the hyperparameters from `meta.pt`, the model's shards (saved under key `model`) from the
    `torch.distributed.checkpoint` files. Only the config dataclasses and the checkpoint format's own metadata classes
    are unpickled."""
    import torch.distributed.checkpoint as dcp

    path = Path(str(path)).expanduser()
    if not ckpt.is_sharded_checkpoint(path):
        raise ValueError(f"path={str(path)!r} is not a sharded checkpoint directory (with .metadata and meta.pt)")
    meta = ckpt.read_checkpoint(
        path / ckpt.SHARDED_METADATA,
        expected_config=lit_model_class.backend_config_class.__name__,
        expected_class=lit_model_class.__name__,
        require_state_dict=False,
    )
    lit_model = lit_model_class(**{**without_params(meta["hyper_parameters"]), "params": None})
    state_dict = lit_model.state_dict()
    reader = ckpt.sharded_checkpoint_reader(path)
    reader.read_metadata()  # checked here, so that a bad file raises its own error, not one wrapped by the loader
    # one process, no process group: `no_dist` where torch has it (torch < 2.7 infers it)
    no_dist = {"no_dist": True} if "no_dist" in inspect.signature(dcp.load).parameters else {}
    dcp.load({"model": state_dict}, storage_reader=reader, **no_dist)
    lit_model.load_state_dict(state_dict)
    return lit_model


# perceiver-io 0.11 names of this module (resolved lazily: the causal sequence model's module imports this one)
__getattr__ = deprecated_aliases(
    __name__,
    {
        "LitPerceiverIO": ("perceiver.model.core.lightning.LitModel", "perceiver.model.core.lightning:LitModel"),
        "LitCausalSequenceModel": (
            "perceiver.model.core.perceiver_ar.lightning.LitCausalSequenceModel",
            "perceiver.model.core.perceiver_ar.lightning:LitCausalSequenceModel",
        ),
        "is_checkpoint": (
            "perceiver.model.core.checkpoint.is_checkpoint_path",
            "perceiver.model.core.checkpoint:is_checkpoint_path",
        ),
    },
)
