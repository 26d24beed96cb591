"""The README's demo: convert an official 🤗 Perceiver masked language model and fill in masked text.

It builds a small `transformers.PerceiverForMaskedLM` (random weights: nothing is downloaded), converts it into
this library's format with `convert_model`, checks that both give the same logits, and runs the 🤗 `fill-mask`
pipeline on the converted model. Run it with `python -m perceiver.demos.convert_mlm [--output DIR]`.
"""

import argparse
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, PerceiverConfig, PerceiverForMaskedLM, PerceiverTokenizer, pipeline

from perceiver.model.text import mlm  # registers the auto classes


def main(output_dir: Path) -> None:
    torch.manual_seed(0)
    source_dir, converted_dir = output_dir / "official", output_dir / "converted"
    source_config = PerceiverConfig(
        vocab_size=262,
        max_position_embeddings=128,
        d_model=64,
        d_latents=128,
        num_latents=32,
        num_blocks=1,
        num_self_attends_per_block=4,
        num_self_attention_heads=4,
        num_cross_attention_heads=4,
        qk_channels=64,
        v_channels=128,
        architectures=["PerceiverForMaskedLM"],
    )
    PerceiverForMaskedLM(source_config).save_pretrained(source_dir)
    print(f"1. built an official transformers PerceiverForMaskedLM (random weights) in {source_dir}")

    mlm.convert_model(converted_dir, source_repo_id=str(source_dir))
    print(f"2. converted it with perceiver.model.text.mlm.convert_model into {converted_dir}")

    tokenizer = PerceiverTokenizer()
    text = "The Perceiver reads bytes."
    inputs = tokenizer([text], return_tensors="pt")
    source = PerceiverForMaskedLM.from_pretrained(source_dir).eval()
    converted = AutoModelForMaskedLM.from_pretrained(converted_dir).eval()
    print(f"3. AutoModelForMaskedLM loads it as {type(converted).__module__}.{type(converted).__name__}")
    with torch.no_grad():
        n = inputs.input_ids.shape[1]
        diff = (source(**inputs).logits[:, :n] - converted(**inputs).logits).abs().max().item()
    print(f"4. max abs difference of the logits, official vs converted: {diff:.2e}")

    fill_mask = pipeline("fill-mask", model=str(converted_dir))
    masked = "The Perceiver reads [MASK]ytes."
    predictions = fill_mask(masked, top_k=3)
    print(f"5. fill-mask pipeline on {masked!r} (random weights, so the guesses are random too):")
    for prediction in predictions:
        print(f"   {prediction['score']:.4f}  {prediction['sequence']!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=None, help="where to write the models (default: a temp dir)")
    args = parser.parse_args()
    if args.output is None:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
    else:
        main(args.output)
