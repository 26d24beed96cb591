"""Training speed of the Perceiver AR causal language model on CPU: tokens/s of forward, backward and AdamW step.

    python benchmarks/clm_train.py            # 8 layers, 512 channels, max_seq_len 1024, max_latents 256, batch 4
    python benchmarks/clm_train.py --quick    # a smaller model, for a smoke test

Each sequence has max_seq_len tokens: the last max_latents are latents (they get a loss), the rest prefix, of which
`cross_attention_dropout` (default 0.5) is dropped in training. Input tokens/s counts all tokens of a batch.
"""

import argparse
import time

import torch

from perceiver.model.core.loss import token_cross_entropy
from perceiver.model.core.perceiver_ar import latent_targets
from perceiver.model.text.clm import CausalLanguageModel, CausalLanguageModelConfig


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small model and few steps")
    parser.add_argument("--num-layers", type=int, default=8)
    parser.add_argument("--num-channels", type=int, default=512)
    parser.add_argument("--max-seq-len", type=int, default=1024)
    parser.add_argument("--max-latents", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.quick:
        args.num_layers, args.num_channels, args.max_seq_len, args.max_latents, args.steps = 2, 128, 256, 64, 3
    return args


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
    model = CausalLanguageModel(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randint(3, 262, (args.batch_size, args.max_seq_len))
    prefix_len = args.max_seq_len - args.max_latents
    targets = latent_targets(x, args.max_latents)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = token_cross_entropy(model(x, prefix_len), targets)
        loss.backward()
        optimizer.step()
        return loss.item()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    seconds = (time.perf_counter() - start) / args.steps
    print(
        f"model: {args.num_layers} layers, {args.num_channels} channels, max_seq_len {args.max_seq_len}, "
        f"max_latents {args.max_latents}; batch {args.batch_size}, {torch.get_num_threads()} threads"
    )
    print(
        f"{seconds:.2f} s/step, {args.batch_size * args.max_seq_len / seconds:.0f} input tokens/s, "
        f"{args.batch_size * args.max_latents / seconds:.0f} latent (loss) tokens/s"
    )


if __name__ == "__main__":
    main()
