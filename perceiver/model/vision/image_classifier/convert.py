"""Conversion of DeepMind's official 🤗 Perceiver image classifiers (transformers'
`PerceiverForImageClassificationFourier`, `...Learned` and `...ConvProcessing`) into `PerceiverImageClassifier`."""

import logging
import os
from typing import Any, Optional, Tuple, Union

import torch
import transformers

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
from perceiver.model.vision.image_classifier.backend import (
    ClassificationDecoderConfig,
    ImageClassifier,
    ImageClassifierConfig,
    ImageEncoderConfig,
)
from perceiver.model.vision.image_classifier.huggingface import (
    PerceiverImageClassifier,
    PerceiverImageClassifierConfig,
)
from perceiver.processing.image import PerceiverImageClassifierInputProcessor

logger = logging.getLogger(__name__)

# source architecture -> the input adapter that computes its input preprocessing
SOURCE_ARCHITECTURES = {
    "PerceiverForImageClassificationFourier": "fourier",
    "PerceiverForImageClassificationLearned": "learned",
    "PerceiverForImageClassificationConvProcessing": "conv",
}


def convert_config(
    source: Any, input_adapter: Optional[str] = None, image_size: Optional[Tuple[int, int]] = None
) -> ImageClassifierConfig:
    """Backend config equivalent to an official 🤗 image classifier, with channel counts read from its layers.

    :param source: the transformers model, or its `transformers.PerceiverConfig` (what perceiver-io 0.11 took; its
        layers are then built on the meta device, which allocates no memory).
    :param input_adapter: `"fourier"` (`...Fourier`), `"learned"` (`...Learned`) or `"conv"` (`...ConvProcessing`).
        Default: the source's architecture (for a config, the first of its `architectures` that is one of those,
        else `"fourier"`, 0.11's only one).
    :param image_size: `(height, width)` of the configured input images (`image_shape`, the size the saved image
        processor produces). The converted Fourier and conv models take any other size too, as transformers' do
        (their `config.image_size` is unused, e.g. 56 for deepmind/vision-perceiver-fourier, which takes 224x224):
        position features are computed for the input's grid with the source's `max_resolution`. Default:
        `config.image_size` (the only size of the learned model).
    """
    architectures = {adapter: name for name, adapter in SOURCE_ARCHITECTURES.items()}
    if input_adapter is None:
        is_config = isinstance(source, transformers.PerceiverConfig)
        names = (source.architectures or []) if is_config else [type(source).__name__]
        input_adapter = next((SOURCE_ARCHITECTURES[name] for name in names if name in SOURCE_ARCHITECTURES), "fourier")
    if input_adapter not in architectures:
        raise ValueError(f"input_adapter={input_adapter!r} must be one of {sorted(architectures)}")
    source = source_model(source, architectures[input_adapter])
    if type(source).__name__ != architectures[input_adapter]:
        raise ValueError(
            f"input_adapter={input_adapter!r} converts a {architectures[input_adapter]}, the source is a "
            f"{type(source).__name__}"
        )

    source_config, preprocessor = source.config, source.perceiver.input_preprocessor
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if image_size is None or input_adapter == "learned":
        image_size = (source_config.image_size, source_config.image_size)
    if input_adapter == "learned":
        adapter_fields = dict(num_adapter_channels=preprocessor.convnet_1x1.out_channels)
    else:
        adapter_fields = fourier_position_fields(preprocessor.position_embeddings)
        if input_adapter == "conv":
            adapter_fields["num_adapter_channels"] = preprocessor.convnet.conv.out_channels
    encoder = ImageEncoderConfig(
        image_shape=(*image_size, preprocessor.in_channels),
        input_adapter=input_adapter,
        **adapter_fields,
        **encoder_config_fields(source),
    )
    # transformers' PerceiverClassificationDecoder: one learned output query
    source_decoder = source.perceiver.decoder.decoder
    decoder = ClassificationDecoderConfig(
        num_classes=source_decoder.final_layer.out_features,
        num_output_queries=1,
        num_output_query_channels=source_decoder.final_layer.in_features,
        **decoder_config_fields(source_decoder.decoding_cross_attention, source_config),
    )
    num_latents, num_latent_channels = source.perceiver.embeddings.latents.shape
    return ImageClassifierConfig(
        encoder=encoder, decoder=decoder, num_latents=num_latents, num_latent_channels=num_latent_channels
    )


def copy_weights(source, target: ImageClassifier) -> None:
    """Copies the weights of an official 🤗 image classifier into a backend `ImageClassifier` built from
    `convert_config(source)`."""
    encoder, decoder = target.encoder, target.decoder
    src = source.perceiver
    adapter, preprocessor = encoder.input_adapter, src.input_preprocessor
    input_adapter = target.config.encoder.input_adapter
    with torch.no_grad():
        if input_adapter == "learned":
            # 1x1 convolution == per-pixel linear map; projected position embeddings == learned position embedding
            adapter.linear.weight.copy_(preprocessor.convnet_1x1.weight.flatten(1))
            adapter.linear.bias.copy_(preprocessor.convnet_1x1.bias)
            adapter.position_embedding.copy_(
                preprocessor.positions_projection(preprocessor.position_embeddings.position_embeddings)
            )
        elif input_adapter == "conv":
            adapter.conv.weight.copy_(preprocessor.convnet.conv.weight)
            adapter.norm.load_state_dict(preprocessor.convnet.batchnorm.state_dict())
        copy_encoder_weights(src, encoder)
        src_decoder = src.decoder.decoder
        decoder.output_query_provider._query.copy_(src_decoder.output_position_encodings.position_embeddings)
        copy_cross_attention_layer(src_decoder.decoding_cross_attention, decoder.cross_attn)
        decoder.output_adapter.linear.load_state_dict(src_decoder.final_layer.state_dict())


def convert_model(
    save_dir: Union[str, os.PathLike],
    source_repo_id: str = "deepmind/vision-perceiver-fourier",
    image_size: Optional[Tuple[int, int]] = None,
    **kwargs,
) -> PerceiverImageClassifier:
    """Converts an official 🤗 Perceiver image classifier (hub id or local directory) into a
    `PerceiverImageClassifier` saved with its image processor in `save_dir`. Logits equal the source model's.

    The source's `architectures` picks the input adapter: `PerceiverForImageClassificationFourier`,
    `PerceiverForImageClassificationLearned` or `PerceiverForImageClassificationConvProcessing`. `kwargs` go to
    `save_pretrained` (e.g. `push_to_hub=True`). Nothing is left in `save_dir` if conversion fails.

    :param image_size: `(height, width)` the converted model takes. Default: the output size of the source's image
        processor, else the source config's `image_size` (see `convert_config`).
    """
    source = load_source_model(source_repo_id, *SOURCE_ARCHITECTURES)
    image_processor = _load_image_processor(source_repo_id)
    if image_size is None and image_processor is not None and image_processor.do_resize:
        image_size = (image_processor.size.height, image_processor.size.width)
    config = PerceiverImageClassifierConfig(
        convert_config(source, image_size=image_size),
        id2label=source.config.id2label,
        label2id=source.config.label2id,
    )
    model = PerceiverImageClassifier(config)
    copy_weights(source, model.backend_model)
    if image_processor is None:
        # DeepMind's preprocessing (center crop 256 -> resize 224) scaled to the converted model's image size
        height, width = config.backend_config.encoder.image_shape[:2]
        image_processor = PerceiverImageClassifierInputProcessor(
            size={"height": height, "width": width},
            crop_size={"height": round(height * 256 / 224), "width": round(width * 256 / 224)},
        )
    save_converted(model, save_dir, source_repo_id, image_processor, **kwargs)
    return model


def _load_image_processor(source_repo_id: str) -> Optional[PerceiverImageClassifierInputProcessor]:
    try:
        return PerceiverImageClassifierInputProcessor.from_pretrained(source_repo_id, channels_last=True)
    except OSError:
        logger.info("no image processor found at %s", source_repo_id)
        return None


# perceiver-io 0.11 named `convert_config`'s argument `config`
convert_config = renamed_keywords(convert_config, config="source")
