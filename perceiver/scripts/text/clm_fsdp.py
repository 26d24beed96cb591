"""perceiver-io 0.11's FSDP training script of the causal language model. Deprecated: use
`python -m perceiver.scripts.text.clm fit --trainer.strategy=fsdp_perceiver_ar ...` (this module registers that
strategy: FSDP wrapping each attention layer, with activation checkpointing).

0.11's FSDP-only model options (`--model.optimizer`, `--model.scheduler`, `--model.max_grad_norm`) are the CLI's
`--optimizer`, `--lr_scheduler` and `--trainer.gradient_clip_val` here.
"""

import warnings
from typing import Optional, Sequence

from lightning.pytorch.strategies import FSDPStrategy, StrategyRegistry

from perceiver.model.core import CrossAttentionLayer, SelfAttentionLayer
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
