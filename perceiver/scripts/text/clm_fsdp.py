"""perceiver-io 0.11's FSDP training script of the causal language model. Deprecated: use
`python -m perceiver.scripts.text.clm fit --trainer.strategy=fsdp_perceiver_ar ...` (this module registers that
strategy: FSDP wrapping each attention layer, with activation checkpointing).

0.11's FSDP-only model options (`--model.optimizer`, `--model.scheduler`, `--model.max_grad_norm`) are the CLI's
`--optimizer`, `--lr_scheduler` and `--trainer.gradient_clip_val` here.
"""

import warnings
from typing import Any, Callable, Optional, Sequence

import torch
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


class LitCausalLanguageModelFSDP(LitCausalLanguageModel):
    """perceiver-io 0.11's causal language model for FSDP training, which took its optimizer and scheduler
    factories (and gradient clipping) as model arguments. Deprecated: use `LitCausalLanguageModel` with the CLI's
    `--optimizer`, `--lr_scheduler`, `--trainer.gradient_clip_val` and `--trainer.strategy=fsdp_perceiver_ar`.

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
            f"--trainer.gradient_clip_val and --trainer.strategy={STRATEGY_NAME}",
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
            # an FSDP-wrapped model clips its sharded gradients itself
            clip = getattr(self.trainer.model, "clip_grad_norm_", None)
            if clip is not None:
                clip(self.max_grad_norm)
            else:
                torch.nn.utils.clip_grad_norm_(self.parameters(), self.max_grad_norm)


def main(args: Optional[Sequence[str]] = None) -> CausalLanguageModelCLI:
    warnings.warn(
        "perceiver.scripts.text.clm_fsdp is deprecated, use perceiver.scripts.text.clm with "
        f"--trainer.strategy={STRATEGY_NAME}",
        DeprecationWarning,
        stacklevel=2,
    )
    return clm_main(args)


if __name__ == "__main__":
    main()
