"""Generation speed of the Perceiver AR causal language model on CPU: tokens/s with cache, without cache, and by
recomputing the full forward pass every step (plain backend loop, no 🤗 overhead).

    python benchmarks/clm_generate.py            # 8 layers, 512 channels, max_seq_len 1024, max_latents 256, 512 tokens
    python benchmarks/clm_generate.py --quick    # a smaller model, for a smoke test

The prompt fills half the window and starts with one latent, so generation covers phase 1 (latents grow to
max_latents) and phase 2 (prefix grows); see docs/perceiver_ar.md.
"""

import argparse
import time

import torch

from perceiver.model.text.clm import (
    CausalLanguageModelConfig,
    PerceiverCausalLanguageModel,
    PerceiverCausalLanguageModelConfig,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small model and few tokens")
    parser.add_argument("--num-layers", type=int, default=8)
    parser.add_argument("--num-channels", type=int, default=512)
    parser.add_argument("--max-seq-len", type=int, default=1024)
    parser.add_argument("--max-latents", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=512)
    parser.add_argument("--prompt-len", type=int, default=None, help="default: max_seq_len // 2")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.quick:
        args.num_layers, args.num_channels, args.max_seq_len, args.max_latents, args.new_tokens = 2, 128, 256, 64, 64
    if args.prompt_len is None:
        args.prompt_len = args.max_seq_len // 2
    return args


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = CausalLanguageModelConfig(
        vocab_size=262,
        max_seq_len=args.max_seq_len,
        max_latents=args.max_latents,
        num_channels=args.num_channels,
        num_self_attention_layers=args.num_layers,
    )
    model = PerceiverCausalLanguageModel(PerceiverCausalLanguageModelConfig(config)).eval()
    prompt = torch.randint(3, 262, (1, args.prompt_len))
    n = args.new_tokens
    print(
        f"model: {args.num_layers} layers, {args.num_channels} channels, max_seq_len {args.max_seq_len}, "
        f"max_latents {args.max_latents}; prompt {args.prompt_len} tokens, {n} new tokens, "
        f"{torch.get_num_threads()} threads"
    )

    def hf_generate(use_cache: bool):
        return lambda: model.generate(
            input_ids=prompt, num_latents=1, max_new_tokens=n, min_new_tokens=n, do_sample=False, use_cache=use_cache
        )

    def recompute():
        with torch.inference_mode():
            model.backend_model.generate(prompt, n, num_latents=1, use_cache=False)

    hf_generate(True)()  # warm-up
    results = {
        "with cache (🤗 generate)": timed(hf_generate(True)),
        "without cache (🤗 generate)": timed(hf_generate(False)),
        "full forward every step (backend loop)": timed(recompute),
    }
    cached = results["with cache (🤗 generate)"]
    for name, seconds in results.items():
        print(f"{name:40s} {n / seconds:8.1f} tokens/s  ({seconds:6.1f} s, {seconds / cached:5.1f}x the cached time)")
    ratio = results["full forward every step (backend loop)"] / cached
    print(f"speed-up of the cache over recomputation: {ratio:.1f}x (target >= 5x)")


if __name__ == "__main__":
    main()
