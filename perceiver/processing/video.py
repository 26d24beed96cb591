"""Video helpers (OpenCV): consecutive frame pairs from a video file, rendered frames to a video file."""

import os
from pathlib import Path
from typing import Iterable, Iterator, Optional, Tuple, Union

import numpy as np

# codecs that OpenCV's bundled FFmpeg writes without extra libraries
_FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}


def read_frame_pairs(
    video_path: Union[str, os.PathLike], max_pairs: Optional[int] = None
) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Yields consecutive frames `(frame_t, frame_t+1)` of a video as RGB `uint8` arrays `(h, w, 3)`."""
    import cv2

    if not Path(video_path).is_file():
        raise ValueError(f"video_path={str(video_path)!r} is not a file")
    capture = cv2.VideoCapture(str(video_path))
    if not capture.isOpened():
        raise ValueError(f"video_path={str(video_path)!r} cannot be read as a video")
    try:
        previous = None
        num_pairs = 0
        while max_pairs is None or num_pairs < max_pairs:
            ok, frame = capture.read()
            if not ok:
                break
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if previous is not None:
                yield previous, frame
                num_pairs += 1
            previous = frame
    finally:
        capture.release()


def write_video(video_path: Union[str, os.PathLike], frames: Iterable[np.ndarray], fps: float = 30.0) -> int:
    """Writes RGB `uint8` frames `(h, w, 3)` of equal size to `video_path` (`.mp4` or `.avi`); returns the number
    of frames written."""
    import cv2

    suffix = Path(video_path).suffix.lower()
    if suffix not in _FOURCC:
        raise ValueError(f"video_path={str(video_path)!r} must end with one of {sorted(_FOURCC)}")
    writer = None
    num_frames = 0
    try:
        for frame in frames:
            frame = np.asarray(frame)
            if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
                raise ValueError(
                    f"frame {num_frames} has shape {frame.shape} and dtype {frame.dtype}; allowed: "
                    "(height, width, 3) uint8"
                )
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*_FOURCC[suffix]), fps, size)
                if not writer.isOpened():
                    raise ValueError(f"video_path={str(video_path)!r} cannot be written by OpenCV")
            elif (frame.shape[1], frame.shape[0]) != size:
                raise ValueError(f"frame {num_frames} has size {frame.shape[:2]}, the first frame {size[::-1]}")
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            num_frames += 1
    finally:
        if writer is not None:
            writer.release()
    return num_frames


def render_optical_flow_video(
    pipeline,
    input_path: Union[str, os.PathLike],
    output_path: Union[str, os.PathLike],
    fps: Optional[float] = None,
    max_pairs: Optional[int] = None,
    progress: bool = True,
    **pipeline_kwargs,
) -> int:
    """Computes the optical flow between consecutive frames of `input_path` with an `optical-flow` pipeline and
    writes its renderings to `output_path` (one frame less than the input); returns the number of frames written.
    `fps` defaults to the input's. `progress` shows a tqdm progress bar of the rendered frames (on stderr)."""
    import cv2
    from tqdm.auto import tqdm

    capture = cv2.VideoCapture(str(input_path))
    if fps is None:
        fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    num_pairs = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) - 1) or None  # None where the count is unknown
    capture.release()
    if max_pairs is not None and num_pairs is not None:
        num_pairs = min(num_pairs, max_pairs)
    pairs = read_frame_pairs(input_path, max_pairs)
    pairs = tqdm(pairs, total=num_pairs, desc="optical flow", unit="frame", disable=not progress)
    renderings = (pipeline(pair, render=True, **pipeline_kwargs) for pair in pairs)
    return write_video(output_path, renderings, fps=fps)
