"""perceiver-io 0.11's FSDP training script of the causal language model. Deprecated: use
`python -m perceiver.scripts.text.clm fit --trainer.strategy=fsdp_perceiver_ar ...` (this module registers that
strategy: FSDP wrapping each attention layer, with activation checkpointing).

0.11's FSDP-only model options are translated, with a DeprecationWarning naming the new spelling:
`--model.optimizer[.*]` is the CLI's `--optimizer[.*]`, `--model.scheduler[.*]` its `--lr_scheduler[.*]`, and
`--model.max_grad_norm=N` adds the `ClipGradNorm` callback (`--trainer.callbacks+=...ClipGradNorm`), which clips
the gradients' norm as 0.11 did, also under FSDP (where Lightning's `--trainer.gradient_clip_val` is refused).
"""

import json
import sys
import warnings
from typing import Any, Callable, List, Optional, Sequence

import torch
from lightning.pytorch import Callback
from lightning.pytorch.strategies import FSDPStrategy, StrategyRegistry

from perceiver.model.core import CrossAttentionLayer, SelfAttentionLayer
from perceiver.model.text.clm.lightning import LitCausalLanguageModel
from perceiver.scripts.lrs import CosineWithWarmupLR
from perceiver.scripts.text.clm import CausalLanguageModelCLI
from perceiver.scripts.text.clm import main as clm_main

STRATEGY_NAME = "fsdp_perceiver_ar"

if STRATEGY_NAME not in StrategyRegistry:
    StrategyRegistry.register(
        STRATEGY_NAME,
        FSDPStrategy,
        description="FSDP for Perceiver AR: each cross- and self-attention layer wrapped and checkpointed",
        auto_wrap_policy={CrossAttentionLayer, SelfAttentionLayer},
        activation_checkpointing_policy={CrossAttentionLayer, SelfAttentionLayer},
    )


class ClipGradNorm(Callback):
    """Clips the gradients' total 2-norm to `max_norm` before each optimizer step (after gradient unscaling). Under
    FSDP through the sharded root module's `clip_grad_norm_` (the norm over all shards), else over the module's
    parameters.

    :param max_norm: maximum total norm of the gradients.
    """

    def __init__(self, max_norm: float):
        if not max_norm > 0:
            raise ValueError(f"max_norm={max_norm} must be greater than 0")
        self.max_norm = max_norm

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        clip_grad_norm(trainer.strategy.model, pl_module, self.max_norm)


def clip_grad_norm(model: torch.nn.Module, pl_module: torch.nn.Module, max_norm: float) -> None:
    """Clips the gradients of `pl_module` to total norm `max_norm`: through `model`, the trainer's (root) module,
    when it is FSDP's (the norm over all shards), else over `pl_module`'s parameters."""
    if hasattr(model, "clip_grad_norm_"):
        model.clip_grad_norm_(max_norm)
    else:
        torch.nn.utils.clip_grad_norm_(pl_module.parameters(), max_norm)


# 0.11's model options of this script and the CLI's options that replace them
_RENAMED = {"--model.optimizer": "--optimizer", "--model.scheduler": "--lr_scheduler"}
_MAX_GRAD_NORM = "--model.max_grad_norm"


def translate_args(args: Sequence[str]) -> List[str]:
    """0.11's command line of this script in this library's spelling (warning for each 0.11 option)."""
    args, result, i = list(args), [], 0
    while i < len(args):
        name, sep, value = args[i].partition("=")
        old = next((o for o in _RENAMED if name == o or name.startswith(o + ".")), None)
        if old is None and name != _MAX_GRAD_NORM:
            result.append(args[i])
            i += 1
            continue
        if not sep and i + 1 < len(args):  # `--name value`
            value, i = args[i + 1], i + 1
        if old is not None:
            new = _RENAMED[old] + name[len(old) :]
            warnings.warn(f"{name} is deprecated, use {new}", DeprecationWarning, stacklevel=3)
            result.append(f"{new}={value}")
        else:
            # by its import path also where this module runs as __main__
            path = "perceiver.scripts.text.clm_fsdp.ClipGradNorm"
            option = "--trainer.callbacks+=" + json.dumps({"class_path": path, "init_args": {"max_norm": float(value)}})
            warnings.warn(f"{name} is deprecated, use {option}", DeprecationWarning, stacklevel=3)
            result.append(option)
        i += 1
    return result


class LitCausalLanguageModelFSDP(LitCausalLanguageModel):
    """perceiver-io 0.11's causal language model for FSDP training, which took its optimizer and scheduler
    factories (and gradient clipping) as model arguments. Deprecated: use `LitCausalLanguageModel` with the CLI's
    `--optimizer`, `--lr_scheduler`, the `ClipGradNorm` callback and `--trainer.strategy=fsdp_perceiver_ar`.

    :param optimizer: called with the trained parameters, returns the optimizer.
    :param scheduler: called with the optimizer, returns a learning rate scheduler, stepped per optimizer step
        (an unset `CosineWithWarmupLR` length is the trainer's estimated number of steps).
    :param max_grad_norm: clip the gradient norm to this value before each optimizer step (None: no clipping).
    """

    def __init__(
        self,
        optimizer: Callable[..., Any],
        scheduler: Callable[..., Any],
        *args: Any,
        max_grad_norm: Optional[float] = None,
        **kwargs: Any,
    ):
        warnings.warn(
            "LitCausalLanguageModelFSDP is deprecated (perceiver-io 0.11), use "
            "perceiver.model.text.clm.LitCausalLanguageModel with the CLI's --optimizer, --lr_scheduler, "
            f"the ClipGradNorm callback and --trainer.strategy={STRATEGY_NAME}",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(*args, **kwargs)
        self.optimizer_fn = optimizer
        self.scheduler_fn = scheduler
        self.max_grad_norm = max_grad_norm

    def configure_optimizers(self):
        # the parameters of the trainer's model: FSDP's flattened ones once wrapped
        optimizer = self.optimizer_fn(self.trainer.model.parameters())
        scheduler = self.scheduler_fn(optimizer)
        if isinstance(scheduler, CosineWithWarmupLR) and scheduler.length_unset:
            scheduler.training_steps = int(self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    def on_before_optimizer_step(self, optimizer) -> None:
        if self.max_grad_norm is not None:
            clip_grad_norm(self.trainer.model, self, self.max_grad_norm)


def main(args: Optional[Sequence[str]] = None) -> CausalLanguageModelCLI:
    warnings.warn(
        "perceiver.scripts.text.clm_fsdp is deprecated, use perceiver.scripts.text.clm with "
        f"--trainer.strategy={STRATEGY_NAME}",
        DeprecationWarning,
        stacklevel=2,
    )
    return clm_main(translate_args(sys.argv[1:] if args is None else args))


if __name__ == "__main__":
    main()
