"""Masked LM forward of this library vs transformers' `PerceiverForMaskedLM` with the same weights, in one process,
interleaved; model FLOPs (`torch.utils.flop_counter`) over the machine's measured matmul peak.

Default: the deepmind/language-perceiver architecture (d_model 768, d_latents 1280, 256 latents, 26 self-attention
layers, qk 256, v 1280) on 1 x 2048 tokens, random weights (nothing is downloaded).

    python -m benchmarks.mlm_forward                      # language-perceiver, eager
    python -m benchmarks.mlm_forward --layers 6 --compile # also both models compiled (plain; on CPU also frozen)
    python -m benchmarks.mlm_forward --long               # 1k, 4k, 16k, 64k tokens: time and peak memory
    python -m benchmarks.mlm_forward --quick              # a small model, for a smoke test

`--long` runs each size and model in a fresh process and reports its time and the peak memory a forward pass adds
to what the model and input hold (CUDA: peak allocated; CPU: peak resident set size, sampled every millisecond).
"""

import argparse
import json
import resource
import subprocess
import sys
import threading
import time

import torch
from transformers import PerceiverConfig, PerceiverForMaskedLM

from benchmarks.common import (
    autocast,
    compiled,
    count_flops,
    device,
    machine,
    matmul_peak,
    median,
    print_timings,
    sync,
    time_interleaved,
)
from perceiver.model.text.mlm import PerceiverMaskedLanguageModel, PerceiverMaskedLanguageModelConfig
from perceiver.model.text.mlm.convert import convert_config, copy_weights

LANGUAGE_PERCEIVER = dict(
    vocab_size=262,
    max_position_embeddings=2048,
    d_model=768,
    d_latents=1280,
    num_latents=256,
    num_blocks=1,
    num_self_attends_per_block=26,
    num_self_attention_heads=8,
    num_cross_attention_heads=8,
    qk_channels=256,
    v_channels=1280,
)
QUICK = dict(
    LANGUAGE_PERCEIVER, max_position_embeddings=512, num_self_attends_per_block=4, d_latents=256, v_channels=256
)
LONG_SIZES = (1024, 4096, 16384, 65536)


def build(source_config: PerceiverConfig, dev: torch.device):
    torch.manual_seed(0)
    source = PerceiverForMaskedLM(source_config).eval().to(dev)
    model = PerceiverMaskedLanguageModel(PerceiverMaskedLanguageModelConfig(convert_config(source))).eval()
    copy_weights(source, model.backend_model)
    return model.to(dev), source


def compare(args, source_config: PerceiverConfig, dev: torch.device) -> None:
    ours, theirs = build(source_config, dev)
    seq_len = source_config.max_position_embeddings
    input_ids = torch.randint(0, source_config.vocab_size, (args.batch_size, seq_len), device=dev)
    mask = torch.ones_like(input_ids)
    models = {"perceiver-io": ours, "transformers": theirs}
    if args.compile:
        compiled_models = {f"{name}, compiled": compiled(m) for name, m in models.items()}
        if dev.type == "cpu":  # frozen weights: prepacked GEMM weights, a CPU feature
            compiled_models.update({f"{name}, compiled frozen": compiled(m, frozen=True) for name, m in models.items()})
        models.update(compiled_models)

    def forward(model):
        def run():
            with torch.no_grad(), autocast(dev):
                return model(input_ids=input_ids, attention_mask=mask).logits

        return run

    fns = {name: forward(m) for name, m in models.items()}
    outputs = {name: fn() for name, fn in fns.items()}  # warm-up (and compilation)
    max_diff = max((outputs[n] - outputs["transformers"]).abs().max().item() for n in outputs)
    flops = count_flops(lambda: ours(input_ids=input_ids, attention_mask=mask))
    peak = matmul_peak(dev)
    times = time_interleaved(fns, args.repeats, dev)

    print(
        f"masked LM forward: {source_config.num_self_attends_per_block} self-attention layers, d_model "
        f"{source_config.d_model}, d_latents {source_config.d_latents}, {source_config.num_latents} latents; "
        f"batch {args.batch_size} x {seq_len} tokens; {machine(dev)}; median of {args.repeats}"
    )
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s; model FLOPs: {flops / 1e9:.2f} GFLOP; max abs diff {max_diff:.1e}")
    print_timings(times, "transformers", flops, peak, width=32)


def long_input_run(impl: str, seq_len: int, repeats: int) -> dict:
    """Time and peak memory of one forward at `seq_len` tokens with 256 latents (run in a fresh process)."""
    dev = device()
    config = PerceiverConfig(**dict(LANGUAGE_PERCEIVER, max_position_embeddings=seq_len, num_self_attends_per_block=6))
    ours, theirs = build(config, dev)
    model = ours if impl == "perceiver-io" else theirs
    ours = theirs = None
    input_ids = torch.randint(0, config.vocab_size, (1, seq_len), device=dev)

    def forward():
        with torch.inference_mode(), autocast(dev):
            model(input_ids=input_ids)

    forward()  # warm-up
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    for _ in range(repeats):
        sync(dev)
        start = time.perf_counter()
        if dev.type == "cuda":
            forward()
        else:
            peak = peak_rss_increase(forward)
        sync(dev)
        times.append(time.perf_counter() - start)
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    return {"seconds": median(times), "peak_bytes": peak}


def peak_rss_increase(fn) -> int:
    """Peak resident set size during `fn()` minus the size before (sampled every millisecond, Linux)."""
    page = resource.getpagesize()

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page

    before, peak, done = rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return max(peak[0], rss()) - before


def long_inputs(args) -> None:
    print(f"long inputs: language-perceiver widths, 6 self-attention layers, 256 latents; {machine(device())}")
    print(f"{'tokens':>8s} {'model':14s} {'ms':>9s} {'ms / 1k tokens':>14s} {'forward peak memory':>20s}")
    for seq_len in args.long_sizes:
        for impl in ("perceiver-io", "transformers"):
            command = [sys.executable, "-m", "benchmarks.mlm_forward", "--long-run", impl, str(seq_len)]
            result = subprocess.run(command + ["--repeats", str(args.repeats)], capture_output=True, text=True)
            if result.returncode != 0:
                reason = (result.stderr.strip().splitlines() or ["killed"])[-1][:60]
                print(f"{seq_len:8d} {impl:14s} failed: {reason}")
                continue
            r = json.loads(result.stdout.strip().splitlines()[-1])
            print(
                f"{seq_len:8d} {impl:14s} {r['seconds'] * 1000:9.1f} {r['seconds'] * 1000 / seq_len * 1024:14.2f} "
                f"{r['peak_bytes'] / 2**20:9.0f} MiB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller model and sequence")
    parser.add_argument("--layers", type=int, default=None, help="self-attention layers (default: 26)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="also time both models under torch.compile")
    parser.add_argument("--long", action="store_true", help="1k to 64k tokens: time and peak memory per size")
    parser.add_argument("--long-sizes", type=int, nargs="+", default=LONG_SIZES, help="token counts of --long")
    parser.add_argument("--long-run", nargs=2, metavar=("IMPL", "SEQ_LEN"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.long_run:
        print(json.dumps(long_input_run(args.long_run[0], int(args.long_run[1]), args.repeats)))
    elif args.long:
        long_inputs(args)
    else:
        config = dict(QUICK if args.quick else LANGUAGE_PERCEIVER)
        if args.layers:
            config["num_self_attends_per_block"] = args.layers
        compare(args, PerceiverConfig(**config), device())


if __name__ == "__main__":
    main()
