"""Perceiver AR training step (forward, backward, AdamW) of this library vs perceiver-io 0.11 on the same config and
weights, in one process, interleaved; model FLOPs (`torch.utils.flop_counter`) over the measured matmul peak.

    python -m benchmarks.clm_train              # 8 layers, 512 channels, max_seq_len 2048, 512 latents, batch 2
    python -m benchmarks.clm_train --quick      # a smaller model, for a smoke test
    python -m benchmarks.clm_train --compile    # also both models under torch.compile
    python -m benchmarks.clm_train --no-peer --num-layers 16 --num-channels 2048 --num-heads 16 ...
                                                # this library alone (model FLOPs utilization of a large config)

Both models are timed with AdamW's default implementation (a loop over the parameters on CPU, what 0.11's CLI ran)
and with its fused kernel (this library's default).

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
from perceiver.model.core.lightning import fused_optimizer_supported
from perceiver.model.text.clm import CausalLanguageModel, CausalLanguageModelConfig


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small model and few steps")
    parser.add_argument("--num-layers", type=int, default=8)
    parser.add_argument("--num-channels", type=int, default=512)
    parser.add_argument("--num-heads", type=int, default=8)
    parser.add_argument("--max-seq-len", type=int, default=2048)
    parser.add_argument("--max-latents", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time both models under torch.compile")
    parser.add_argument("--no-peer", action="store_true", help="time this library alone (no perceiver-io 0.11)")
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
        num_heads=args.num_heads,
        num_self_attention_layers=args.num_layers,
    )
    models = {"perceiver-io": CausalLanguageModel(CausalLanguageModelConfig(**fields)).to(dev).train()}
    if not args.no_peer:
        pio011 = import_perceiver_io_011()
        theirs = pio011.CausalSequenceModel(pio011.CausalSequenceModelConfig(**fields)).to(dev).train()
        theirs.load_state_dict(models["perceiver-io"].state_dict())  # same layout, same weights
        models["perceiver-io 0.11"] = theirs

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

    if args.compile:
        models.update({f"{name}, compiled": compiled(m) for name, m in list(models.items())})
    steps = {name: step_fn(m, torch.optim.AdamW(m.parameters(), lr=1e-5)) for name, m in models.items()}
    # the same steps with AdamW's fused kernel, the default optimizer of this library's Lightning wrappers and CLI
    # (0.11's CLI ran AdamW's default for-loop implementation)
    for name in [name for name in ("perceiver-io", "perceiver-io 0.11") if name in models]:
        params = list(models[name].parameters())
        fused = torch.optim.AdamW(params, lr=1e-5, fused=fused_optimizer_supported(params))
        steps[f"{name}, fused AdamW"] = step_fn(models[name], fused)
    for name, step in list(steps.items()):  # warm-up (and compilation)
        try:
            step()
        except Exception as e:  # noqa: BLE001 - report and go on with the other models
            # dynamo's guards look 0.11's modules up by their import name, which this process gives to ours
            print(f"{name}: not measured ({type(e).__name__}: {str(e).splitlines()[0][:100]})")
            del steps[name]
    flops = count_flops(steps["perceiver-io"])
    peak = matmul_peak(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = time_interleaved(steps, args.repeats, dev)

    print(
        f"Perceiver AR training step: {args.num_layers} layers, {args.num_channels} channels, max_seq_len "
        f"{args.max_seq_len}, {args.max_latents} latents, batch {args.batch_size}, AdamW; {machine(dev)}; "
        f"median of {args.repeats}"
    )
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s; model FLOPs per step: {flops / 1e9:.2f} GFLOP")
    if dev.type == "cuda":
        print(f"peak GPU memory allocated: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    peer = "perceiver-io" if args.no_peer else "perceiver-io 0.11"
    print_timings(times, peer, flops, peak, unit="ms/step", width=34)


if __name__ == "__main__":
    main()
