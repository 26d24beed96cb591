"""Small helpers shared by all models: parameter init, checkpointing, freezing, input validation."""

import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from perceiver._compat import deprecated_aliases


def init_parameters(module: nn.Module, init_scale: float) -> None:
    """Normal init (std `init_scale`) of linear and embedding weights, zero biases (as in perceiver-io 0.11)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear):
                m.weight.normal_(mean=0.0, std=init_scale)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.Embedding):
                m.weight.normal_(mean=0.0, std=init_scale)


def freeze(module: nn.Module) -> None:
    """Excludes all parameters of `module` from training."""
    for param in module.parameters():
        param.requires_grad = False


@dataclass(frozen=True)
class ActivationCheckpointing:
    """How attention layers treat their activations in training: recompute them in the backward pass instead of
    storing them (`enabled`: less memory, more compute), and with that keep the stored layer inputs in CPU memory
    (`offload`). Configs and Lightning wrappers spell it `activation_checkpointing` / `activation_offloading`."""

    enabled: bool = False
    offload: bool = False

    @classmethod
    def of(cls, config: Any) -> "ActivationCheckpointing":
        """From a config with fields `activation_checkpointing` and `activation_offloading`."""
        return cls(enabled=config.activation_checkpointing, offload=config.activation_offloading)


def checkpointing_from(
    checkpointing: Optional[ActivationCheckpointing], kwargs: Dict[str, Any], owner: str, args: tuple = ()
) -> ActivationCheckpointing:
    """`checkpointing` (default: off), or one built from the arguments `activation_checkpointing` and
    `activation_offloading` that `owner`'s constructor took before (perceiver-io 0.11), popped from `kwargs` or given
    positionally (`args`, where `checkpointing` is now), with a DeprecationWarning naming the new spelling."""
    if len(args) == 1 and isinstance(args[0], ActivationCheckpointing) and checkpointing is None:
        checkpointing, args = args[0], ()
    if len(args) > 2:
        raise TypeError(f"{owner}() got {len(args)} positional arguments in place of checkpointing, at most 2 allowed")
    kwargs.update(zip(("activation_checkpointing", "activation_offloading"), args))
    flags = {name: kwargs.pop(name) for name in ("activation_checkpointing", "activation_offloading") if name in kwargs}
    if not flags:
        return checkpointing or ActivationCheckpointing()
    if checkpointing is not None:
        raise TypeError(f"{owner}() got checkpointing and {sorted(flags)}; pass checkpointing only")
    result = ActivationCheckpointing(
        enabled=bool(flags.get("activation_checkpointing", False)),
        offload=bool(flags.get("activation_offloading", False)),
    )
    warnings.warn(
        f"{owner}({', '.join(f'{k}=...' for k in flags)}) is deprecated, use {owner}(..., checkpointing={result})",
        DeprecationWarning,
        stacklevel=3,
    )
    return result


def maybe_checkpoint(
    module: nn.Module, *args: Any, checkpointing: Optional[ActivationCheckpointing] = None, **kwargs: Any
) -> Any:
    """Calls `module(*args, **kwargs)`; with `checkpointing.enabled`, while `module` trains and gradients are enabled,
    its activations are recomputed in the backward pass (and with `checkpointing.offload`, the activations saved for
    the backward pass are kept in CPU memory)."""
    if checkpointing is None or not checkpointing.enabled or not module.training or not torch.is_grad_enabled():
        return module(*args, **kwargs)
    if checkpointing.offload:
        with torch.autograd.graph.save_on_cpu(pin_memory=torch.cuda.is_available()):
            return checkpoint(module, *args, use_reentrant=False, **kwargs)
    return checkpoint(module, *args, use_reentrant=False, **kwargs)


def pad_mask_from(attention_mask: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """The padding mask (True = padding) of a 🤗-style `attention_mask` (1 = token, 0 = padding), or None."""
    return None if attention_mask is None else ~attention_mask.bool()


def without_empty_pad_mask(pad_mask: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """None for a CPU padding mask that marks no padding (an all-ones 🤗 attention mask), else `pad_mask`.

    Attention without a mask gives the same result with fewer operations (no mask tensors, the faster kernels).
    Reading the mask would wait for an accelerator and break a `torch.compile` graph, so other devices and compiled
    code keep the mask.
    """
    if pad_mask is None or pad_mask.device.type != "cpu" or torch.compiler.is_compiling():
        return pad_mask
    return pad_mask if pad_mask.any() else None


def check_token_ids(name: str, input_ids: torch.Tensor, vocab_size: int) -> None:
    """Raises a ValueError naming `name` if any token id lies outside `[0, vocab_size)`.

    The range check reads values, which on an accelerator would wait for the device and under `torch.compile` would
    break the graph. So it is exact and eager on CPU tensors only; on other devices it is an asynchronous device
    assertion (raised as a RuntimeError at a later synchronization), and it is skipped while compiling.
    """
    if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {input_ids.dtype}")
    if input_ids.numel() == 0 or torch.compiler.is_compiling():
        return
    if input_ids.device.type != "cpu":
        valid = ((input_ids >= 0) & (input_ids < vocab_size)).all()
        torch._assert_async(valid, f"{name} holds a token id outside the vocabulary range [0, {vocab_size - 1}]")
        return
    lo, hi = torch.aminmax(input_ids)
    lo, hi = int(lo), int(hi)
    if lo < 0 or hi >= vocab_size:
        bad = lo if lo < 0 else hi
        raise ValueError(f"{name} holds token id {bad}, outside the vocabulary range [0, {vocab_size - 1}]")


def check_seq_len(name: str, seq_len: int, max_seq_len: int) -> None:
    """Raises a ValueError naming `name` if `seq_len` is not in `[1, max_seq_len]`."""
    if not 1 <= seq_len <= max_seq_len:
        raise ValueError(f"{name} has sequence length {seq_len}, allowed range is [1, {max_seq_len}]")


def check_mask_shape(name: str, mask: Optional[torch.Tensor], shape: torch.Size) -> None:
    """Raises a ValueError naming `name` if `mask` is given and its shape is not `shape`."""
    if mask is not None and mask.shape != shape:
        raise ValueError(f"{name} has shape {tuple(mask.shape)}, expected the input's shape {tuple(shape)}")


def check_divisible(name: str, value: int, divisor_name: str, divisor: int) -> None:
    """Raises a ValueError unless `value` is a multiple of `divisor`."""
    if value % divisor != 0:
        raise ValueError(f"{name}={value} must be divisible by {divisor_name}={divisor}")


class ModuleOutput(OrderedDict):
    """perceiver-io 0.11's output container: an ordered dict whose keys are also attributes (`out.logits`).

    This library's modules return tensors; the class stays for user code written against 0.11 that builds or
    reads such outputs.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}") from None


# perceiver-io 0.11 defined `Residual` here
__getattr__ = deprecated_aliases(
    __name__, {"Residual": ("perceiver.model.core.Residual", "perceiver.model.core.attention:Residual")}
)
