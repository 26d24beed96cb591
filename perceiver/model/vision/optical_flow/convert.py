"""Conversion of DeepMind's official 🤗 optical flow model (transformers' `PerceiverForOpticalFlow`) into
`OpticalFlowPerceiver`."""

import os
from typing import Any, Union

import torch

from perceiver._compat import renamed_keywords
from perceiver.model.core.convert import (
    copy_cross_attention_layer,
    copy_encoder_weights,
    decoder_config_fields,
    encoder_config_fields,
    fourier_position_fields,
    load_source_model,
    save_converted,
    source_model,
)
from perceiver.model.vision.optical_flow.backend import (
    OpticalFlow,
    OpticalFlowConfig,
    OpticalFlowDecoderConfig,
    OpticalFlowEncoderConfig,
)
from perceiver.model.vision.optical_flow.huggingface import OpticalFlowPerceiver, OpticalFlowPerceiverConfig


def convert_config(source: Any) -> OpticalFlowConfig:
    """Backend config equivalent to a `transformers.PerceiverForOpticalFlow`, with channel counts read from its
    layers. `source` may also be the model's `transformers.PerceiverConfig` (what perceiver-io 0.11 took); its layers
    are then built on the meta device, which allocates no memory."""
    source = source_model(source, "PerceiverForOpticalFlow")
    preprocessor, source_decoder = source.perceiver.input_preprocessor, source.perceiver.decoder
    image_shape = tuple(source_decoder.output_image_shape)
    # this library's position features use the image size as maximum resolution, as transformers' flow model does
    fourier = fourier_position_fields(preprocessor.position_embeddings)
    if fourier["max_resolution"] != image_shape:
        raise ValueError(
            f"source model's Fourier features have max_resolution={fourier['max_resolution']}, the image size "
            f"{image_shape}; only equal ones are supported"
        )
    # the patch embedding ("conv after patching") maps both frames' patches of a pixel, concatenated
    patch_embedding = preprocessor.conv_after_patches
    encoder = OpticalFlowEncoderConfig(
        image_shape=image_shape,
        num_patch_input_channels=patch_embedding.in_features // 2,
        num_patch_hidden_channels=patch_embedding.out_features,
        num_frequency_bands=fourier["num_frequency_bands"],
        **encoder_config_fields(source),
    )
    decoder = OpticalFlowDecoderConfig(
        image_shape=image_shape,
        rescale_factor=source_decoder.rescale_factor,
        **decoder_config_fields(source_decoder.decoder.decoding_cross_attention, source.config),
    )
    num_latents, num_latent_channels = source.perceiver.embeddings.latents.shape
    return OpticalFlowConfig(
        encoder=encoder, decoder=decoder, num_latents=num_latents, num_latent_channels=num_latent_channels
    )


def copy_weights(source, target: OpticalFlow) -> None:
    """Copies the weights of a `transformers.PerceiverForOpticalFlow` into a backend `OpticalFlow`."""
    encoder, decoder = target.encoder, target.decoder
    src = source.perceiver
    with torch.no_grad():
        encoder.input_adapter.linear.load_state_dict(src.input_preprocessor.conv_after_patches.state_dict())
        copy_encoder_weights(src, encoder)
        copy_cross_attention_layer(src.decoder.decoder.decoding_cross_attention, decoder.cross_attn)
        decoder.output_adapter.linear.load_state_dict(src.decoder.decoder.final_layer.state_dict())


def convert_model(
    save_dir: Union[str, os.PathLike], source_repo_id: str = "deepmind/optical-flow-perceiver", **kwargs
) -> OpticalFlowPerceiver:
    """Converts an official `transformers.PerceiverForOpticalFlow` (hub id or local directory) into an
    `OpticalFlowPerceiver` saved in `save_dir`. Flow equals the source model's.

    `kwargs` go to `save_pretrained` (e.g. `push_to_hub=True`). Nothing is left in `save_dir` if conversion fails.
    """
    source = load_source_model(source_repo_id, "PerceiverForOpticalFlow")
    model = OpticalFlowPerceiver(OpticalFlowPerceiverConfig(convert_config(source)))
    copy_weights(source, model.backend_model)
    save_converted(model, save_dir, source_repo_id, **kwargs)
    return model


# perceiver-io 0.11 named `convert_config`'s argument `config`
convert_config = renamed_keywords(convert_config, config="source")
