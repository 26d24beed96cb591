"""Learning rate schedules with linear warmup, stepped once per optimizer step (`--lr_scheduler=...` in the CLI)."""

import math
from typing import Optional

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class WarmupLR(LRScheduler):
    """Base of schedules that raise the learning rate linearly over the first `warmup_steps` steps, by
    `(step + 1) / (warmup_steps + 1)` of the optimizer's learning rate (so that no step is wasted at 0).

    Subclasses define `factor(step)` for the steps after warmup. The scripts' CLI steps these schedulers after each
    optimizer step (not each epoch).
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int = 0, last_epoch: int = -1, verbose: bool = False):
        # `verbose` (deprecated in torch, unused) is accepted because perceiver-io 0.11's saved configs set it
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps={warmup_steps} must be >= 0")
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, last_epoch)

    def factor(self, step: int) -> float:
        raise NotImplementedError

    def get_lr(self):
        step = self.last_epoch  # counts optimizer steps, as these schedulers are stepped per optimizer step
        factor = (step + 1) / (self.warmup_steps + 1) if step < self.warmup_steps else self.factor(step)
        return [base_lr * factor for base_lr in self.base_lrs]


class ConstantWithWarmupLR(WarmupLR):
    """Linear warmup over `warmup_steps`, then the optimizer's learning rate."""

    def factor(self, step: int) -> float:
        return 1.0


class CosineWithWarmupLR(WarmupLR):
    """Linear warmup over `warmup_steps`, then cosine decay to `min_fraction` of the learning rate at
    `training_steps`.

    :param training_steps: total optimizer steps. Default (None): the trainer's estimate (its `max_steps`, or
        epochs times batches per epoch), filled in by the CLI before training starts.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int = 0,
        training_steps: Optional[int] = None,
        min_fraction: float = 0.0,
        last_epoch: int = -1,
        verbose: bool = False,
    ):
        if not 0.0 <= min_fraction <= 1.0:
            raise ValueError(f"min_fraction={min_fraction} must be in [0, 1]")
        if training_steps is not None and training_steps <= warmup_steps:
            raise ValueError(f"training_steps={training_steps} must be greater than warmup_steps={warmup_steps}")
        self.training_steps = training_steps
        self.min_fraction = min_fraction
        super().__init__(optimizer, warmup_steps, last_epoch)

    def factor(self, step: int) -> float:
        if self.training_steps is None:
            if step == self.warmup_steps:  # the decay starts at 1 (at construction, before the CLI sets the length)
                return 1.0
            raise ValueError("training_steps of CosineWithWarmupLR is not set (the CLI sets it from the trainer)")
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.training_steps - self.warmup_steps))
        return self.min_fraction + (1.0 - self.min_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))
