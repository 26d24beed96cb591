"""perceiver-io 0.11's optical flow processing at its 0.11 path, as thin wrappers of the `optical-flow` pipeline's
functions (tiling, 3x3 patch features, blending). Deprecated: use `pipeline("optical-flow", model=...)` and
`perceiver.model.vision.optical_flow.{render_optical_flow, render_optical_flow_video}`."""

import os
import warnings
from typing import Any, List, Sequence, Tuple, Union

import numpy as np
import torch

from perceiver.processing.optical_flow import (
    _frame_pair,
    blend_tiles,
    render_optical_flow,
    tile_origins,
    tile_patches,
)
from perceiver.processing.video import write_video

warnings.warn(
    "perceiver.data.vision.optical_flow is deprecated, use pipeline('optical-flow', model=...) of "
    "perceiver.model.vision.optical_flow",
    DeprecationWarning,
    stacklevel=2,
)

ImagePair = Tuple[Any, Any]


class OpticalFlowProcessor:
    """Splits image pairs `(h, w, 3)` (numpy or tensors, values in [0, 255]) into overlapping patches of
    `patch_size` (the model's image size) as model input, and blends the model's per-patch flow back into flow
    `(b, h, w, 2)`, scaled by `flow_scale_factor`. (0.11 could repeat the last patch of a row or column when the
    image size minus the patch size was a multiple of the stride; each patch position is used once here.)"""

    def __init__(self, patch_size: Tuple[int, int], patch_min_overlap: int = 20, flow_scale_factor: float = 20):
        if not 0 <= patch_min_overlap < min(patch_size):
            raise ValueError(
                f"patch_min_overlap={patch_min_overlap} must be in [0, {min(patch_size) - 1}] (patch_size={patch_size})"
            )
        self.patch_size = tuple(patch_size)
        self.patch_min_overlap = patch_min_overlap
        self.flow_scale_factor = flow_scale_factor

    def _origins(self, image_shape: Sequence[int]) -> List[Tuple[int, int]]:
        if image_shape[0] < self.patch_size[0] or image_shape[1] < self.patch_size[1]:
            raise ValueError(
                f"images have size {tuple(image_shape[:2])}; allowed are sizes of at least patch_size "
                f"{self.patch_size} (pad or resize the images)"
            )
        return tile_origins(image_shape[:2], self.patch_size, self.patch_min_overlap)

    def _frames(self, image_pair: ImagePair) -> np.ndarray:
        pair = tuple(np.asarray(image.cpu() if isinstance(image, torch.Tensor) else image) for image in image_pair)
        return _frame_pair(pair, num_channels=3)

    def preprocess(self, image_pair: ImagePair) -> torch.Tensor:
        """Model input of one image pair: `(num_patches, 2, 27, patch_h, patch_w)`."""
        frames = self._frames(image_pair)
        return tile_patches(frames, self.patch_size, self._origins(frames.shape[1:3]))

    def preprocess_batch(self, image_pairs: Sequence[ImagePair]) -> torch.Tensor:
        """Model input of image pairs of equal size: `(b, num_patches, 2, 27, patch_h, patch_w)`."""
        frames = [self._frames(pair) for pair in image_pairs]
        if any(f.shape != frames[0].shape for f in frames):
            raise ValueError("image_pairs must all have the same image shape")
        origins = self._origins(frames[0].shape[1:3])
        return torch.stack([tile_patches(f, self.patch_size, origins) for f in frames])

    def postprocess(self, predictions: torch.Tensor, img_shape: Tuple[int, ...]) -> torch.Tensor:
        """Blends per-patch flow `(num_patches, ph, pw, 2)` or `(b, num_patches, ph, pw, 2)` of images of
        `img_shape` into flow `(b, h, w, 2)`."""
        predictions = predictions.unsqueeze(0) if predictions.dim() == 4 else predictions
        origins = self._origins(img_shape)
        if predictions.shape[1] != len(origins):
            raise ValueError(
                f"predictions hold {predictions.shape[1]} patches, images of size {tuple(img_shape[:2])} have "
                f"{len(origins)}"
            )
        tiles = predictions.detach().float().cpu().numpy() * self.flow_scale_factor
        return torch.stack([torch.from_numpy(blend_tiles(t, origins, img_shape[:2])) for t in tiles])

    @torch.no_grad()
    def process(self, model: Any, image_pairs: Sequence[ImagePair], batch_size: int) -> torch.Tensor:
        """Flow `(b, h, w, 2)` of image pairs, computed by `model` (a backend `OpticalFlow`, or the 🤗
        `OpticalFlowPerceiver`) on at most `batch_size` patches at a time."""
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        image_shape = self._frames(image_pairs[0]).shape[1:3]
        inputs = self.preprocess_batch(image_pairs).flatten(0, 1)
        predictions = []
        for i in range(0, inputs.shape[0], batch_size):
            output = model(inputs[i : i + batch_size])
            predictions.append(getattr(output, "flow", output).cpu())
        return self.postprocess(torch.cat(predictions).unflatten(0, (len(image_pairs), -1)), image_shape)


def write_optical_flow_video(
    video_path: Union[str, os.PathLike], frames: Sequence[torch.Tensor], fps: float = 30
) -> None:
    """Writes renderings of flow frames `(h, w, 2)` to a video (see `render_optical_flow`)."""
    write_video(video_path, (render_optical_flow(np.asarray(frame)) for frame in frames), fps=fps)


__all__ = ["OpticalFlowProcessor", "render_optical_flow", "write_optical_flow_video"]
