"""The Lightning CLI shared by the training scripts (`python -m perceiver.scripts.<area>.<task> fit|validate|test`).

What every script has (see `CLI`):

- `--config file.yaml` (repeatable; later files and command line arguments override earlier ones), `--print_config`
- `fit`, `validate` and `test` subcommands; `--ckpt_path` resumes training from (or evaluates) a checkpoint
- `--data=<data module class>` and `--data.*`, `--model.*` and `--trainer.*` arguments; the model's vocabulary size,
  sequence length, image shape and number of classes are taken from the data module
- `--optimizer` (default AdamW with `--model.lr` and `--model.weight_decay`; with `--optimizer`, the optimizer's
  `lr` and `weight_decay` apply and are recorded as the model's, and a different `--model.lr` is refused) and
  `--lr_scheduler`, e.g.
  `--lr_scheduler=CosineWithWarmupLR --lr_scheduler.warmup_steps=500` (schedulers of `perceiver.scripts.lrs` are
  stepped per optimizer step; cosine decay lasts the trainer's `max_steps` unless `training_steps` is given)
- `--checkpoint.*`: the best checkpoint on the monitored validation metric is saved, and `last.ckpt` holds the
  latest state (see `LastStateCheckpoint`); `--ckpt_path=.../last.ckpt` resumes exactly where training stopped
- TensorBoard and CSV logs (with the learning rate) in `logs/<name>/version_<n>`; progress as a rich progress bar on
  a terminal, as periodic log lines (step, epoch, loss, it/s; every `--trainer.log_every_n_steps` steps) in log files
  (see `perceiver.scripts.progress`)
- seed 0 unless `--seed_everything` says otherwise, so that runs are reproducible
"""

import importlib
import inspect
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Type
from weakref import proxy

from datasets.exceptions import DatasetNotFoundError
from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, LightningModule
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, LRSchedulerTypeTuple
from lightning.pytorch.cli import ReduceLROnPlateau as LightningReduceLROnPlateau

from perceiver.data.common import check_data_files, check_source, check_text_files, local_text_files
from perceiver.data.text.tokenizer import PERCEIVER_BYTES
from perceiver.model.core.checkpoint import read_checkpoint
from perceiver.model.core.lightning import FUSED_OPTIMIZERS, without_params
from perceiver.scripts.lrs import ConstantWithWarmupLR, CosineWithWarmupLR, WarmupLR
from perceiver.scripts.progress import use_progress_for_output

# imported here so that --lr_scheduler also takes their short names (CosineWithWarmupLR, ConstantWithWarmupLR)
__all__ = ["CLI", "ConstantWithWarmupLR", "CosineWithWarmupLR"]

# the CLI replaces the model's configure_optimizers with the --optimizer and --lr_scheduler given, by design
warnings.filterwarnings("ignore", message=r".*configure_optimizers` will be overridden by")
# the CSV logger shares its directory with the TensorBoard logger (see _share_log_version): not a previous run's
warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")


class CLI(LightningCLI):
    """`LightningCLI` with this library's defaults. Scripts subclass it and set:

    :cvar name: experiment name (log directory `logs/<name>`).
    :cvar task: the data modules' task (`mlm`, `clm`, `clf`) the script trains, or None.
    :cvar monitor: validation metric that selects the best checkpoint; `monitor_mode` "min" or "max".
    :cvar links: `(data attribute, model argument[, function])` tuples, e.g. `("data.vocab_size",
        "model.encoder.vocab_size")`: the model argument is set from the instantiated data module (through the
        function, if given).
    :cvar model_defaults: default model arguments, e.g. `{"model.num_latents": 256}`.
    :cvar data_default: class path of the data module used when no `--data` is given.
    """

    name: str = "perceiver"
    task: Optional[str] = None
    monitor: str = "val_loss"
    monitor_mode: str = "min"
    links: Sequence[tuple] = ()
    model_defaults: Dict[str, Any] = {}
    # perceiver-io 0.11 fixed this scheduler per script, so that `--lr_scheduler.warmup_steps=N` (and a saved
    # config.yaml's `lr_scheduler` without `class_path`) names none; with 0 warmup steps it keeps the learning rate
    default_lr_scheduler: str = "perceiver.scripts.lrs.ConstantWithWarmupLR"
    data_default: Optional[str] = None

    def __init__(
        self,
        model_class: Type[LightningModule],
        datamodule_class: Optional[Type[LightningDataModule]] = None,
        args: Optional[Sequence[str]] = None,
        run: bool = True,
        **cli_kwargs: Any,
    ):
        """:param datamodule_class: base class of the data modules the script takes (`--data=<subclass>`; default:
        any `LightningDataModule`). A class that is no base of the script's `data_default` is used as it is, with
        `--data.*` its arguments (perceiver-io 0.11's behaviour). :param args: command line arguments (default:
        `sys.argv[1:]`). :param run: run the subcommand. :param cli_kwargs: further `LightningCLI` arguments
        (perceiver-io 0.11 passed them on), overriding this CLI's.

        perceiver-io 0.11's positional call `CLI(model_class, run)` still works, with a DeprecationWarning."""
        if isinstance(datamodule_class, bool):
            warnings.warn(
                f"{type(self).__name__}(model_class, run) is deprecated (perceiver-io 0.11's order), use "
                f"{type(self).__name__}(model_class, run=run)",
                DeprecationWarning,
                stacklevel=2,
            )
            if args is not None:
                raise TypeError(f"{type(self).__name__}() got run={datamodule_class!r} positionally and args")
            datamodule_class, run = None, datamodule_class
        # 0.11 instantiated the data module class it was given (`--data.*` are its arguments); the scripts here give
        # a base class and select a subclass with `--data=...` (default: `data_default`)
        self._select_data = datamodule_class is None or _is_base_of_default(datamodule_class, self.data_default)
        cli_kwargs = {
            "subclass_mode_data": self._select_data,
            "save_config_kwargs": {"overwrite": True},
            "trainer_defaults": {
                "logger": [
                    {"class_path": "lightning.pytorch.loggers.TensorBoardLogger", "init_args": self._log_dir()},
                    {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": self._log_dir()},
                ],
            },
            "seed_everything_default": 0,
            "auto_configure_optimizers": True,
            "parser_kwargs": {"description": type(self).__doc__},
            **cli_kwargs,
        }
        super().__init__(
            model_class,
            datamodule_class or LightningDataModule,
            args=self._with_default_data(sys.argv[1:] if args is None else list(args)),
            run=run,
            **cli_kwargs,
        )

    def _with_default_data(self, args: List[str]) -> List[str]:
        """`args` with `--data=<data_default>` after the subcommand when neither the command line nor a `--config`
        file selects a data module. (A parser default would not do: jsonargparse carries the default class's
        arguments, e.g. its hub `source`, over to a data module selected with `--data=...`.)"""
        subcommand = next((i for i, a in enumerate(args) if a in self.subcommands()), None)
        if self.data_default is None or subcommand is None or not self._select_data:
            return args
        if any(a == "--data" or a.startswith("--data=") for a in args):
            return args
        for i, arg in enumerate(args):
            path = arg.split("=", 1)[1] if arg.startswith("--config=") else None
            if arg in ("--config", "-c") and i + 1 < len(args):
                path = args[i + 1]
            if path is not None and _config_selects_data(path):
                return args
        return [*args[: subcommand + 1], f"--data={self.data_default}", *args[subcommand + 1 :]]

    @staticmethod
    def subcommands() -> Dict[str, set]:
        # the models have no predict step: training, validation and test only
        return {name: keys for name, keys in LightningCLI.subcommands().items() if name != "predict"}

    def _log_dir(self) -> Dict[str, str]:
        return {"save_dir": "logs", "name": self.name}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(LastStateCheckpoint, "checkpoint")
        parser.add_lr_scheduler_args(LRSchedulerTypeTuple)
        parser.set_defaults({"lr_scheduler": {"class_path": self.default_lr_scheduler}})
        parser.set_defaults(
            {
                "checkpoint.monitor": self.monitor,
                "checkpoint.mode": self.monitor_mode,
                "checkpoint.save_last": True,
                "checkpoint.filename": "{epoch:03d}-{" + self.monitor + ":.3f}",
                **self.model_defaults,
            }
        )
        for source, target, *compute_fn in self.links:
            parser.link_arguments(source, target, *compute_fn, apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        try:
            _check_data_paths(config.get("data"))
        except (FileNotFoundError, ValueError) as e:
            # a missing data or tokenizer path fails here, before anything is loaded or built
            _fail(str(e))
        self._complete_config(config, self._parser(self.subcommand))
        if config.trainer.get("strategy") == "ddp_static_graph":
            # perceiver-io 0.11's strategy name
            config.trainer.strategy = Namespace(
                class_path="lightning.pytorch.strategies.DDPStrategy",
                init_args=Namespace(static_graph=True, find_unused_parameters=False),
            )
        _share_log_version(config.trainer.logger)
        if not config.get("optimizer") and config.get("lr_scheduler"):
            # LightningCLI ignores a scheduler without an optimizer; use the model's AdamW settings instead
            config.optimizer = Namespace(
                class_path="torch.optim.AdamW",
                init_args=Namespace(lr=config.model.lr, weight_decay=config.model.weight_decay),
            )

    def _parse_ckpt_path(self) -> None:
        # as LightningCLI's (the checkpoint's hyperparameters are defaults of the model's arguments), but the file is
        # read safely (local or http(s); see perceiver.model.core.checkpoint), 0.11 checkpoints are translated, and a
        # malicious file, one of another task or no checkpoint at all end in a one-line error before anything runs
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path:
            return
        backend_config_class = getattr(self.model_class, "backend_config_class", None)
        try:
            checkpoint = read_checkpoint(
                ckpt_path,
                expected_config=backend_config_class.__name__ if backend_config_class else None,
                expected_class=self.model_class.__name__,
            )
        except (ValueError, OSError) as e:
            _fail(f"--ckpt_path: {e}")
        names = set()
        for cls in inspect.getmro(self.model_class):
            if "__init__" in vars(cls):
                names |= set(inspect.signature(cls.__init__).parameters)
        hparams = without_params(checkpoint.get("hyper_parameters", {}))
        hparams = {k: v for k, v in hparams.items() if k in names and k not in ("self", "args", "kwargs")}
        if hparams:
            self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        parser = super().init_parser(**kwargs)
        dump = parser.dump

        def dump_completed(cfg: Namespace, *args, **dump_kwargs) -> str:
            # --print_config (and the saved config.yaml) show the configuration that runs: the script's task, the
            # optimizer's learning rate
            if isinstance(cfg, Namespace) and "data" in cfg and "model" in cfg:
                cfg = cfg.clone()
                self._complete_config(cfg, parser)
            return dump(cfg, *args, **dump_kwargs)

        parser.dump = dump_completed
        return parser

    def _complete_config(self, config: Namespace, parser: LightningArgumentParser) -> None:
        """Settings that follow from others: the script's data task, the optimizer's `lr`/`weight_decay`."""
        if self.task is not None:
            self._set_task(config)
        if config.get("optimizer"):
            self._take_optimizer_settings(config, parser)
            _prefer_fused_optimizer(config)

    def _run_subcommand(self, subcommand: str) -> None:
        try:
            super()._run_subcommand(subcommand)
        except (DatasetNotFoundError, ConnectionError) as e:
            # a mistyped or unreachable hub dataset: one line instead of a traceback through Lightning and datasets
            source = getattr(getattr(self.datamodule, "hparams", {}), "get", lambda _: None)("source")
            if source is None or str(source) not in str(e):
                raise
            _fail(
                f"data.source={source!r} is no local file or directory, and no 🤗 hub dataset reached: {e}".split("\n")[
                    0
                ]
            )

    def _take_optimizer_settings(self, config: Namespace, parser: LightningArgumentParser) -> None:
        """One rule for `--model.lr` / `--model.weight_decay` beside an `--optimizer`: the optimizer's values apply
        and are also recorded as the model's hyperparameters (hparams.yaml, TensorBoard); a model value set to
        something else than its default and than the optimizer's is refused, as it would have no effect."""
        init_args = config.optimizer.get("init_args") or Namespace()
        defaults = parser.get_defaults()
        for name in ("lr", "weight_decay"):
            key = f"model.{name}"
            if key not in config or init_args.get(name) is None:
                continue
            value, optimizer_value = config[key], init_args[name]
            if value != defaults.get(key) and value != optimizer_value:
                _fail(
                    f"{key}={value} conflicts with the optimizer's {name}={optimizer_value} "
                    f"({config.optimizer.class_path}): with --optimizer set --optimizer.{name} instead"
                )
            config[key] = optimizer_value

    def _set_task(self, config: Namespace) -> None:
        # data modules serve several tasks: a script trains one, so the data module's default task gives way to it
        data = config.get("data")
        if not isinstance(data, Namespace) or "class_path" not in data:
            return
        task = data.init_args.get("task") if data.get("init_args") else None
        if task == self.task:
            return
        module_name, class_name = data.class_path.rsplit(".", 1)
        parameters = inspect.signature(getattr(importlib.import_module(module_name), class_name)).parameters
        default = parameters["task"].default if "task" in parameters else None
        if task is not None and task != default:
            _fail(f"data.task={task!r} does not fit this script, which trains task {self.task!r}")
        data.init_args.task = self.task

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        use_progress_for_output(self.trainer)
        callbacks = self.trainer.callbacks
        if self.trainer.loggers and not any(isinstance(c, LearningRateMonitor) for c in callbacks):
            callbacks.append(LearningRateMonitor(logging_interval="step"))

    @staticmethod
    def configure_optimizers(lightning_module, optimizer, lr_scheduler=None) -> Any:
        if lr_scheduler is None:
            return optimizer
        if isinstance(lr_scheduler, CosineWithWarmupLR) and lr_scheduler.length_unset:
            lr_scheduler.training_steps = int(lightning_module.trainer.estimated_stepping_batches)
        if isinstance(lr_scheduler, WarmupLR):
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": lr_scheduler, "interval": "step"}}
        if isinstance(lr_scheduler, LightningReduceLROnPlateau):
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": lr_scheduler, "monitor": lr_scheduler.monitor},
            }
        return [optimizer], [lr_scheduler]


class LastStateCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` whose `last.ckpt` is always the latest training state, written atomically.

    Lightning 2.6's `save_last=True` rewrites `last.ckpt` only when a top-k checkpoint is saved, i.e. when the
    monitored metric improves. Here `last.ckpt` is also written at every validation and epoch end, every
    `every_n_train_steps` steps and when training ends, so that resuming from it (`--ckpt_path=.../last.ckpt`)
    continues from where training stopped. Every checkpoint file is written to a temporary file first and then
    renamed, so that a killed run never leaves a truncated checkpoint.
    """

    _last_state_step: int = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        every = self._every_n_train_steps
        if every >= 1 and trainer.global_step % every == 0:
            self._save_last_state(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        super().on_validation_end(trainer, pl_module)
        self._save_last_state(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._save_last_state(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._save_last_state(trainer)

    def _save_last_state(self, trainer) -> None:
        from lightning.pytorch.trainer.states import TrainerFn

        if (
            not self.save_last
            or trainer.fast_dev_run
            or trainer.sanity_checking
            or trainer.state.fn != TrainerFn.FITTING
            or self._last_state_step == trainer.global_step
        ):
            return
        # keep top-k bookkeeping as it was: a last-state save is no top-k save at this step
        last_global_step_saved = self._last_global_step_saved
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        self._last_global_step_saved = last_global_step_saved

    def _save_last_checkpoint(self, trainer, monitor_candidates) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        if self.save_last:
            self._last_state_step = trainer.global_step

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        tmp_path = f"{filepath}.tmp-{os.getpid()}"
        trainer.save_checkpoint(tmp_path, self.save_weights_only)
        if trainer.is_global_zero and os.path.isfile(tmp_path):
            os.replace(tmp_path, filepath)
        elif trainer.is_global_zero and os.path.isdir(tmp_path):  # sharded checkpoints are directories
            if os.path.isdir(filepath):
                shutil.rmtree(filepath)
            os.replace(tmp_path, filepath)
        trainer.strategy.barrier()
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))


def _share_log_version(loggers: Any) -> None:
    """Loggers configured with the same directory (by default TensorBoard and CSV) write into the same version
    directory, `<save_dir>/<name>/version_<n>` (with the checkpoints), instead of each counting versions alone."""
    if not isinstance(loggers, list) or len(loggers) < 2:
        return
    configs = [logger.get("init_args") for logger in loggers if isinstance(logger, Namespace)]
    if len(configs) != len(loggers) or any(c is None or c.get("version") is not None for c in configs):
        return
    locations = {(c.get("save_dir"), c.get("name")) for c in configs}
    if len(locations) != 1:
        return
    save_dir, name = locations.pop()
    root = Path(save_dir or ".") / (name or "")
    existing = [int(p.name[len("version_") :]) for p in root.glob("version_*") if p.name[len("version_") :].isdigit()]
    for c in configs:
        c.version = max(existing, default=-1) + 1


def _check_data_paths(data: Optional[Namespace]) -> None:
    """Raises a FileNotFoundError for local data or tokenizer paths in the data module's arguments that do not
    exist."""
    init_args = data.get("init_args") if isinstance(data, Namespace) else None
    if init_args is None:
        return
    # modules of several sources name each (WikiBookDataModule's wikipedia_source, bookcorpus_source)
    named_sources = {k: v for k, v in vars(init_args).items() if k.endswith("_source") and v is not None}
    missing = init_args.get("data_files") is None and not named_sources
    if "source" in init_args and init_args.source is None and missing:
        raise ValueError("--data.source is missing: give a 🤗 hub id or a local file or directory of data")
    for name, source in named_sources.items():
        check_source(source, name=f"data.{name}")
    if init_args.get("source") is not None:
        check_source(init_args.source, name="data.source")
        check_text_files(local_text_files(init_args.source, init_args.get("config_name")))
    if init_args.get("tokenizer") not in (None, PERCEIVER_BYTES):
        check_source(init_args.tokenizer, name="data.tokenizer")
    if init_args.get("data_files") is not None:
        check_data_files(init_args.data_files)


def _prefer_fused_optimizer(config: Namespace) -> None:
    """`--optimizer=Adam|AdamW` without `fused` or `foreach` runs with the fused kernel (as the model's default
    optimizer does), unless the trainer runs on an accelerator without one."""
    optimizer = config.optimizer
    init_args = optimizer.get("init_args")
    if optimizer.get("class_path") not in FUSED_OPTIMIZERS or init_args is None:
        return
    if init_args.get("fused") is not None or init_args.get("foreach") is not None:
        return
    if str(config.trainer.get("accelerator") or "auto") in ("auto", "cpu", "gpu", "cuda"):
        init_args.fused = True


def _fail(message: str) -> None:
    """Exits with a one-line error (no traceback), as for other invalid arguments."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _is_base_of_default(datamodule_class: type, data_default: Optional[str]) -> bool:
    """Whether `datamodule_class` is a base class of the data module class `data_default` (a class path)."""
    if data_default is None:
        return False
    module_name, class_name = data_default.rsplit(".", 1)
    return issubclass(getattr(importlib.import_module(module_name), class_name), datamodule_class)


def _config_selects_data(path: str) -> bool:
    """Whether the YAML config file `path` has a `data` section (a missing or unreadable file: the parser says so)."""
    import yaml

    try:
        config = yaml.safe_load(Path(path).expanduser().read_text())
    except (OSError, yaml.YAMLError):
        return True
    return isinstance(config, dict) and config.get("data") is not None
