"""Learning rate schedules with linear warmup, stepped once per optimizer step (`--lr_scheduler=...` in the CLI).

The schedules are transformers' (`get_constant_schedule_with_warmup`, `get_cosine_with_min_lr_schedule_with_warmup`),
which are also perceiver-io 0.11's: the learning rate rises linearly from 0 over `warmup_steps` steps. These classes
only give them the option names of the CLI (and of 0.11), and let the CLI fill in the schedule's length from the
trainer after construction.
"""

from typing import Callable, Optional

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler
from transformers import get_constant_schedule_with_warmup, get_cosine_with_min_lr_schedule_with_warmup


def _schedule_fn(factory: Callable[..., LambdaLR], **kwargs) -> Callable[[int], float]:
    """The learning rate factor per step of the transformers schedule `factory(optimizer, **kwargs)`, taken from a
    throwaway optimizer (the factory steps the optimizer it is given once)."""
    probe = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    return factory(probe, **kwargs).lr_lambdas[0]


_ARGUMENTS = ("warmup_steps", "training_steps", "min_fraction", "num_cycles")


class WarmupLR(LRScheduler):
    """Base of the schedules with linear warmup over the first `warmup_steps` optimizer steps.

    Subclasses define `schedule()`, the factor per step. The scripts' CLI steps these schedulers after each optimizer
    step (not each epoch).
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int = 0, last_epoch: int = -1, verbose: bool = False):
        # `verbose` (deprecated in torch, unused) is accepted because perceiver-io 0.11's saved configs set it
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps={warmup_steps} must be >= 0")
        self.warmup_steps = warmup_steps
        self._schedule: Optional[tuple] = None  # (arguments, function) of the last schedule built
        super().__init__(optimizer, last_epoch)

    def schedule(self) -> Callable[[int], float]:
        raise NotImplementedError

    def factor(self, step: int) -> float:
        # rebuilt when an argument changes (the CLI sets `training_steps` after construction)
        arguments = tuple(getattr(self, name, None) for name in _ARGUMENTS)
        if self._schedule is None or self._schedule[0] != arguments:
            self._schedule = (arguments, self.schedule())
        return self._schedule[1](step)

    def get_lr(self):
        step = self.last_epoch  # counts optimizer steps, as these schedulers are stepped per optimizer step
        return [base_lr * self.factor(step) for base_lr in self.base_lrs]

    def state_dict(self):
        # the schedule function is rebuilt from the arguments; checkpoints hold plain values only
        return {key: value for key, value in super().state_dict().items() if key != "_schedule"}

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        self._schedule = None


class ConstantWithWarmupLR(WarmupLR):
    """Linear warmup from 0 over `warmup_steps`, then the optimizer's learning rate (transformers'
    `get_constant_schedule_with_warmup`)."""

    def schedule(self) -> Callable[[int], float]:
        return _schedule_fn(get_constant_schedule_with_warmup, num_warmup_steps=self.warmup_steps)


class CosineWithWarmupLR(WarmupLR):
    """Linear warmup from 0 over `warmup_steps`, then cosine decay to `min_fraction` of the learning rate at
    `training_steps` (transformers' `get_cosine_with_min_lr_schedule_with_warmup`).

    :param training_steps: total optimizer steps. Unset (0, perceiver-io 0.11's default, None or negative, like
        the trainer's `max_steps=-1`): the trainer's estimate (its `max_steps`, or epochs times batches per epoch),
        filled in by the CLI before training starts.
    :param warmup_steps: number of optimizer steps of the linear warmup.
    :param num_cycles: number of cosine periods over the decay (0.5: from the maximum to the minimum once).
    :param min_fraction: learning rate at the end of the decay, as a fraction of the optimizer's.

    Parameters are in perceiver-io 0.11's order.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        training_steps: Optional[int] = 0,
        warmup_steps: int = 0,
        num_cycles: float = 0.5,
        min_fraction: float = 0.0,
        last_epoch: int = -1,
        verbose: bool = False,
    ):
        if not 0.0 <= min_fraction <= 1.0:
            raise ValueError(f"min_fraction={min_fraction} must be in [0, 1]")
        if training_steps is not None and 0 < training_steps <= warmup_steps:
            raise ValueError(f"training_steps={training_steps} must be greater than warmup_steps={warmup_steps}")
        self.training_steps = training_steps
        self.min_fraction = min_fraction
        self.num_cycles = num_cycles
        super().__init__(optimizer, warmup_steps, last_epoch)

    @property
    def length_unset(self) -> bool:
        """Whether `training_steps` is still to be filled in from the trainer."""
        return self.training_steps is None or self.training_steps <= 0

    def factor(self, step: int) -> float:
        if self.length_unset:
            if step == 0:  # at construction, before the CLI sets the length: the schedule's start
                return 0.0 if self.warmup_steps else 1.0
            raise ValueError("training_steps of CosineWithWarmupLR is not set (the CLI sets it from the trainer)")
        return super().factor(step)

    def schedule(self) -> Callable[[int], float]:
        return _schedule_fn(
            get_cosine_with_min_lr_schedule_with_warmup,
            num_warmup_steps=self.warmup_steps,
            num_training_steps=self.training_steps,
            num_cycles=self.num_cycles,
            min_lr_rate=self.min_fraction,
        )
