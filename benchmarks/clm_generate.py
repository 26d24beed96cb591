"""Perceiver AR generation: tokens/s of this library's cached 🤗 `generate` vs transformers' GPT-2 of equal depth and
width (same vocabulary, prompt and number of new tokens, greedy), vs generation without cache and vs recomputing the
full forward pass every step; and the per-token latency of cached steps as the context fills `max_seq_len` and
the window slides beyond it.

    python -m benchmarks.clm_generate            # 6 layers, 256 channels, max_seq_len 1024, 256 latents, prompt 512
    python -m benchmarks.clm_generate --quick    # a smaller model, for a smoke test
    python -m benchmarks.clm_generate --compile  # also the backend's cached step under torch.compile

Random weights; `min_new_tokens` forces the full number of new tokens. On CUDA, generation runs under bf16 autocast.
"""

import argparse
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from benchmarks.common import autocast, compiled, device, machine, median, sync, time_interleaved
from perceiver.model.text.clm import (
    CausalLanguageModelConfig,
    PerceiverCausalLanguageModel,
    PerceiverCausalLanguageModelConfig,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small model and few tokens")
    parser.add_argument("--num-layers", type=int, default=6)
    parser.add_argument("--num-channels", type=int, default=256)
    parser.add_argument("--num-heads", type=int, default=8)
    parser.add_argument("--max-seq-len", type=int, default=1024)
    parser.add_argument("--max-latents", type=int, default=256)
    parser.add_argument("--prompt-len", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.quick:
        args.num_layers, args.max_seq_len, args.max_latents, args.prompt_len, args.new_tokens = 2, 256, 64, 128, 16
    return args


def latency_curve(backend, dev, prompt_len: int, steps: int, step_fn=None) -> list:
    """Seconds of each cached single-token step, starting from a prompt of `prompt_len` tokens."""
    step_fn = backend if step_fn is None else step_fn
    cache = backend.empty_kv_cache(1, device=dev)
    token = torch.randint(3, 262, (1, 1), device=dev)
    times = []
    with torch.no_grad(), autocast(dev):
        backend(torch.randint(3, 262, (1, prompt_len), device=dev), prompt_len - 1, kv_cache=cache)
        for _ in range(steps):
            sync(dev)
            start = time.perf_counter()
            step_fn(token, 0, kv_cache=cache)
            sync(dev)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = device()
    torch.manual_seed(0)
    config = CausalLanguageModelConfig(
        vocab_size=262,
        max_seq_len=args.max_seq_len,
        max_latents=args.max_latents,
        num_channels=args.num_channels,
        num_heads=args.num_heads,
        num_self_attention_layers=args.num_layers,
    )
    ours = PerceiverCausalLanguageModel(PerceiverCausalLanguageModelConfig(config)).to(dev).eval()
    gpt2_config = GPT2Config(
        vocab_size=262,
        n_positions=args.max_seq_len,
        n_embd=args.num_channels,
        n_layer=args.num_layers,
        n_head=args.num_heads,
    )
    gpt2 = GPT2LMHeadModel(gpt2_config).to(dev).eval()
    prompt = torch.randint(3, 262, (1, args.prompt_len), device=dev)
    n = args.new_tokens
    kwargs = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)

    def generate(model, **extra):
        def run():
            with torch.no_grad(), autocast(dev):
                return model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), **kwargs, **extra)

        return run

    def recompute():
        with torch.no_grad(), autocast(dev):
            ours.backend_model.generate(prompt, n, num_latents=args.max_latents, use_cache=False)

    fns = {
        "perceiver-io, cache": generate(ours, num_latents=args.max_latents),
        "GPT-2, cache": generate(gpt2),
        "perceiver-io, no cache": generate(ours, num_latents=args.max_latents, use_cache=False),
        "perceiver-io, full recompute": recompute,
    }
    for fn in fns.values():
        fn()  # warm-up
    times = time_interleaved(fns, args.repeats, dev)

    print(
        f"Perceiver AR generation: {args.num_layers} self-attention layers, {args.num_channels} channels, "
        f"max_seq_len {args.max_seq_len}, {args.max_latents} latents; GPT-2 {args.num_layers} layers, "
        f"{args.num_channels} channels; prompt {args.prompt_len}, {n} new tokens, greedy; {machine(dev)}; "
        f"median of {args.repeats}"
    )
    gpt2_speed = n / median(times["GPT-2, cache"])
    cached = median(times["perceiver-io, cache"])
    for name, t in times.items():
        seconds = median(t)
        print(
            f"{name:30s} {n / seconds:8.1f} tokens/s  {n / seconds / gpt2_speed:5.2f}x GPT-2's tokens/s  "
            f"{seconds / cached:5.1f}x the cached time",
            flush=True,
        )

    # per-token latency of cached steps while the context fills max_seq_len and the window slides beyond it
    steps = 2 * args.max_seq_len - args.prompt_len
    print_curve("eager", latency_curve(ours.backend_model, dev, args.prompt_len, steps), args.prompt_len)
    if args.compile:
        step = compiled(ours.backend_model)
        latency_curve(ours.backend_model, dev, args.prompt_len, 4, step)  # compilation
        print_curve("compiled", latency_curve(ours.backend_model, dev, args.prompt_len, steps, step), args.prompt_len)


def print_curve(name: str, curve: list, prompt_len: int, buckets: int = 8) -> None:
    size = len(curve) // buckets
    cells = []
    for i in range(buckets):
        context = prompt_len + i * size
        cells.append(f"{context}-{context + size}: {median(curve[i * size : (i + 1) * size]) * 1000:.2f}")
    first, last = median(curve[:size]), median(curve[-size:])
    print(f"cached step latency, {name} (ms, median of {size} steps, by context length): " + ", ".join(cells))
    print(f"  last/first bucket: {last / first:.2f}", flush=True)


if __name__ == "__main__":
    main()
