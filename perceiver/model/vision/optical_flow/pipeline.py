"""The `optical-flow` pipeline: frame pairs of any size (at least the model's) -> dense optical flow.

As in the Perceiver IO paper's evaluation, images larger than the model's training size are split into tiles of
that size overlapping by at least `min_overlap` pixels; the flow of each tile is blended into the whole with weights
falling linearly towards the tile borders.
"""

from typing import Any, Dict, List, Optional, Tuple

import torch
from transformers import Pipeline

from perceiver.processing.optical_flow import (  # noqa: F401 (re-exported)
    _describe,
    _frame_pair,
    blend_tiles,
    extract_patches,
    render_optical_flow,
    tile_origins,
    tile_patches,
)


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
        patches = tile_patches(frames, tile_shape, origins)
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


def _is_pair_list(inputs: List[Any]) -> bool:
    """Whether `inputs` is a list of image pairs (not itself one pair of two images)."""
    return all(isinstance(item, (tuple, list)) for item in inputs)
