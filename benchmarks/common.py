"""Shared benchmark helpers: device and precision, the machine's measured matmul peak, model FLOPs from
`torch.utils.flop_counter`, interleaved timing with medians, and perceiver-io 0.11 as an importable peer.

On CUDA, benchmarks run under bf16 autocast and compare against the bf16 matmul peak (model FLOPs utilization);
on CPU, float32 against the float32 matmul peak.
"""

import contextlib
import importlib
import os
import statistics
import subprocess
import sys
import time
import types
from typing import Callable, Dict, List

import torch
from torch.utils.flop_counter import FlopCounterMode


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(dev: torch.device):
    """bf16 autocast on CUDA, nothing on CPU (float32)."""
    if dev.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def machine(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name()} (bf16 autocast)"
    return f"CPU, {torch.get_num_threads()} threads, {os.cpu_count()} cores visible (float32)"


def matmul_peak(dev: torch.device, repeats: int = 10) -> float:
    """FLOP/s of a large square matmul (bf16 on CUDA, float32 on CPU), the median of `repeats`."""
    n = 8192 if dev.type == "cuda" else 2048
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    torch.matmul(a, b)
    times = []
    for _ in range(repeats):
        sync(dev)
        start = time.perf_counter()
        torch.matmul(a, b)
        sync(dev)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of `fn` (matmuls and attention, as `torch.utils.flop_counter` counts them). `fn` must run
    with gradients enabled (the counter's module tracking hooks into autograd)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def time_interleaved(fns: Dict[str, Callable[[], object]], repeats: int, dev: torch.device) -> Dict[str, List[float]]:
    """Seconds per call of each function; calls alternate so that all see the same (shared) machine state."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(dev)
            start = time.perf_counter()
            fn()
            sync(dev)
            times[name].append(time.perf_counter() - start)
    return times


def median(values: List[float]) -> float:
    return statistics.median(values)


def print_timings(
    times: Dict[str, List[float]], peer: str, flops: float, peak: float, unit: str = "ms", width: int = 28
) -> None:
    """One line per timed function: median time, ratio to the peer's median time, and model FLOP/s as a fraction
    of the matmul peak."""
    base = median(times[peer])
    peers = f"{peer}'" if peer.endswith("s") else f"{peer}'s"
    for name, t in times.items():
        seconds = median(t)
        print(
            f"{name:{width}s} {seconds * 1000:9.1f} {unit}  {seconds / base:5.2f}x {peers} time  "
            f"{flops / seconds / peak * 100:5.1f}% of matmul peak",
            flush=True,
        )


def compiled(module: torch.nn.Module, frozen: bool = False) -> torch.nn.Module:
    """`torch.compile` of `module` (a compiled wrapper sharing its parameters).

    :param frozen: inductor's `freezing` option, for inference without gradients: weights become constants of the
        graph, so that GEMMs take prepacked weights and constant subexpressions fold. Later weight updates are not seen.
    """
    return torch.compile(module, options={"freezing": True} if frozen else None)


PIO_011_DIR = os.environ.get("PIO_011_DIR", "/tmp/pio011")


def import_perceiver_io_011():
    """perceiver-io 0.11's `perceiver.model.core` (its backend modules), importable beside this library.

    Installed with `pip install --no-deps --target` into `PIO_011_DIR` if absent, with `einops`, which its
    modules compute with. `fairscale` is stubbed: 0.11 imports it only for activation checkpointing, which the
    benchmark does not use. The package is imported under its own name `perceiver` and moved to `pio011.*` in
    `sys.modules`, so that this library's `perceiver` stays importable.
    """
    if not os.path.isdir(os.path.join(PIO_011_DIR, "perceiver")) or not os.path.isdir(
        os.path.join(PIO_011_DIR, "einops")
    ):
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--ignore-requires-python"]
            + ["--target", PIO_011_DIR, "perceiver-io==0.11.0", "einops"],
            check=True,
        )
    ours = {name: mod for name, mod in sys.modules.items() if name == "perceiver" or name.startswith("perceiver.")}
    for name in ours:
        del sys.modules[name]
    stubbed = "fairscale" not in sys.modules
    if stubbed:

        def checkpoint_wrapper(*args, **kwargs):
            raise NotImplementedError("fairscale is stubbed for the benchmark (activation checkpointing unused)")

        fairscale = types.ModuleType("fairscale")
        fairscale.nn = types.ModuleType("fairscale.nn")
        fairscale.nn.checkpoint_wrapper = checkpoint_wrapper
        sys.modules["fairscale"], sys.modules["fairscale.nn"] = fairscale, fairscale.nn
    sys.path.insert(0, PIO_011_DIR)
    try:
        core = importlib.import_module("perceiver.model.core")
    finally:
        sys.path.remove(PIO_011_DIR)
        for name in [n for n in sys.modules if n == "perceiver" or n.startswith("perceiver.")]:
            sys.modules["pio011." + name] = sys.modules.pop(name)
        sys.modules.update(ours)
    return core
