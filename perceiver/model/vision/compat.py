"""perceiver-io 0.11's weight-copy helpers of the vision models (`copy_image_encoder_params`,
`copy_flow_encoder_params`, `copy_flow_decoder_params`), composed of the core copy functions that `convert_model`
of each task uses. Sources are transformers' `PerceiverModel`s (the `perceiver` attribute of an official model)."""

import torch.nn as nn

from perceiver.model.core.compat import (
    copy_cross_attention_layer_params,
    copy_latent_provider_params,
    copy_params,
    copy_self_attention_block_params,
)
from perceiver.model.core.modules import PerceiverDecoder, PerceiverEncoder


def _copy_encoder_layers(src: nn.Module, tgt: PerceiverEncoder) -> None:
    copy_cross_attention_layer_params(src.encoder.cross_attention, tgt.cross_attn_1, query_residual=True)
    copy_self_attention_block_params(src.encoder.self_attends, tgt.self_attn_1)
    copy_latent_provider_params(src, tgt)


def copy_image_encoder_params(src: nn.Module, tgt: PerceiverEncoder) -> None:
    """Copies the attention layers and latents of an official image classifier's `PerceiverModel` into an image
    encoder (its input adapter has no parameters for Fourier features, as in 0.11)."""
    _copy_encoder_layers(src, tgt)


def copy_flow_encoder_params(src: nn.Module, tgt: PerceiverEncoder) -> None:
    """Copies the encoder of an official optical flow `PerceiverModel`, its patch embedding included."""
    _copy_encoder_layers(src, tgt)
    copy_params(src.input_preprocessor.conv_after_patches, tgt.input_adapter.linear)


def copy_flow_decoder_params(src: nn.Module, tgt: PerceiverDecoder) -> None:
    """Copies the decoder of an official optical flow `PerceiverModel` (no attention residual, as its source)."""
    copy_cross_attention_layer_params(
        src.decoder.decoder.decoding_cross_attention, tgt.cross_attn, query_residual=False
    )
    copy_params(src.decoder.decoder.final_layer, tgt.output_adapter.linear)
