"""Optical flow processing shared by the `optical-flow` pipeline and perceiver-io 0.11's `OpticalFlowProcessor`:
frame pairs -> overlapping tiles of per-pixel 3x3 patches, per-tile flow -> blended flow, flow -> RGB rendering."""

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F


def extract_patches(frames: torch.Tensor) -> torch.Tensor:
    """Each pixel's zero-padded 3x3 neighbourhood: `(n, c, h, w)` -> `(n, 9 * c, h, w)`, channels ordered (row,
    column, color) as by DeepMind's `tf.image.extract_patches` preprocessing."""
    n, c, h, w = frames.shape
    patches = F.unfold(frames, kernel_size=3, padding=1)  # (n, c * 9, h * w), ordered (color, row, column)
    return patches.view(n, c, 9, h, w).transpose(1, 2).reshape(n, 9 * c, h, w)


def tile_origins(image_shape: Sequence[int], tile_shape: Sequence[int], min_overlap: int) -> List[Tuple[int, int]]:
    """Top-left corners `(y, x)` of tiles of `tile_shape` that cover `image_shape`, neighbours overlapping by at
    least `min_overlap` pixels."""

    def starts(size: int, tile: int) -> List[int]:
        return list(range(0, size - tile, tile - min_overlap)) + [size - tile]

    return [(y, x) for y in starts(image_shape[0], tile_shape[0]) for x in starts(image_shape[1], tile_shape[1])]


def tile_patches(frames: np.ndarray, tile_shape: Sequence[int], origins: Sequence[Tuple[int, int]]) -> torch.Tensor:
    """Model inputs `(n, 2, 9 * c, th, tw)` of a frame pair `(2, h, w, c)` with values in [0, 255], one per tile at
    `origins`: normalized to [-1, 1], each pixel's 3x3 patch (zero-padded at the tile's borders)."""
    frames = torch.from_numpy(frames).permute(0, 3, 1, 2) / 255.0 * 2 - 1
    th, tw = tile_shape
    tiles = torch.stack([frames[..., y : y + th, x : x + tw] for y, x in origins])  # (n, 2, c, th, tw)
    return extract_patches(tiles.flatten(0, 1)).unflatten(0, (len(origins), 2))


def blend_tiles(tiles: np.ndarray, origins: Sequence[Tuple[int, int]], image_shape: Sequence[int]) -> np.ndarray:
    """Weighted average of overlapping tile predictions `(n, th, tw, c)` at `origins` -> `(h, w, c)`. A pixel's
    weight in a tile is its distance (in pixels, from 1) to the tile's nearest border."""
    n, th, tw, c = tiles.shape
    wy = np.minimum(np.arange(th) + 1, th - np.arange(th))
    wx = np.minimum(np.arange(tw) + 1, tw - np.arange(tw))
    weights = np.minimum(wy[:, None], wx[None, :])[..., None].astype(np.float32)
    total = np.zeros((*image_shape[:2], c), dtype=np.float32)
    total_weights = np.zeros((*image_shape[:2], 1), dtype=np.float32)
    for tile, (y, x) in zip(tiles, origins):
        total[y : y + th, x : x + tw] += tile * weights
        total_weights[y : y + th, x : x + tw] += weights
    return total / total_weights


def _color_wheel() -> np.ndarray:
    # Middlebury flow color wheel (Baker et al., "A Database and Evaluation Methodology for Optical Flow"): red,
    # yellow, green, cyan, blue, magenta; segment lengths chosen for perceptually even steps.
    # (length, channel at 255, channel that ramps, ramp rises)
    segments = [
        (15, 0, 1, True),
        (6, 1, 0, False),
        (4, 1, 2, True),
        (11, 2, 1, False),
        (13, 2, 0, True),
        (6, 0, 2, False),
    ]
    blocks = []
    for length, full, ramp, rises in segments:
        block = np.zeros((length, 3))
        block[:, full] = 255
        steps = np.floor(255 * np.arange(length) / length)
        block[:, ramp] = steps if rises else 255 - steps
        blocks.append(block)
    return np.concatenate(blocks)


def render_optical_flow(flow: np.ndarray, max_flow: Optional[float] = None) -> np.ndarray:
    """Renders flow `(h, w, 2)` as an RGB image `(h, w, 3)` `uint8` with the standard (Middlebury) color wheel:
    hue is the direction, saturation the magnitude relative to `max_flow` (default: the largest in `flow`); zero
    flow is white, flow beyond `max_flow` is darkened."""
    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow must have shape (height, width, 2), got {flow.shape}")
    u, v = flow[..., 0], flow[..., 1]
    radius = np.sqrt(u**2 + v**2)
    scale = max_flow if max_flow is not None else float(radius.max())
    scale = max(scale, np.finfo(np.float32).eps)
    u, v, radius = u / scale, v / scale, radius / scale

    wheel = _color_wheel()
    num_colors = wheel.shape[0]
    position = (np.arctan2(-v, -u) / np.pi + 1) / 2 * (num_colors - 1)
    k0 = np.floor(position).astype(np.int64)
    k1 = (k0 + 1) % num_colors
    frac = (position - k0)[..., None]
    color = ((1 - frac) * wheel[k0] + frac * wheel[k1]) / 255.0
    inside = (radius <= 1)[..., None]
    color = np.where(inside, 1 - radius[..., None] * (1 - color), color * 0.75)
    return np.floor(255 * color).astype(np.uint8)


def _frame_pair(image_pair: Any, num_channels: int) -> np.ndarray:
    """Two images as one `float32` array `(2, h, w, num_channels)`, or a ValueError saying what is wrong."""
    if not isinstance(image_pair, (tuple, list)) or len(image_pair) != 2:
        if isinstance(image_pair, (tuple, list)):
            described = f"{type(image_pair).__name__} of length {len(image_pair)}"
        else:
            described = _describe(image_pair)
        raise ValueError(
            f"each input must be an image pair (image1, image2), got a {described}; pass a list of pairs for "
            "several pairs"
        )
    frames = []
    for i, image in enumerate(image_pair):
        if hasattr(image, "convert"):  # PIL image
            image = image.convert("RGB" if num_channels == 3 else "L")
        image = np.asarray(image, dtype=np.float32)
        if image.ndim == 2:
            image = image[..., None]
        if image.ndim != 3 or image.shape[-1] != num_channels:
            raise ValueError(
                f"image {i + 1} of image_pair has shape {image.shape}; allowed: (height, width, {num_channels})"
            )
        frames.append(image)
    if frames[0].shape != frames[1].shape:
        raise ValueError(f"images of image_pair differ in shape: {frames[0].shape} and {frames[1].shape}")
    return np.stack(frames)


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    return f"{type(x).__name__} of shape {tuple(shape)}" if shape is not None else type(x).__name__
