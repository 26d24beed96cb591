"""Optional second demo (`make demo-clm`): a small Perceiver AR trained on the English text of Python's pydoc topics.

Writes the text (UTF-8 bytes, no download) into train/valid files, trains with the command line script
`perceiver.scripts.text.clm` for a few minutes (`examples/clm_pydoc.yaml`), converts the last checkpoint into a 🤗
model and prints text generated from a prompt with the `text-generation` pipeline.

`python -m perceiver.demos.pydoc_clm [--output DIR] [--max-time HH:MM:SS]`.
"""

import argparse
import time
from pathlib import Path

from perceiver.demos.common import TokenProgress, latest_run_dir, run_script

CONFIG = Path(__file__).resolve().parents[2] / "examples" / "clm_pydoc.yaml"


def write_text(data_dir: Path, valid_fraction: float = 0.05) -> int:
    """pydoc's topics as one document each, the last `valid_fraction` of them for validation."""
    from pydoc_data.topics import topics

    documents = [topics[key].strip() for key in sorted(topics)]
    num_valid = max(1, int(len(documents) * valid_fraction))
    data_dir.mkdir(parents=True, exist_ok=True)
    # documents are separated by blank lines; the data module reads each file as one document and concatenates
    (data_dir / "train.txt").write_text("\n\n".join(documents[:-num_valid]))
    (data_dir / "valid.txt").write_text("\n\n".join(documents[-num_valid:]))
    return sum(len(d.encode()) for d in documents)


def main(output_dir: Path, max_time: str = "00:00:04:00", prompt: str = "The return value of ") -> str:
    """Runs the demo in `output_dir`; returns the generated text."""
    from transformers import pipeline

    from perceiver.model.text import clm

    if not CONFIG.is_file():
        raise FileNotFoundError(f"the demo trains with {CONFIG}; run it from a checkout of the repository")
    output_dir = output_dir.resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    num_bytes = write_text(output_dir / "data")
    print(f"1. wrote {num_bytes / 1e6:.1f} MB of pydoc text into {output_dir / 'data'}")
    print(f"2. training a Perceiver AR on it (at most {max_time})", flush=True)
    args = ["fit", f"--config={CONFIG}", f"--data.source={output_dir / 'data'}", f"--trainer.max_time={max_time}"]
    run_script("perceiver.scripts.text.clm", args, output_dir)
    checkpoint = latest_run_dir(output_dir / "logs" / "clm") / "checkpoints" / "last.ckpt"

    model_dir = output_dir / "pydoc-perceiver-ar"
    clm.convert_checkpoint(model_dir, checkpoint, tokenizer_name="perceiver-bytes")
    print(f"3. converted {checkpoint} into a 🤗 model directory: {model_dir}")
    generator = pipeline("text-generation", model=str(model_dir))
    progress = TokenProgress(160)
    output = generator(prompt, max_new_tokens=160, do_sample=True, top_k=10, num_latents=1, streamer=progress)
    text = output[0]["generated_text"]
    print(f"4. text-generation pipeline, prompt {prompt!r}:\n\n{text}\n")
    print(f"done in {time.perf_counter() - start:.0f} s")
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("demo_output/pydoc_clm"), help="output directory")
    parser.add_argument("--max-time", default="00:00:04:00", help="training time limit, DD:HH:MM:SS")
    args = parser.parse_args()
    main(args.output, args.max_time)
