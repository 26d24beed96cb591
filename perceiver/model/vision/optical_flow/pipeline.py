"""The `optical-flow` pipeline: frame pairs of any size (at least the model's) -> dense optical flow.

As in the Perceiver IO paper's evaluation, images larger than the model's training size are split into tiles of
that size overlapping by at least `min_overlap` pixels; the flow of each tile is blended into the whole with weights
falling linearly towards the tile borders.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Pipeline


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


class OpticalFlowPipeline(Pipeline):
    """`pipeline("optical-flow", model=...)`: image pairs -> optical flow from the first to the second image.

    Input: a pair `(image1, image2)` of RGB images (`(h, w, 3)` numpy arrays with values in [0, 255], or PIL
    images) of the same size, at least the model's image size; or a list of pairs. Output per pair: flow `(h, w, 2)`
    `float32` (x, y displacement in pixels), or with `render=True` its rendering `(h, w, 3)` `uint8`.

    :param batch_size: tiles per forward pass (default 1), as given to `pipeline(..., batch_size=)` or to a call;
        the tiles of all pairs of a call are batched together.
    :param micro_batch_size: the former name of `batch_size`.
    :param min_overlap: minimum overlap of neighbouring tiles in pixels (default 20, at most half the tile size).
    :param flow_scale_factor: multiplies the model's output (default 20, DeepMind's value for their model).
    :param render: return flow renderings instead of flow.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def _sanitize_parameters(
        self,
        micro_batch_size: Optional[int] = None,
        min_overlap: Optional[int] = None,
        flow_scale_factor: Optional[float] = None,
        render: Optional[bool] = None,
        **kwargs,
    ):
        preprocess_kwargs, forward_kwargs, postprocess_kwargs = {}, {}, {}
        if min_overlap is not None:
            preprocess_kwargs["min_overlap"] = min_overlap
        if micro_batch_size is not None:
            if micro_batch_size < 1:
                raise ValueError(f"micro_batch_size={micro_batch_size} must be >= 1")
            forward_kwargs["micro_batch_size"] = micro_batch_size
        if flow_scale_factor is not None:
            postprocess_kwargs["flow_scale_factor"] = flow_scale_factor
        if render is not None:
            postprocess_kwargs["render"] = render
        return preprocess_kwargs, forward_kwargs, postprocess_kwargs

    def __call__(self, inputs: Any, *args: Any, batch_size: Optional[int] = None, **kwargs: Any) -> Any:
        # transformers batches pipeline inputs with a padding collator that needs a tokenizer or feature extractor;
        # here a batch is made of tiles, and all tiles of all pairs are batched in `_forward` instead
        batch_size = batch_size if batch_size is not None else kwargs.pop("micro_batch_size", None)
        batch_size = batch_size if batch_size is not None else self._batch_size or 1
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be an int >= 1")
        if isinstance(inputs, list) and batch_size > 1 and _is_pair_list(inputs):
            # one preprocessing and forward pass over the tiles of all pairs
            return self._call_batched(inputs, batch_size, **kwargs)
        return super().__call__(inputs, *args, batch_size=1, micro_batch_size=batch_size, **kwargs)

    def _call_batched(self, pairs: List[Any], batch_size: int, **kwargs: Any) -> List[Any]:
        preprocess_params, forward_params, postprocess_params = self._sanitize_parameters(**kwargs)
        items = [self.preprocess(pair, **preprocess_params) for pair in pairs]
        merged = {"inputs": torch.cat([item["inputs"] for item in items])}
        flow = self.forward(merged, micro_batch_size=batch_size, **forward_params)["flow"]
        outputs, start = [], 0
        for item in items:
            num_tiles = item["inputs"].shape[0]
            tiles = {"flow": flow[start : start + num_tiles], **{k: item[k] for k in ("image_shape", "origins")}}
            outputs.append(self.postprocess(tiles, **postprocess_params))
            start += num_tiles
        return outputs

    @property
    def tile_shape(self) -> Tuple[int, int]:
        return tuple(self.model.config.backend_config.encoder.image_shape)

    def preprocess(self, image_pair: Any, min_overlap: Optional[int] = None) -> Dict[str, Any]:
        tile_shape = self.tile_shape
        if min_overlap is None:
            min_overlap = min(20, min(tile_shape) // 2)
        if not 0 <= min_overlap < min(tile_shape):
            raise ValueError(
                f"min_overlap={min_overlap} must be in [0, {min(tile_shape) - 1}] (tile size {tile_shape})"
            )
        num_channels = self.model.config.backend_config.encoder.num_patch_input_channels // 9
        frames = _frame_pair(image_pair, num_channels)
        image_shape = frames.shape[1:3]
        if image_shape[0] < tile_shape[0] or image_shape[1] < tile_shape[1]:
            raise ValueError(
                f"image_pair has image size {tuple(image_shape)}; allowed are sizes of at least the model's "
                f"{tile_shape} (pad or resize the images)"
            )
        origins = tile_origins(image_shape, tile_shape, min_overlap)
        # normalize to [-1, 1], channels first, then one crop per tile (patches are zero-padded at tile borders)
        frames = torch.from_numpy(frames).permute(0, 3, 1, 2) / 255.0 * 2 - 1
        th, tw = tile_shape
        tiles = torch.stack([frames[..., y : y + th, x : x + tw] for y, x in origins])  # (n, 2, c, th, tw)
        patches = extract_patches(tiles.flatten(0, 1)).unflatten(0, (len(origins), 2))
        return {"inputs": patches, "image_shape": tuple(image_shape), "origins": origins}

    def _forward(self, model_inputs: Dict[str, Any], micro_batch_size: int = 1) -> Dict[str, Any]:
        inputs = model_inputs["inputs"].to(self.model.device, self.model.dtype)
        flows = [
            self.model(inputs=inputs[i : i + micro_batch_size]).flow
            for i in range(0, inputs.shape[0], micro_batch_size)
        ]
        return {"flow": torch.cat(flows), **{k: v for k, v in model_inputs.items() if k != "inputs"}}

    def postprocess(self, model_outputs: Dict[str, Any], flow_scale_factor: float = 20.0, render: bool = False):
        tiles = model_outputs["flow"].float().cpu().numpy() * flow_scale_factor
        flow = blend_tiles(tiles, model_outputs["origins"], model_outputs["image_shape"])
        return render_optical_flow(flow) if render else flow


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


def _is_pair_list(inputs: List[Any]) -> bool:
    """Whether `inputs` is a list of image pairs (not itself one pair of two images)."""
    return all(isinstance(item, (tuple, list)) for item in inputs)


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    return f"{type(x).__name__} of shape {tuple(shape)}" if shape is not None else type(x).__name__
