"""perceiver-io 0.11's script that puts two videos side by side (e.g. a video and its rendered optical flow).

`python -m perceiver.scripts.video` combines 0.11's example files in `examples/`, as 0.11 did.
"""

import os
from typing import Iterator, Union

import numpy as np
from PIL import Image

from perceiver.processing import video

PathLike = Union[str, os.PathLike]


def _frames(video_path: PathLike) -> Iterator[np.ndarray]:
    first = True
    for previous, frame in video.read_frame_pairs(video_path):
        if first:
            yield previous
            first = False
        yield frame


def _thumbnail(frame: np.ndarray, max_size: int) -> np.ndarray:
    image = Image.fromarray(frame)
    image.thumbnail((max_size, max_size))  # keeps the aspect ratio, never enlarges
    return np.asarray(image)


def create_side_by_side_video(
    video_1: PathLike,
    video_2: PathLike,
    max_size: int = 500,
    axis: int = 0,
    output_path: PathLike = "examples/sintel_clip_cave_dragon_fight_sbs.mp4",
    fps: float = 24,
) -> int:
    """Writes a video whose frames are the frames of `video_1` and `video_2`, each scaled to fit `max_size` pixels,
    stacked along `axis` (0: one above the other, 1: side by side), until the shorter video ends. Both videos'
    scaled frames must agree in size across `axis`. Returns the number of frames written.

    :param output_path: where to write (perceiver-io 0.11 always wrote to this default path).
    """
    if axis not in (0, 1):
        raise ValueError(f"axis={axis} must be 0 (vertical) or 1 (horizontal)")
    pairs = ((_thumbnail(f1, max_size), _thumbnail(f2, max_size)) for f1, f2 in zip(_frames(video_1), _frames(video_2)))
    return video.write_video(output_path, (np.concatenate([f1, f2], axis=axis) for f1, f2 in pairs), fps=fps)


if __name__ == "__main__":
    create_side_by_side_video(
        video_1="examples/sintel_clip_cave_dragon_fight.mp4",
        video_2="examples/sintel_clip_cave_dragon_fight_output.mp4",
        axis=1,
    )
