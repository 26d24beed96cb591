"""Perceiver AR training step (forward, backward, AdamW) of this library vs perceiver-io 0.11 on the same config and
weights, in one process, interleaved; model FLOPs (`torch.utils.flop_counter`) over the measured matmul peak.

    python -m benchmarks.clm_train              # 8 layers, 512 channels, max_seq_len 2048, 512 latents, batch 2
    python -m benchmarks.clm_train --quick      # a smaller model, for a smoke test
    python -m benchmarks.clm_train --compile    # also both models under torch.compile

Each sequence has max_seq_len tokens: the last max_latents are latents (they get a loss), the rest prefix, of which
`cross_attention_dropout` (0.5) is dropped in training. perceiver-io 0.11 is installed into /tmp/pio011 (see
`common.import_perceiver_io_011`). On CUDA the step runs under bf16 autocast.
"""

import argparse

import torch
import torch.nn.functional as F

from benchmarks.common import (
    autocast,
    compiled,
    count_flops,
    device,
    import_perceiver_io_011,
    machine,
    matmul_peak,
    print_timings,
    time_interleaved,
)
from perceiver.model.text.clm import CausalLanguageModel, CausalLanguageModelConfig


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small model and few steps")
    parser.add_argument("--num-layers", type=int, default=8)
    parser.add_argument("--num-channels", type=int, default=512)
    parser.add_argument("--max-seq-len", type=int, default=2048)
    parser.add_argument("--max-latents", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time both models under torch.compile")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.quick:
        args.num_layers, args.num_channels, args.max_seq_len, args.max_latents, args.repeats = 2, 128, 256, 64, 3
    return args


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = device()
    torch.manual_seed(0)
    fields = dict(
        vocab_size=262,
        max_seq_len=args.max_seq_len,
        max_latents=args.max_latents,
        num_channels=args.num_channels,
        num_self_attention_layers=args.num_layers,
    )
    ours = CausalLanguageModel(CausalLanguageModelConfig(**fields)).to(dev).train()
    pio011 = import_perceiver_io_011()
    theirs = pio011.CausalSequenceModel(pio011.CausalSequenceModelConfig(**fields)).to(dev).train()
    theirs.load_state_dict(ours.state_dict())  # same layout, same weights

    x = torch.randint(3, 262, (args.batch_size, args.max_seq_len), device=dev)
    prefix_len = args.max_seq_len - args.max_latents
    targets = x[:, prefix_len:].roll(-1, dims=1)

    def step_fn(model, optimizer):
        def step():
            optimizer.zero_grad(set_to_none=True)
            with autocast(dev):
                logits = model(x, prefix_len).logits
                loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
            loss.backward()
            optimizer.step()

        return step

    models = {"perceiver-io": ours, "perceiver-io 0.11": theirs}
    if args.compile:
        models.update({f"{name}, compiled": compiled(m) for name, m in list(models.items())})
    steps = {name: step_fn(m, torch.optim.AdamW(m.parameters(), lr=1e-5)) for name, m in models.items()}
    for name, step in list(steps.items()):  # warm-up (and compilation)
        try:
            step()
        except Exception as e:  # noqa: BLE001 - report and go on with the other models
            # dynamo's guards look 0.11's modules up by their import name, which this process gives to ours
            print(f"{name}: not measured ({type(e).__name__}: {str(e).splitlines()[0][:100]})")
            del steps[name]
    flops = count_flops(steps["perceiver-io"])
    peak = matmul_peak(dev)
    times = time_interleaved(steps, args.repeats, dev)

    print(
        f"Perceiver AR training step: {args.num_layers} layers, {args.num_channels} channels, max_seq_len "
        f"{args.max_seq_len}, {args.max_latents} latents, batch {args.batch_size}, AdamW; {machine(dev)}; "
        f"median of {args.repeats}"
    )
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s; model FLOPs per step: {flops / 1e9:.2f} GFLOP")
    print_timings(times, "perceiver-io 0.11", flops, peak, unit="ms/step")


if __name__ == "__main__":
    main()
