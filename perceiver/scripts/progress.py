"""Training progress for terminals and for log files (nohup, SLURM, CI), used by the scripts' CLI.

On a terminal, Lightning's rich progress bar (with the epoch shown right when training is limited by `max_steps`).
Elsewhere a live progress bar writes only its last frame, so `LogProgress` writes plain lines through `logging`
instead: every `log_every_n_steps` optimizer steps one line with step, epoch, batches per second (it/s) and the
progress bar metrics (e.g. the training loss), and one line per validation and test run with its metrics.
"""

import logging
import sys
import time
from typing import Any, Dict, Optional

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar, TQDMProgressBar

logger = logging.getLogger("perceiver.progress")


class EpochProgressBar(RichProgressBar):
    """Lightning's rich progress bar, showing "Epoch 2" instead of "Epoch 2/-2" when there is no epoch limit (training
    limited by `max_steps`)."""

    def _get_train_description(self, current_epoch: int) -> str:
        if self.trainer.max_epochs is not None and self.trainer.max_epochs >= 0:
            return super()._get_train_description(current_epoch)
        # padded as Lightning pads it, so that the bar does not flicker between training and validation
        return f"{f'Epoch {current_epoch}':{len(self.validation_description)}}"


class LogProgress(ProgressBar):
    """Progress as log lines (logger `perceiver.progress`, level INFO), for output that is not a terminal.

    :param every_n_steps: optimizer steps between lines (default: the trainer's `log_every_n_steps`).
    """

    def __init__(self, every_n_steps: Optional[int] = None):
        super().__init__()
        self.every_n_steps = every_n_steps
        self._enabled = True
        self._last_step = 0
        self._last_time = 0.0
        self._batches = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def print(self, *args: Any, **kwargs: Any) -> None:
        if self._enabled:
            logger.info(" ".join(str(arg) for arg in args))

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._last_step = trainer.global_step
        self._last_time = time.monotonic()
        self._batches = 0

    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs, batch, batch_idx):
        self._batches += 1
        step = trainer.global_step
        every = self.every_n_steps or trainer.log_every_n_steps or 1
        if not self._enabled or step == self._last_step or (step % every != 0 and step != trainer.max_steps):
            return
        now = time.monotonic()
        rate = self._batches / max(now - self._last_time, 1e-9)
        total = f"/{trainer.max_steps}" if trainer.max_steps and trainer.max_steps > 0 else ""
        metrics = _format(self.get_metrics(trainer, pl_module), skip=("v_num",))
        logger.info(f"step {step}{total} epoch {trainer.current_epoch} {rate:.2f} it/s {metrics}".rstrip())
        self._last_step, self._last_time, self._batches = step, now, 0

    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._enabled and not trainer.sanity_checking:
            metrics = _format(trainer.callback_metrics, prefix="val_")
            logger.info(f"validation at step {trainer.global_step} epoch {trainer.current_epoch}: {metrics}")

    def on_test_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._enabled:
            logger.info(f"test: {_format(trainer.callback_metrics, prefix='test_')}")

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._enabled:
            logger.info(f"training ended at step {trainer.global_step}")


def _format(metrics: Dict[str, Any], prefix: str = "", skip=()) -> str:
    items = []
    for name, value in sorted(metrics.items()):
        if not name.startswith(prefix) or name in skip:
            continue
        value = value.item() if hasattr(value, "item") else value
        items.append(f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}")
    return " ".join(items)


def use_progress_for_output(trainer: "pl.Trainer", stream: Any = None) -> None:
    """Replaces the trainer's default progress bar: `EpochProgressBar` where `stream` (default: stdout) is a
    terminal, `LogProgress` otherwise. A progress bar configured by the user (another class) is kept."""
    stream = sys.stdout if stream is None else stream
    callbacks = trainer.callbacks
    for i, callback in enumerate(callbacks):
        if type(callback) in (RichProgressBar, TQDMProgressBar):
            if hasattr(stream, "isatty") and stream.isatty():
                if type(callback) is RichProgressBar:
                    callbacks[i] = EpochProgressBar()
            else:
                callbacks[i] = LogProgress()
                _log_to_stdout()
            return


class _StdoutHandler(logging.StreamHandler):
    """Writes to the `sys.stdout` of the time of writing (which may be replaced after set-up)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stdout)
        super().emit(record)


def _log_to_stdout() -> None:
    """Makes this library's INFO logs (progress lines, validation samples) visible on stdout, unless logging is
    configured already (the `perceiver` logger or the root logger has handlers)."""
    library_logger = logging.getLogger("perceiver")
    if library_logger.handlers or logging.getLogger().handlers:
        return
    handler = _StdoutHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    library_logger.addHandler(handler)
    library_logger.setLevel(logging.INFO)
    library_logger.propagate = False
