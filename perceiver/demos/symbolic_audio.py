"""Optional demo (`make demo-audio`): a tiny Perceiver AR learns scales and arpeggios and continues a prompt.

Synthesizes piano performances (scales and arpeggios in random keys, tempos and dynamics) as MIDI files, trains
with the command line script `perceiver.scripts.audio.symbolic` for a few minutes, converts the last checkpoint into
a 🤗 model, continues the opening of a held-out performance with the `symbolic-audio-generation` pipeline and writes
`continued.mid`, `continued.wav` (built-in synthesizer, no system packages) and `piano_roll.png` (prompt in blue,
continuation in orange). It prints how many of the generated notes belong to the prompt's key: about 7 in 12 for an
untrained model, close to all once it has learned.

`python -m perceiver.demos.symbolic_audio [--output DIR] [--max-steps N] [--max-time HH:MM:SS]`.
"""

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

from perceiver.demos.common import latest_run_dir

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)


def performance(seed: int) -> "pretty_midi.PrettyMIDI":  # noqa: F821
    """Phrases of scales and arpeggios in one key (the root's pitch class and mode are in the instrument name)."""
    import pretty_midi

    rng = random.Random(seed)
    root, mode = rng.randint(48, 64), rng.choice([MAJOR, MINOR])
    scale = [root + 12 * octave + step for octave in range(3) for step in mode]
    beat = rng.choice([0.12, 0.15, 0.2, 0.25])
    legato = rng.random() < 0.5
    piano = pretty_midi.Instrument(program=0, name=f"{root % 12} {'major' if mode == MAJOR else 'minor'}")
    time_ = 0.0
    for _ in range(8):
        kind = rng.choice(["up", "down", "arpeggio"])
        if kind == "arpeggio":
            up = [scale[i] for i in (0, 2, 4, 7, 9, 11, 14)]
            pitches = up + up[-2::-1]
        else:
            pitches = scale[: rng.choice([8, 15])]
            pitches = pitches if kind == "up" else pitches[::-1]
        loud = rng.randint(56, 100)
        for i, pitch in enumerate(pitches):
            velocity = min(127, loud + (12 if i % 4 == 0 else 0))  # accents on the beats
            end = time_ + (beat if legato else beat * 0.6)
            piano.notes.append(pretty_midi.Note(velocity, pitch, time_, end))
            time_ += beat
        time_ += beat * rng.choice([1, 2, 4])  # a breath between phrases
    midi = pretty_midi.PrettyMIDI()
    midi.instruments.append(piano)
    return midi


def write_performances(data_dir: Path, num_train: int, num_valid: int) -> Dict[str, List[Path]]:
    files: Dict[str, List[Path]] = {"train": [], "valid": []}
    for split, count, offset in (("train", num_train, 0), ("valid", num_valid, 100_000)):
        (data_dir / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            path = data_dir / split / f"{i:04d}.mid"
            performance(offset + i).write(str(path))
            files[split].append(path)
    return files


def opening(midi: "pretty_midi.PrettyMIDI", num_notes: int) -> "pretty_midi.PrettyMIDI":  # noqa: F821
    """The first `num_notes` notes of `midi`."""
    import pretty_midi

    prompt = pretty_midi.PrettyMIDI()
    source = midi.instruments[0]
    piano = pretty_midi.Instrument(program=source.program, name=source.name)
    piano.notes = sorted(source.notes, key=lambda n: n.start)[:num_notes]
    prompt.instruments.append(piano)
    return prompt


def train_in_process(args: List[str], cwd: Path) -> None:
    import torch

    from perceiver.scripts.audio.symbolic import main as train

    previous_dir = os.getcwd()
    torch.set_num_threads(1)
    os.chdir(cwd)
    try:
        train(args)
    finally:
        os.chdir(previous_dir)


def main(
    output_dir: Path,
    max_steps: int = 600,
    max_time: str = "00:00:05:00",
    num_train: int = 240,
    num_valid: int = 8,
    batch_size: int = 16,
    max_new_tokens: int = 384,
    in_process: bool = False,
) -> Dict[str, object]:
    """Runs the demo in `output_dir`; returns the output files and the fraction of generated notes in key.
    `in_process`: train in this process rather than by running the script (quicker to start, for tests)."""
    import pretty_midi
    import torch
    from transformers import pipeline

    from perceiver.model.audio import symbolic

    output_dir = output_dir.resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    files = write_performances(output_dir / "data", num_train, num_valid)
    print(f"1. synthesized {num_train} + {num_valid} performances of scales and arpeggios into {output_dir / 'data'}")
    print(f"2. training a tiny Perceiver AR on them (at most {max_steps} steps, {max_time})", flush=True)
    args = [
        "fit",
        f"--data.source={output_dir / 'data'}",
        f"--data.dataset_dir={output_dir / 'datasets'}",
        "--data.max_seq_len=256",
        "--data.random_train_shift=true",
        f"--data.batch_size={batch_size}",
        "--data.num_workers=0",
        "--model.max_latents=64",
        "--model.num_channels=128",
        "--model.num_heads=4",
        "--model.num_self_attention_layers=2",
        "--model.cross_attention_dropout=0.1",
        "--optimizer=AdamW",
        "--optimizer.lr=1e-3",
        "--optimizer.weight_decay=0.01",
        "--lr_scheduler=CosineWithWarmupLR",
        f"--lr_scheduler.warmup_steps={min(50, max(1, max_steps // 10))}",
        "--lr_scheduler.min_fraction=0.1",
        f"--trainer.max_steps={max_steps}",
        f"--trainer.max_time={max_time}",
        f"--trainer.val_check_interval={min(100, max_steps)}",
        "--trainer.check_val_every_n_epoch=null",
        "--trainer.limit_val_batches=4",
        "--trainer.log_every_n_steps=10",
        "--trainer.enable_progress_bar=false",
    ]
    print("$ python -m perceiver.scripts.audio.symbolic " + " ".join(args), flush=True)
    if in_process:
        train_in_process(args, output_dir)
    else:
        # one thread: for a model this small, thread synchronization costs more than it saves
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "perceiver.scripts.audio.symbolic", *args]
        subprocess.run(command, cwd=output_dir, env=env, check=True)
    checkpoint = latest_run_dir(output_dir / "logs" / "symbolic") / "checkpoints" / "last.ckpt"
    model_dir = output_dir / "scales-perceiver-ar"
    symbolic.convert_checkpoint(model_dir, checkpoint)
    print(f"3. converted {checkpoint} into a 🤗 model directory: {model_dir}")

    torch.manual_seed(0)
    torch.set_num_threads(1)  # generating with a tiny model: one thread is fastest
    generator = pipeline("symbolic-audio-generation", model=str(model_dir))
    held_out = pretty_midi.PrettyMIDI(str(files["valid"][0]))
    prompt = opening(held_out, num_notes=20)
    outputs = {"midi": output_dir / "continued.mid", "wav": output_dir / "continued.wav"}
    outputs["piano_roll"] = output_dir / "piano_roll.png"
    result = generator(
        prompt,
        max_new_tokens=max_new_tokens,
        num_latents=16,
        do_sample=True,
        top_k=8,
        render=True,
        output_file=outputs["midi"],
        piano_roll_file=outputs["piano_roll"],
    )
    outputs["wav"].write_bytes(result["generated_audio_wav"])
    continued = result["generated_audio_midi"]
    prompt_end = max(n.end for n in prompt.instruments[0].notes)
    generated = [n for n in continued.instruments[0].notes if n.start >= prompt_end - 1e-6]
    root, mode = held_out.instruments[0].name.split()
    key = {(int(root) + step) % 12 for step in (MAJOR if mode == "major" else MINOR)}
    in_key = sum(n.pitch % 12 in key for n in generated) / max(len(generated), 1)
    print(f"4. continued the opening (20 notes) of a held-out performance in {root=} {mode}:")
    print(f"   {len(generated)} notes generated, {in_key:.0%} of them in the prompt's key (random: about 58%)")
    for name, path in outputs.items():
        print(f"   {name}: {path}")
    print(f"done in {time.perf_counter() - start:.0f} s")
    return {**outputs, "in_key": in_key, "num_generated": len(generated)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("demo_output/symbolic_audio"), help="output directory")
    parser.add_argument("--max-steps", type=int, default=600, help="training steps")
    parser.add_argument("--max-time", default="00:00:05:00", help="training time limit, DD:HH:MM:SS")
    args = parser.parse_args()
    main(args.output, args.max_steps, args.max_time)
