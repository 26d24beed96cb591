"""The README's demo (`make demo`): train a Perceiver IO image classifier on scikit-learn's bundled 8x8 digits.

1. trains with the command line script `perceiver.scripts.vision.image_classifier` (Lightning, progress bar),
2. converts the best checkpoint (highest validation accuracy) into a 🤗 model directory,
3. runs the 🤗 `image-classification` pipeline on the held-out test images and prints predictions against labels,
4. writes a PNG grid of test images with their true and predicted labels.

Nothing is downloaded. `python -m perceiver.demos.digits [--output DIR] [--max-epochs N]`.
"""

import argparse
import re
import time
from pathlib import Path
from typing import List

from PIL import Image, ImageDraw

from perceiver.demos.common import latest_run_dir, run_script

CONFIG = Path(__file__).resolve().parents[2] / "examples" / "image_classifier_digits.yaml"
"""The training configuration: the example config of the repository."""


def best_checkpoint(run_dir: Path) -> Path:
    """The checkpoint of the run with the highest validation accuracy in its name."""
    checkpoints = list((run_dir / "checkpoints").glob("epoch=*-val_acc=*.ckpt"))
    if not checkpoints:
        raise FileNotFoundError(f"no checkpoint with val_acc in {run_dir / 'checkpoints'}")
    return max(checkpoints, key=lambda p: float(re.search(r"val_acc=([0-9.]+)\.ckpt", p.name).group(1)))


def prediction_grid(images: List[Image.Image], labels: List[str], predictions: List[str], columns: int = 8):
    """Test images (upscaled) with "true/predicted" captions; wrong predictions in red."""
    cell, caption = 72, 16
    rows = (len(images) + columns - 1) // columns
    grid = Image.new("RGB", (columns * cell, rows * (cell + caption)), "white")
    draw = ImageDraw.Draw(grid)
    for i, (image, label, prediction) in enumerate(zip(images, labels, predictions)):
        x, y = (i % columns) * cell, (i // columns) * (cell + caption)
        grid.paste(image.convert("RGB").resize((cell - 8, cell - 8), Image.NEAREST), (x + 4, y + 4))
        color = (0, 120, 0) if label == prediction else (200, 0, 0)
        draw.text((x + 6, y + cell - 2), f"{label} / {prediction}", fill=color)
    return grid


def main(output_dir: Path, max_epochs: int = 40) -> float:
    """Runs the demo in `output_dir`; returns the test accuracy of the converted model through the pipeline."""
    from transformers import pipeline

    from perceiver.data.vision import DigitsDataModule
    from perceiver.model.vision import image_classifier

    output_dir = output_dir.resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(f"1. training a Perceiver IO image classifier on the 8x8 digits for {max_epochs} epochs", flush=True)
    if not CONFIG.is_file():
        raise FileNotFoundError(f"the demo trains with {CONFIG}; run it from a checkout of the repository")
    args = ["fit", f"--config={CONFIG}", f"--trainer.max_epochs={max_epochs}"]
    run_script("perceiver.scripts.vision.image_classifier", args, output_dir)
    run_dir = latest_run_dir(output_dir / "logs" / "image_classifier")
    checkpoint = best_checkpoint(run_dir)
    print(f"   trained in {time.perf_counter() - start:.0f} s; best checkpoint: {checkpoint}")

    data = DigitsDataModule()
    model_dir = output_dir / "digits-perceiver"
    image_classifier.convert_checkpoint(model_dir, checkpoint, data.image_processor, id2label=data.id2label)
    print(f"2. converted it into a 🤗 model directory: {model_dir}")

    test = data.splits()["test"]
    images, labels = list(test["image"]), [data.id2label[label] for label in test["label"]]
    classifier = pipeline("image-classification", model=str(model_dir))
    predictions = [result[0]["label"] for result in classifier(images, top_k=1, batch_size=64)]
    accuracy = sum(p == t for p, t in zip(predictions, labels)) / len(labels)
    print(f"3. image-classification pipeline on {len(images)} held-out test images: accuracy {accuracy:.1%}")
    print("   label:      " + " ".join(labels[:32]))
    print("   prediction: " + " ".join(predictions[:32]))

    grid_path = output_dir / "predictions.png"
    prediction_grid(images[:48], labels[:48], predictions[:48]).save(grid_path)
    print(f"4. wrote {grid_path} (true / predicted label under each test image, errors in red)")
    print(f"done in {time.perf_counter() - start:.0f} s")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("demo_output/digits"), help="output directory")
    parser.add_argument("--max-epochs", type=int, default=40)
    args = parser.parse_args()
    main(args.output, args.max_epochs)
