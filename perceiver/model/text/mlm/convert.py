"""Conversion of DeepMind's official 🤗 masked language model (transformers' `PerceiverForMaskedLM`, e.g.
`deepmind/language-perceiver`) into `PerceiverMaskedLanguageModel`."""

import logging
import os
from typing import Any, Union

import torch
from transformers import AutoTokenizer, PerceiverTokenizer

from perceiver._compat import renamed_keywords
from perceiver.model.core.convert import (
    copy_cross_attention_layer,
    copy_encoder_weights,
    decoder_config_fields,
    encoder_config_fields,
    load_source_model,
    save_converted,
    source_model,
)
from perceiver.model.core.modules import PerceiverDecoder
from perceiver.model.text.common import TextEncoder, TextEncoderConfig
from perceiver.model.text.mlm.backend import MaskedLanguageModel, MaskedLanguageModelConfig, TextDecoderConfig
from perceiver.model.text.mlm.huggingface import PerceiverMaskedLanguageModel, PerceiverMaskedLanguageModelConfig

logger = logging.getLogger(__name__)


def convert_config(source: Any) -> MaskedLanguageModelConfig:
    """Backend config equivalent to a `transformers.PerceiverForMaskedLM`, with channel counts read from its layers.
    `source` may also be the model's `transformers.PerceiverConfig` (what perceiver-io 0.11 took); its layers are then
    built on the meta device, which allocates no memory."""
    source = source_model(source, "PerceiverForMaskedLM")
    config = source.config
    sequence = dict(vocab_size=config.vocab_size, max_seq_len=config.max_position_embeddings)
    encoder = TextEncoderConfig(**sequence, num_input_channels=config.d_model, **encoder_config_fields(source))
    decoder = TextDecoderConfig(
        **sequence, **decoder_config_fields(source.perceiver.decoder.decoding_cross_attention, config)
    )
    return MaskedLanguageModelConfig(
        encoder=encoder, decoder=decoder, num_latents=config.num_latents, num_latent_channels=config.d_latents
    )


def copy_weights(source, target: MaskedLanguageModel) -> None:
    """Copies the weights of a `transformers.PerceiverForMaskedLM` into a backend `MaskedLanguageModel`."""
    copy_text_encoder(source.perceiver, target.encoder)
    copy_text_decoder(source, target.decoder)


def copy_text_encoder(src, tgt: TextEncoder) -> None:
    """Copies the encoder of a transformers `PerceiverModel` with text input (`source.perceiver` of an official
    masked LM) into a `TextEncoder`: embeddings, latents and attention layers."""
    with torch.no_grad():
        tgt.input_adapter.txt_embedding.weight.copy_(src.input_preprocessor.embeddings.weight)
        tgt.input_adapter.pos_embedding.weight.copy_(src.input_preprocessor.position_embeddings.weight)
        copy_encoder_weights(src, tgt)


def copy_text_decoder(src, tgt: PerceiverDecoder) -> None:
    """Copies the decoder of a `transformers.PerceiverForMaskedLM` `src` into a masked LM's decoder: output queries,
    cross-attention and the output bias (the output weights are tied to the token embedding)."""
    decoder = src.perceiver.decoder
    with torch.no_grad():
        tgt.output_query_provider._query.copy_(decoder.output_position_encodings.position_embeddings)
        copy_cross_attention_layer(decoder.decoding_cross_attention, tgt.cross_attn)
        tgt.output_adapter.bias.copy_(src.embedding_decoder.bias)


def convert_model(
    save_dir: Union[str, os.PathLike], source_repo_id: str = "deepmind/language-perceiver", **kwargs: Any
) -> PerceiverMaskedLanguageModel:
    """Converts an official `transformers.PerceiverForMaskedLM` (hub id or local directory) into a
    `PerceiverMaskedLanguageModel` saved with its tokenizer in `save_dir`. Outputs equal the source model's.

    `kwargs` go to `save_pretrained` (e.g. `push_to_hub=True`). Nothing is left in `save_dir` if conversion fails.
    """
    source = load_source_model(source_repo_id, "PerceiverForMaskedLM")
    model = PerceiverMaskedLanguageModel(PerceiverMaskedLanguageModelConfig(convert_config(source)))
    copy_weights(source, model.backend_model)
    tokenizer = _load_tokenizer(source_repo_id)
    model.config.tokenizer_class = type(tokenizer).__name__
    save_converted(model, save_dir, source_repo_id, tokenizer, **kwargs)
    return model


def _load_tokenizer(source_repo_id: str):
    try:
        return AutoTokenizer.from_pretrained(source_repo_id, verbose=False)
    except (OSError, ValueError):
        # official Perceiver language models all use the UTF-8 bytes tokenizer, which needs no files
        logger.info("no tokenizer found at %s, using PerceiverTokenizer", source_repo_id)
        return PerceiverTokenizer()


# perceiver-io 0.11 named `convert_config`'s argument `config`
convert_config = renamed_keywords(convert_config, config="source")
