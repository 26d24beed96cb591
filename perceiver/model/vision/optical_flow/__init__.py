"""Perceiver IO optical flow. Importing registers `OpticalFlowPerceiver` with `AutoConfig` and the `optical-flow`
pipeline with transformers' pipeline registry."""

from perceiver.model.vision.optical_flow.backend import (
    OpticalFlow,
    OpticalFlowConfig,
    OpticalFlowDecoderConfig,
    OpticalFlowEncoderConfig,
)
from perceiver.model.vision.optical_flow.convert import convert_config, convert_model
from perceiver.model.vision.optical_flow.huggingface import (
    OpticalFlowPerceiver,
    OpticalFlowPerceiverConfig,
    OpticalFlowPerceiverOutput,
)
from perceiver.model.vision.optical_flow.pipeline import (
    OpticalFlowPipeline,
    blend_tiles,
    extract_patches,
    render_optical_flow,
    tile_origins,
)
from perceiver.model.vision.optical_flow.video import read_frame_pairs, render_optical_flow_video, write_video

__all__ = [
    "OpticalFlow",
    "OpticalFlowConfig",
    "OpticalFlowDecoderConfig",
    "OpticalFlowEncoderConfig",
    "OpticalFlowPerceiver",
    "OpticalFlowPerceiverConfig",
    "OpticalFlowPerceiverOutput",
    "OpticalFlowPipeline",
    "blend_tiles",
    "convert_config",
    "convert_model",
    "extract_patches",
    "read_frame_pairs",
    "render_optical_flow",
    "render_optical_flow_video",
    "tile_origins",
    "write_video",
]
