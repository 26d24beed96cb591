"""Shared base classes of the 🤗 wrappers: a config holding the backend config dict, a model holding the backend."""

import contextlib
import dataclasses
import importlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, Iterator, Optional, Sequence, Type, Union

import torch.nn as nn
from transformers import (
    AutoConfig,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from perceiver._compat import deprecated_aliases
from perceiver.model.core.config import config_from_dict, config_to_dict
from perceiver.model.core.position import check_computed_buffers
from perceiver.model.core.saving import GENERATED_CARD_MARK, AtomicSave
from perceiver.model.core.utils import ActivationCheckpointing
from perceiver.model.core.weights import corrupt_weights_error, find_corrupt_weights
from perceiver.processing.text import PERCEIVER_BYTES, load_tokenizer  # noqa: F401 (re-exported)


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
    def from_checkpoint(cls, ckpt_path: Union[str, os.PathLike]) -> "PerceiverBackendModel":
        """perceiver-io 0.11's in-memory conversion of a Lightning checkpoint of this task (local path or URL, read
        safely; 0.11's too) into this 🤗 model. Deprecated: `convert_checkpoint` of the task saves it, with its
        tokenizer or image processor, and `from_pretrained` loads it."""
        warnings.warn(
            f"{cls.__name__}.from_checkpoint is deprecated (perceiver-io 0.11), use convert_checkpoint(save_dir, "
            f"ckpt_path) of the task and {cls.__name__}.from_pretrained(save_dir)",
            DeprecationWarning,
            stacklevel=2,
        )
        lit_model = _lit_model_class(cls).load_checkpoint(ckpt_path, params=None)
        return cls(cls.config_class(lit_model.backend_config), backend_model=lit_model.backend_model).eval()

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """As `PreTrainedModel.from_pretrained`, and checks persisted position encodings against the config."""
        try:
            model = super().from_pretrained(*args, **kwargs)
        except Exception as e:
            # safetensors' errors do not name the file (e.g. "incomplete metadata" for a truncated download)
            if type(e).__name__ != "SafetensorError":
                raise
            location = args[0] if args else kwargs.get("pretrained_model_name_or_path")
            bad = find_corrupt_weights(location) if location is not None and os.path.isdir(location) else None
            raise corrupt_weights_error(bad or location, e) from e
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
        return any(m.checkpointing.enabled for m in checkpointing_modules(self.backend_model))

    @property
    def is_gradient_checkpointing(self) -> bool:
        return self.is_activation_checkpointing

    def save_pretrained(self, save_directory: Union[str, os.PathLike], push_to_hub: bool = False, **kwargs) -> None:
        """As `PreTrainedModel.save_pretrained`, but all or nothing: `save_directory` holds exactly the previous
        model or exactly this one, also when the process is killed (see `perceiver.model.core.saving`). Files of
        the previous model that this one lacks (e.g. single-file weights replaced by shards) are removed, files
        the user put there are kept. A model card (README.md) is written unless the user has one.

        With `push_to_hub=True` the saved directory is uploaded to `repo_id` (default: the name of
        `save_directory`), with `commit_message`, `private`, `token`, `create_pr` as in transformers.
        """
        hub = _pop_hub_kwargs(kwargs) if push_to_hub else None
        token = kwargs.pop("token", None)
        if hub is not None:
            hub["token"] = token
        active = _ACTIVE_SAVES.get(Path(os.path.abspath(save_directory)))
        if active is None:
            with atomic_directory(save_directory) as tmp_dir:
                self.save_pretrained(tmp_dir, push_to_hub=push_to_hub, **(hub or {}), **kwargs)
            return
        # writing into the temporary directory of an atomic save: the upload waits until the save is complete
        PreTrainedModel.save_pretrained(self, save_directory, **kwargs)
        active.model = self
        if hub is not None:
            active.hub = hub


PIPELINE_TAGS = {
    "perceiver-io-masked-language-model": "fill-mask",
    "perceiver-io-text-classifier": "text-classification",
    "perceiver-ar-causal-language-model": "text-generation",
    "perceiver-io-image-classifier": "image-classification",
}
"""Hub pipeline tags of the model types (optical flow and symbolic audio have no hub tag: "other")."""

_HUB_KWARGS = ("repo_id", "commit_message", "commit_description", "private", "create_pr", "revision")
_ACTIVE_SAVES: Dict[Path, AtomicSave] = {}


def _pop_hub_kwargs(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    return {name: kwargs.pop(name) for name in _HUB_KWARGS if name in kwargs}


def model_card(model: PreTrainedModel, base_model: Optional[str] = None, details: Sequence[str] = ()) -> str:
    """A model card (README.md with hub metadata) of `model`: library, pipeline tag, source model and `details`
    (lines on how it was converted or trained)."""
    model_type = model.config.model_type
    meta = [
        "library_name: perceiver-io",
        f"pipeline_tag: {PIPELINE_TAGS.get(model_type, 'other')}",
        "tags:",
        "- perceiver-io",
        f"- {model_type}",
    ]
    if base_model is not None:
        meta.append(f"base_model: {base_model}")
    cls = type(model)
    package = cls.__module__.rsplit(".", 1)[0]
    num_params = sum(p.numel() for p in model.parameters())
    lines = ["---", *meta, "---", GENERATED_CARD_MARK, "", f"# {cls.__name__}", ""]
    lines += [
        f"A `{cls.__name__}` (model type `{model_type}`, {num_params:,} parameters) of the "
        "[perceiver-io](https://github.com/krasserm/perceiver-io) library.",
        "",
        "```python",
        f"from {package} import {cls.__name__}",
        "",
        f'model = {cls.__name__}.from_pretrained("<this repository or directory>")',
        "```",
        "",
    ]
    if details:
        lines += ["## How it was made", "", *[f"- {d}" for d in details], ""]
    lines += ["## Configuration", "", "```json", json.dumps(model.config.model_config, indent=2), "```", ""]
    return "\n".join(lines)


def _is_hub_id(name: str) -> bool:
    return not os.path.exists(os.path.expanduser(name)) and name.count("/") == 1 and not name.startswith((".", "/"))


def source_details(source_repo_id: str) -> Dict[str, Any]:
    """Model card arguments of a model converted from `source_repo_id` (hub id or local directory)."""
    if _is_hub_id(source_repo_id):
        return {"base_model": source_repo_id, "details": [f"Converted from `{source_repo_id}` (transformers)."]}
    name = Path(source_repo_id).name
    return {"details": [f"Converted from a transformers Perceiver model in local directory `{name}`."]}


def _push(save: AtomicSave, model: PreTrainedModel, hub: Dict[str, Any], uploaded: Sequence[str]) -> None:
    from transformers.utils.hub import hf_api

    token = hub.get("token")
    repo_id = hub.get("repo_id") or save.save_dir.name
    repo_id = hf_api().create_repo(repo_id, exist_ok=True, private=hub.get("private"), token=token).repo_id
    # only the model's files (and its card) go up, not the user's other files nor the manifest
    skip = {p.name: float("inf") for p in save.save_dir.iterdir() if p.name not in uploaded}
    model._upload_modified_files(
        str(save.save_dir),
        repo_id,
        skip,
        commit_message=hub.get("commit_message"),
        token=token,
        create_pr=hub.get("create_pr", False),
        revision=hub.get("revision"),
        commit_description=hub.get("commit_description"),
    )


def checkpointing_modules(backend_model: nn.Module) -> list:
    """The modules of `backend_model` that checkpoint activations of their layers (see `ActivationCheckpointing`)."""
    return [
        m for m in backend_model.modules() if isinstance(getattr(m, "checkpointing", None), ActivationCheckpointing)
    ]


def set_activation_checkpointing(backend_model: nn.Module, enable: bool) -> None:
    """Turns activation checkpointing of every layer of `backend_model` that supports it on or off."""
    modules = checkpointing_modules(backend_model)
    if not modules:
        raise ValueError(f"{type(backend_model).__name__} has no layers that support activation checkpointing")
    for module in modules:
        module.checkpointing = dataclasses.replace(module.checkpointing, enabled=enable)


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
    details = [f"Converted from Lightning checkpoint `{Path(str(ckpt_url)).name}` of `{lit_model_class.__name__}`."]
    if isinstance(preprocessor, PreTrainedTokenizerBase):
        details.append(f"Tokenizer: `{type(preprocessor).__name__}` (`{preprocessor.name_or_path or 'UTF-8 bytes'}`).")
    with atomic_directory(save_dir, details=details) as tmp_dir:
        model.save_pretrained(tmp_dir, **save_kwargs)
        if preprocessor is not None:
            preprocessor.save_pretrained(tmp_dir)
    return model


def _lit_model_class(model_class: Type[PerceiverBackendModel]) -> type:
    """The Lightning wrapper of the same backend model as 🤗 wrapper `model_class`, found in the `lightning` module
    of its task package."""
    from perceiver.model.core.lightning import LitModel

    package = model_class.__module__.rsplit(".", 1)[0]
    with contextlib.suppress(ModuleNotFoundError):
        importlib.import_module(f"{package}.lightning")
    pending, found = list(LitModel.__subclasses__()), []
    while pending:
        lit_class = pending.pop(0)
        pending.extend(lit_class.__subclasses__())
        if getattr(lit_class, "backend_model_class", None) is model_class.backend_model_class:
            found.append(lit_class)
    if not found:
        raise TypeError(f"{model_class.__name__} has no Lightning wrapper, so no Lightning checkpoints to convert")
    return found[0]


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
def atomic_directory(
    save_dir: Union[str, os.PathLike], base_model: Optional[str] = None, details: Sequence[str] = ()
) -> Iterator[Path]:
    """Yields a temporary directory next to `save_dir` that replaces `save_dir` in one atomic switch if the block
    succeeds (nothing changes if it fails or the process is killed).

    Files of the previous model in `save_dir` are removed, other files are kept (see `perceiver.model.core.saving`).
    A model saved into the temporary directory with `save_pretrained` gets a model card (with `base_model` and
    `details`) unless the block or the user wrote a README.md, and is uploaded after the switch if it was saved with
    `push_to_hub=True`.
    """
    save = AtomicSave(save_dir)
    save.model, save.hub = None, None
    _ACTIVE_SAVES[save.tmp_dir] = save
    try:
        yield save.tmp_dir
        _ACTIVE_SAVES.pop(save.tmp_dir, None)
        user_files = save.user_files()
        if save.model is not None and not (save.tmp_dir / "README.md").exists() and "README.md" not in user_files:
            card = model_card(save.model, base_model, details)
            (save.tmp_dir / "README.md").write_text(card, encoding="utf-8")
        uploaded = [p.name for p in save.tmp_dir.iterdir()]
        save.commit()
    finally:
        _ACTIVE_SAVES.pop(save.tmp_dir, None)
        save.discard()
    if save.hub is not None:
        _push(save, save.model, save.hub, uploaded + ["README.md"])


# perceiver-io 0.11 names of this module (resolved lazily: some live in modules that import this one)
_COPY_0_11 = {
    "copy_param": "perceiver.model.core.convert",
    "copy_params": "perceiver.model.core.convert",
    "copy_attention_params": "perceiver.model.core.convert",
    "copy_mlp_params": "perceiver.model.core.convert",
    "copy_cross_attention_layer_params": "perceiver.model.core.convert.copy_cross_attention_layer",
    "copy_self_attention_layer_params": "perceiver.model.core.convert.copy_self_attention_layer",
    "copy_self_attention_block_params": "perceiver.model.core.convert.copy_self_attention_layer",
    "copy_latent_provider_params": "perceiver.model.core.convert",
    "copy_classification_decoder_params": "perceiver.model.core.convert",
}
__getattr__ = deprecated_aliases(
    __name__,
    {
        **{name: (new, f"perceiver.model.core.compat:{name}") for name, new in _COPY_0_11.items()},
        "PerceiverCausalSequenceModel": (
            "perceiver.model.core.perceiver_ar.huggingface.PerceiverCausalSequenceModel",
            "perceiver.model.core.perceiver_ar.huggingface:PerceiverCausalSequenceModel",
        ),
        "PerceiverCausalSequenceModelOutput": (
            "transformers.modeling_outputs.CausalLMOutputWithPast",
            "transformers.modeling_outputs:CausalLMOutputWithPast",
        ),
    },
)
