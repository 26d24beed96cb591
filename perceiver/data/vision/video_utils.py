"""perceiver-io 0.11's video helpers at their 0.11 path. Deprecated: use `perceiver.model.vision.optical_flow.video`
(`read_frame_pairs`, `write_video`)."""

import os
import warnings
from typing import List, Tuple, Union

import numpy as np

from perceiver.processing import video

warnings.warn(
    "perceiver.data.vision.video_utils is deprecated, use perceiver.model.vision.optical_flow.video",
    DeprecationWarning,
    stacklevel=2,
)


def read_video_frame_pairs(video_path: Union[str, os.PathLike]) -> List[Tuple[np.ndarray, np.ndarray]]:
    """All pairs of consecutive RGB frames of a video (see `video.read_frame_pairs`)."""
    return list(video.read_frame_pairs(video_path))


def read_video_frames(video_path: Union[str, os.PathLike]) -> List[np.ndarray]:
    """All RGB frames `(h, w, 3)` of a video."""
    pairs = read_video_frame_pairs(video_path)
    return [pairs[0][0]] + [second for _, second in pairs] if pairs else []


def write_video(video_path: Union[str, os.PathLike], frames: List[np.ndarray], fps: float) -> None:
    """Writes RGB frames to `video_path` (see `video.write_video`)."""
    video.write_video(video_path, frames, fps)
