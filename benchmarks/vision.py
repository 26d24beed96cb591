"""Forward time of this library's vision models over transformers' for the same (converted) weights, on CPU.

Builds the official DeepMind architectures with random weights (deepmind/vision-perceiver-fourier at 224x224,
deepmind/optical-flow-perceiver at 368x496), converts them with this library's `convert_model` and times both
forward passes, interleaved, under `torch.inference_mode`. Prints seconds per forward pass and the ratio
ours / transformers' (below 1 means faster).

    python -m benchmarks.vision            # official depths, 3 timed runs each
    python -m benchmarks.vision --quick    # same inputs and widths, shallow models, 1 timed run
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch
import transformers

from benchmarks.common import count_flops, matmul_peak
from perceiver.model.vision import image_classifier, optical_flow


def fourier_classifier_source(quick: bool) -> transformers.PerceiverForImageClassificationFourier:
    # deepmind/vision-perceiver-fourier (transformers' convert_perceiver_to_pytorch.py, image_classification_fourier)
    config = transformers.PerceiverConfig(
        num_latents=512,
        d_latents=1024,
        d_model=261,
        num_blocks=1 if quick else 8,
        num_self_attends_per_block=6,
        num_cross_attention_heads=1,
        num_self_attention_heads=8,
        qk_channels=None,
        v_channels=None,
        num_labels=1000,
        image_size=224,
        architectures=["PerceiverForImageClassificationFourier"],
    )
    return transformers.PerceiverForImageClassificationFourier(config).eval()


def optical_flow_source(quick: bool) -> transformers.PerceiverForOpticalFlow:
    # deepmind/optical-flow-perceiver (transformers' convert_perceiver_to_pytorch.py, optical_flow)
    config = transformers.PerceiverConfig(
        num_latents=2048,
        d_latents=512,
        d_model=322,
        num_blocks=1,
        num_self_attends_per_block=2 if quick else 24,
        num_self_attention_heads=16,
        num_cross_attention_heads=1,
        train_size=[368, 496],
        architectures=["PerceiverForOpticalFlow"],
    )
    return transformers.PerceiverForOpticalFlow(config).eval()


def time_interleaved(fns: Dict[str, Callable[[], torch.Tensor]], repeats: int) -> Dict[str, List[float]]:
    """Seconds per call of each function; calls alternate so that load from other processes hits all alike."""
    times = {name: [] for name in fns}
    with torch.inference_mode():
        for fn in fns.values():  # warm-up
            fn()
        for _ in range(repeats):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return times


def benchmark(name: str, source, convert: Callable, target_class, inputs_ours, inputs_theirs, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source.save_pretrained(Path(tmp) / "source")
        convert(Path(tmp) / "converted", str(Path(tmp) / "source"))
        ours = target_class.from_pretrained(Path(tmp) / "converted").eval()
    with torch.inference_mode():
        max_diff = (ours(inputs_ours)[0] - source(inputs=inputs_theirs)[0]).abs().max().item()
    times = time_interleaved(
        {"ours": lambda: ours(inputs_ours)[0], "transformers": lambda: source(inputs=inputs_theirs)[0]}, repeats
    )
    t_ours, t_theirs = (statistics.median(times[k]) for k in ("ours", "transformers"))
    flops = count_flops(lambda: ours(inputs_ours))
    peak = matmul_peak(torch.device("cpu"))
    print(
        f"{name:<40} ours {t_ours:7.3f} s  transformers {t_theirs:7.3f} s  ratio {t_ours / t_theirs:5.2f}  "
        f"(max abs diff {max_diff:.1e}); {flops / 1e9:.1f} GFLOP, matmul peak {peak / 1e9:.1f} GFLOP/s: ours "
        f"{flops / t_ours / peak * 100:.1f}%, transformers {flops / t_theirs / peak * 100:.1f}% of peak",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shallow models (same inputs and widths), 1 timed run")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per model (default 3, quick 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} threads")

    pixels = torch.randn(1, 224, 224, 3)
    benchmark(
        "image classifier (Fourier, 224x224)",
        fourier_classifier_source(args.quick),
        image_classifier.convert_model,
        image_classifier.PerceiverImageClassifier,
        pixels,
        pixels.permute(0, 3, 1, 2),  # transformers takes channels first
        repeats,
    )
    patches = torch.randn(1, 2, 27, 368, 496)
    benchmark(
        "optical flow (368x496)",
        optical_flow_source(args.quick),
        optical_flow.convert_model,
        optical_flow.OpticalFlowPerceiver,
        patches,
        patches,
        repeats,
    )


if __name__ == "__main__":
    main()
