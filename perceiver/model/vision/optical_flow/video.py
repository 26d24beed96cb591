"""Video helpers of the optical-flow model; they live in `perceiver.processing.video` (used by data and model)."""

from perceiver.processing.video import read_frame_pairs, render_optical_flow_video, write_video

__all__ = ["read_frame_pairs", "render_optical_flow_video", "write_video"]
