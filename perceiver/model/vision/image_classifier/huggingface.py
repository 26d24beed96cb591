"""🤗 wrapper of the image classifier, its image processor, and conversion from official 🤗 Perceiver image
classifiers and from Lightning checkpoints."""

import logging
import os
from dataclasses import fields
from typing import Any, Dict, Optional, Tuple, Union

import torch
from transformers import AutoImageProcessor, AutoModelForImageClassification
from transformers.modeling_outputs import ImageClassifierOutput

from perceiver._compat import deprecated_aliases, renamed_keywords
from perceiver.model.core.convert import copy_cross_attention_layer, copy_self_attention_layer, load_source_model
from perceiver.model.core.huggingface import (
    PerceiverBackendConfig,
    PerceiverBackendModel,
    atomic_directory,
    convert_lightning_checkpoint,
    register_auto_class,
    source_details,
)
from perceiver.model.core.loss import token_cross_entropy
from perceiver.model.core.validation import check_labels, check_pixel_values
from perceiver.model.vision.image_classifier.backend import (
    ClassificationDecoderConfig,
    ImageClassifier,
    ImageClassifierConfig,
    ImageEncoderConfig,
)
from perceiver.processing.image import PerceiverImageClassifierInputProcessor, mnist_image_processor_0_11

logger = logging.getLogger(__name__)

# ImageEncoderConfig fields that perceiver-io 0.11 does not know; left out of config.json while at their defaults
_ENCODER_EXTENSION_FIELDS = ("max_resolution", "input_adapter", "num_adapter_channels")

SOURCE_ARCHITECTURES = {
    "PerceiverForImageClassificationFourier": "fourier",
    "PerceiverForImageClassificationLearned": "learned",
    "PerceiverForImageClassificationConvProcessing": "conv",
}


class PerceiverImageClassifierConfig(PerceiverBackendConfig):
    """🤗 config of `PerceiverImageClassifier`; `num_labels` defaults to the decoder's `num_classes`."""

    model_type = "perceiver-io-image-classifier"
    backend_config_class = ImageClassifierConfig

    def __post_init__(self, **kwargs):
        if self.id2label is None and kwargs.get("num_labels") is None:
            kwargs["num_labels"] = self.model_config["decoder"]["num_classes"]
        super().__post_init__(**kwargs)

    def to_dict(self) -> Dict[str, Any]:
        # keeps config.json loadable by perceiver-io 0.11 unless a model needs a newer encoder feature
        output = super().to_dict()
        encoder = dict(output["model_config"]["encoder"])
        defaults = {f.name: f.default for f in fields(ImageEncoderConfig)}
        for name in _ENCODER_EXTENSION_FIELDS:
            if name in encoder and encoder[name] == defaults[name]:
                del encoder[name]
        output["model_config"] = {**output["model_config"], "encoder": encoder}
        return output


class PerceiverImageClassifier(PerceiverBackendModel):
    """🤗 image classifier: channels-last `pixel_values` `(b, h, w, c)`, optional `labels` `(b,)` for a loss."""

    config_class = PerceiverImageClassifierConfig
    backend_model_class = ImageClassifier
    main_input_name = "pixel_values"

    def forward(
        self,
        pixel_values: Optional[torch.Tensor] = None,
        labels: Optional[torch.LongTensor] = None,
        inputs: Optional[torch.Tensor] = None,
        return_dict: Optional[bool] = None,
        **kwargs,
    ) -> ImageClassifierOutput:
        """`inputs` is perceiver-io 0.11's name of `pixel_values`."""
        if (pixel_values is None) == (inputs is None):
            raise ValueError("pass exactly one of pixel_values and inputs (its old name)")
        name = "pixel_values" if inputs is None else "inputs"
        x = check_pixel_values(
            pixel_values if inputs is None else inputs, "(batch, height, width, channels)", name=name
        )
        # shapes: checked by the backend, whose message names the image shape the model takes
        logits = self.backend_model(x)
        if labels is not None:
            check_labels(labels, x.shape[:1], logits.shape[-1])
        loss = None if labels is None else token_cross_entropy(logits, labels.to(logits.device))
        return ImageClassifierOutput(loss=loss, logits=logits)


register_auto_class(PerceiverImageClassifierConfig, PerceiverImageClassifier, AutoModelForImageClassification)
AutoImageProcessor.register(
    PerceiverImageClassifierConfig,
    image_processor_classes={"pil": PerceiverImageClassifierInputProcessor},
    exist_ok=True,
)


def convert_config(
    source_config, input_adapter: str = "fourier", image_size: Optional[Tuple[int, int]] = None
) -> ImageClassifierConfig:
    """Backend config equivalent to the `transformers.PerceiverConfig` of an official image classifier whose
    input preprocessing is `input_adapter` (`"fourier"`: `...Fourier`, `"learned"`: `...Learned`, `"conv"`:
    `...ConvProcessing`).

    :param image_size: `(height, width)` of the configured input images (`image_shape`, the size the saved image
        processor produces). The converted Fourier and conv models take any other size too, as transformers' do
        (their `config.image_size` is unused, e.g. 56 for deepmind/vision-perceiver-fourier, which takes 224x224):
        position features are computed for the input's grid with the source's `max_resolution`. Default:
        `config.image_size` (the only size of the learned model).
    """
    if not source_config.use_query_residual:
        raise ValueError("source model uses use_query_residual=False, which this library's encoder does not support")
    if source_config.hidden_act != "gelu":
        raise ValueError(f"source model uses hidden_act={source_config.hidden_act!r}, only 'gelu' is supported")

    # transformers' image preprocessors take 3 channels and fix their position encodings (see modeling_perceiver)
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if image_size is None or input_adapter == "learned":
        image_size = (source_config.image_size, source_config.image_size)
    image_shape = (*image_size, 3)
    if input_adapter == "fourier":
        num_input_channels, adapter_kwargs = 3 + 2 * (2 * 64 + 1), dict(max_resolution=(224, 224))
    elif input_adapter == "learned":
        num_input_channels, adapter_kwargs = 2 * 256, dict(num_adapter_channels=256)
    elif input_adapter == "conv":
        num_input_channels, adapter_kwargs = (
            64 + 2 * (2 * 64 + 1),
            dict(num_adapter_channels=64, max_resolution=(56, 56)),
        )
    else:
        raise ValueError(f"input_adapter={input_adapter!r} must be one of {sorted(SOURCE_ARCHITECTURES.values())}")

    # default channel counts of transformers' PerceiverAttention, made explicit
    latent_channels = source_config.d_latents
    if source_config.qk_channels is not None:
        cross_qk = source_config.qk_channels
    elif source_config.cross_attention_shape_for_attention == "kv":
        cross_qk = num_input_channels
    else:
        cross_qk = latent_channels
    self_qk = source_config.qk_channels or latent_channels
    encoder = ImageEncoderConfig(
        image_shape=image_shape,
        num_frequency_bands=64,
        input_adapter=input_adapter,
        **adapter_kwargs,
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
    # transformers' PerceiverClassificationDecoder: 1 head, queries with d_latents channels, qk/v channels from kv
    decoder = ClassificationDecoderConfig(
        num_classes=source_config.num_labels,
        num_output_queries=1,
        num_output_query_channels=latent_channels,
        num_cross_attention_heads=1,
        num_cross_attention_qk_channels=latent_channels,
        num_cross_attention_v_channels=latent_channels,
        cross_attention_widening_factor=1,
        cross_attention_residual=True,
        dropout=source_config.attention_probs_dropout_prob,
        init_scale=source_config.initializer_range,
    )
    return ImageClassifierConfig(
        encoder=encoder, decoder=decoder, num_latents=source_config.num_latents, num_latent_channels=latent_channels
    )


def copy_weights(source, target: ImageClassifier) -> None:
    """Copies the weights of an official 🤗 image classifier into a backend `ImageClassifier` built from
    `convert_config(source.config, ...)`."""
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
        encoder.latent_provider._query.copy_(src.embeddings.latents)
        copy_cross_attention_layer(src.encoder.cross_attention, encoder.cross_attn_1)
        for src_layer, dst_layer in zip(src.encoder.self_attends, encoder.self_attn_1):
            copy_self_attention_layer(src_layer, dst_layer)
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
    input_adapter = SOURCE_ARCHITECTURES[type(source).__name__]
    image_processor = _load_image_processor(source_repo_id)
    if image_size is None and image_processor is not None and image_processor.do_resize:
        image_size = (image_processor.size.height, image_processor.size.width)
    config = PerceiverImageClassifierConfig(
        convert_config(source.config, input_adapter, image_size),
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
    with atomic_directory(save_dir, **source_details(source_repo_id)) as tmp_dir:
        model.save_pretrained(tmp_dir, **kwargs)
        image_processor.save_pretrained(tmp_dir)
    logger.info("converted %s into %s", source_repo_id, save_dir)
    return model


def convert_checkpoint(
    save_dir: Union[str, os.PathLike],
    ckpt_url: Union[str, os.PathLike],
    image_processor: PerceiverImageClassifierInputProcessor,
    id2label: Optional[Dict[int, str]] = None,
    label2id: Optional[Dict[str, int]] = None,
    **kwargs,
) -> PerceiverImageClassifier:
    """Converts a `LitImageClassifier` checkpoint (local path or URL) into a `PerceiverImageClassifier` saved in
    `save_dir` together with `image_processor`. Labels default to the class names saved in the checkpoint (see
    `LitImageClassifier`), else `LABEL_<i>` for each class."""
    from perceiver.model.vision.image_classifier.lightning import LitImageClassifier

    labels = {k: v for k, v in {"id2label": id2label, "label2id": label2id}.items() if v is not None}
    return convert_lightning_checkpoint(
        LitImageClassifier, PerceiverImageClassifier, save_dir, ckpt_url, image_processor, labels, **kwargs
    )


def convert_mnist_classifier_checkpoint(
    save_dir: Union[str, os.PathLike], ckpt_url: Union[str, os.PathLike], **kwargs
) -> PerceiverImageClassifier:
    """Converts a `LitImageClassifier` checkpoint trained on MNIST (as perceiver-io 0.11's MNIST data module
    preprocessed it: grayscale 28 x 28, no crop or resize, normalized with mean 0.5 and std 0.5) into a
    `PerceiverImageClassifier` saved with that image processor and labels "0" to "9"."""
    image_processor = mnist_image_processor_0_11()
    id2label = {i: str(i) for i in range(10)}
    label2id = {label: i for i, label in id2label.items()}
    return convert_checkpoint(save_dir, ckpt_url, image_processor, id2label=id2label, label2id=label2id, **kwargs)


def _load_image_processor(source_repo_id: str) -> Optional[PerceiverImageClassifierInputProcessor]:
    try:
        return PerceiverImageClassifierInputProcessor.from_pretrained(source_repo_id, channels_last=True)
    except OSError:
        logger.info("no image processor found at %s", source_repo_id)
        return None


# perceiver-io 0.11 spellings
convert_config = renamed_keywords(convert_config, config="source_config")
__getattr__ = deprecated_aliases(
    __name__,
    {
        "copy_image_encoder_params": (
            "perceiver.model.vision.image_classifier.convert_model",
            "perceiver.model.vision.compat:copy_image_encoder_params",
        )
    },
)
