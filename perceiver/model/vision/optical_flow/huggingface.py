"""🤗 wrapper of the optical flow model, its `optical-flow` pipeline, and conversion from the official 🤗
`PerceiverForOpticalFlow`."""

import logging
import os
from dataclasses import dataclass
from typing import Optional, Union

import torch
from transformers.modeling_outputs import ModelOutput
from transformers.pipelines import PIPELINE_REGISTRY

from perceiver._compat import deprecated_aliases, renamed_keywords
from perceiver.model.core.convert import copy_cross_attention_layer, copy_self_attention_layer, load_source_model
from perceiver.model.core.huggingface import (
    PerceiverBackendConfig,
    PerceiverBackendModel,
    atomic_directory,
    register_auto_class,
    source_details,
)
from perceiver.model.vision.optical_flow.backend import (
    OpticalFlow,
    OpticalFlowConfig,
    OpticalFlowDecoderConfig,
    OpticalFlowEncoderConfig,
)
from perceiver.model.vision.optical_flow.pipeline import OpticalFlowPipeline

logger = logging.getLogger(__name__)


class OpticalFlowPerceiverConfig(PerceiverBackendConfig):
    model_type = "perceiver-io-optical-flow"
    backend_config_class = OpticalFlowConfig


@dataclass
class OpticalFlowPerceiverOutput(ModelOutput):
    """`flow` `(b, h, w, 2)`; `logits` is the same tensor under the name used by perceiver-io 0.11 and transformers."""

    flow: Optional[torch.FloatTensor] = None

    @property
    def logits(self) -> Optional[torch.FloatTensor]:
        return self.flow


class OpticalFlowPerceiver(PerceiverBackendModel):
    """🤗 optical flow model: `inputs` `(b, 2, 27, h, w)` (two frames, each pixel a 3x3 RGB patch) -> `flow`."""

    config_class = OpticalFlowPerceiverConfig
    backend_model_class = OpticalFlow
    main_input_name = "inputs"

    def forward(self, inputs: torch.Tensor, return_dict: Optional[bool] = None, **kwargs) -> OpticalFlowPerceiverOutput:
        return OpticalFlowPerceiverOutput(flow=self.backend_model(inputs))


register_auto_class(OpticalFlowPerceiverConfig, OpticalFlowPerceiver)
PIPELINE_REGISTRY.register_pipeline("optical-flow", pipeline_class=OpticalFlowPipeline, pt_model=OpticalFlowPerceiver)


def convert_config(source_config) -> OpticalFlowConfig:
    """Backend config equivalent to the `transformers.PerceiverConfig` of a `PerceiverForOpticalFlow`."""
    if not source_config.use_query_residual:
        raise ValueError("source model uses use_query_residual=False, which this library's encoder does not support")
    if source_config.hidden_act != "gelu":
        raise ValueError(f"source model uses hidden_act={source_config.hidden_act!r}, only 'gelu' is supported")
    # transformers' PerceiverForOpticalFlow fixes: 3x3 RGB patches, a 64-channel patch embedding ("conv after
    # patching"), 64 Fourier bands with the training size as maximum resolution, a 1-head decoder
    image_shape = tuple(source_config.train_size)
    num_input_channels = 64 + 2 * (2 * 64 + 1)
    latent_channels = source_config.d_latents
    by_kv = source_config.cross_attention_shape_for_attention == "kv"
    cross_qk = source_config.qk_channels or (num_input_channels if by_kv else latent_channels)
    self_qk = source_config.qk_channels or latent_channels
    encoder = OpticalFlowEncoderConfig(
        image_shape=image_shape,
        num_patch_input_channels=27,
        num_patch_hidden_channels=64,
        num_frequency_bands=64,
        num_cross_attention_heads=source_config.num_cross_attention_heads,
        num_cross_attention_qk_channels=cross_qk,
        num_cross_attention_v_channels=source_config.v_channels or cross_qk,
        cross_attention_widening_factor=source_config.cross_attention_widening_factor,
        num_self_attention_heads=source_config.num_self_attention_heads,
        num_self_attention_qk_channels=self_qk,
        num_self_attention_v_channels=source_config.v_channels or self_qk,
        num_self_attention_layers_per_block=source_config.num_self_attends_per_block,
        num_self_attention_blocks=source_config.num_blocks,
        first_self_attention_block_shared=True,
        self_attention_widening_factor=source_config.self_attention_widening_factor,
        dropout=source_config.attention_probs_dropout_prob,
        init_scale=source_config.initializer_range,
    )
    decoder_qk = latent_channels if by_kv else num_input_channels
    decoder = OpticalFlowDecoderConfig(
        image_shape=image_shape,
        rescale_factor=100.0,
        num_cross_attention_heads=1,
        num_cross_attention_qk_channels=decoder_qk,
        num_cross_attention_v_channels=decoder_qk,
        cross_attention_widening_factor=1,
        cross_attention_residual=False,
        dropout=source_config.attention_probs_dropout_prob,
        init_scale=source_config.initializer_range,
    )
    return OpticalFlowConfig(
        encoder=encoder, decoder=decoder, num_latents=source_config.num_latents, num_latent_channels=latent_channels
    )


def copy_weights(source, target: OpticalFlow) -> None:
    """Copies the weights of a `transformers.PerceiverForOpticalFlow` into a backend `OpticalFlow`."""
    encoder, decoder = target.encoder, target.decoder
    src = source.perceiver
    with torch.no_grad():
        encoder.input_adapter.linear.load_state_dict(src.input_preprocessor.conv_after_patches.state_dict())
        encoder.latent_provider._query.copy_(src.embeddings.latents)
        copy_cross_attention_layer(src.encoder.cross_attention, encoder.cross_attn_1)
        for src_layer, dst_layer in zip(src.encoder.self_attends, encoder.self_attn_1):
            copy_self_attention_layer(src_layer, dst_layer)
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
    model = OpticalFlowPerceiver(OpticalFlowPerceiverConfig(convert_config(source.config)))
    copy_weights(source, model.backend_model)
    with atomic_directory(save_dir, **source_details(source_repo_id)) as tmp_dir:
        model.save_pretrained(tmp_dir, **kwargs)
    logger.info("converted %s into %s", source_repo_id, save_dir)
    return model


# perceiver-io 0.11 spellings
convert_config = renamed_keywords(convert_config, config="source_config")
__getattr__ = deprecated_aliases(
    __name__,
    {
        name: ("perceiver.model.vision.optical_flow.convert_model", f"perceiver.model.vision.compat:{name}")
        for name in ("copy_flow_encoder_params", "copy_flow_decoder_params")
    },
)
