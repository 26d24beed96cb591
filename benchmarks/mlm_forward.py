"""Forward time of this library's masked language model vs. transformers' `PerceiverForMaskedLM`, same weights.

Default: the deepmind/language-perceiver architecture (d_model 768, d_latents 1280, 256 latents, 26 self-attention
layers, qk 256, v 1280) on 1 x 2048 tokens, float32 on CPU, random weights (nothing is downloaded).
"""

import argparse
import statistics
import time

import torch
from transformers import PerceiverConfig, PerceiverForMaskedLM

from perceiver.model.text.mlm import PerceiverMaskedLanguageModel, PerceiverMaskedLanguageModelConfig
from perceiver.model.text.mlm.huggingface import convert_config, copy_weights

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


def time_forward(fn, repeats: int) -> list:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller model and sequence")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args()

    torch.manual_seed(0)
    source_config = PerceiverConfig(**(QUICK if args.quick else LANGUAGE_PERCEIVER))
    source = PerceiverForMaskedLM(source_config).eval()
    model = PerceiverMaskedLanguageModel(PerceiverMaskedLanguageModelConfig(convert_config(source))).eval()
    copy_weights(source, model.backend_model)

    seq_len = source_config.max_position_embeddings
    input_ids = torch.randint(0, source_config.vocab_size, (args.batch_size, seq_len))
    attention_mask = torch.ones_like(input_ids)

    with torch.inference_mode():
        ours = model(input_ids=input_ids, attention_mask=attention_mask).logits
        theirs = source(input_ids=input_ids, attention_mask=attention_mask).logits
        max_diff = (ours - theirs[:, :seq_len]).abs().max().item()
        ours_times, theirs_times = [], []
        for _ in range(args.repeats):  # alternate, so that both see the same machine state
            theirs_times += time_forward(lambda: source(input_ids=input_ids, attention_mask=attention_mask), 1)
            ours_times += time_forward(lambda: model(input_ids=input_ids, attention_mask=attention_mask), 1)

    ours_median, theirs_median = statistics.median(ours_times), statistics.median(theirs_times)
    print(f"config: {'quick' if args.quick else 'language-perceiver'}, batch {args.batch_size} x {seq_len} tokens, "
          f"{torch.get_num_threads()} threads, {args.repeats} repeats")  # fmt: skip
    print(f"max abs logit difference: {max_diff:.2e}")
    print(f"transformers PerceiverForMaskedLM: {theirs_median * 1000:.1f} ms (median)")
    print(f"perceiver-io MaskedLanguageModel:  {ours_median * 1000:.1f} ms (median)")
    print(f"ratio perceiver-io / transformers: {ours_median / theirs_median:.3f} (< 1 is faster)")


if __name__ == "__main__":
    main()
