"""perceiver-io 0.11's weight-copy helpers of the vision models (`copy_image_encoder_params`,
`copy_flow_encoder_params`, `copy_flow_decoder_params`): the copies that `convert_model` of each task makes, from
transformers' `PerceiverModel`s (the `perceiver` attribute of an official model)."""

import torch
import torch.nn as nn

from perceiver.model.core.convert import copy_cross_attention_layer, copy_encoder_weights
from perceiver.model.core.modules import PerceiverDecoder, PerceiverEncoder


def copy_image_encoder_params(src: nn.Module, tgt: PerceiverEncoder) -> None:
    """Copies the attention layers and latents of an official image classifier's `PerceiverModel` into an image
    encoder (its input adapter has no parameters for Fourier features, as in 0.11)."""
    with torch.no_grad():
        copy_encoder_weights(src, tgt)


def copy_flow_encoder_params(src: nn.Module, tgt: PerceiverEncoder) -> None:
    """Copies the encoder of an official optical flow `PerceiverModel`, its patch embedding included."""
    with torch.no_grad():
        copy_encoder_weights(src, tgt)
        tgt.input_adapter.linear.load_state_dict(src.input_preprocessor.conv_after_patches.state_dict())


def copy_flow_decoder_params(src: nn.Module, tgt: PerceiverDecoder) -> None:
    """Copies the decoder of an official optical flow `PerceiverModel` (cross-attention and output layer)."""
    with torch.no_grad():
        copy_cross_attention_layer(src.decoder.decoder.decoding_cross_attention, tgt.cross_attn)
        tgt.output_adapter.linear.load_state_dict(src.decoder.decoder.final_layer.state_dict())
