"""🤗 wrapper of the masked language model, and conversion from official 🤗 Perceiver models and checkpoints."""

import logging
import os
from typing import Optional, Union

import torch
import transformers
from transformers import AutoModelForMaskedLM, AutoTokenizer, FillMaskPipeline, PerceiverTokenizer
from transformers.modeling_outputs import MaskedLMOutput
from transformers.pipelines import PIPELINE_REGISTRY

from perceiver._compat import deprecated_aliases, renamed_keywords
from perceiver.model.core.convert import (
    attention_shape,
    copy_cross_attention_layer,
    copy_self_attention_layer,
    load_source_model,
)
from perceiver.model.core.huggingface import (
    PerceiverBackendConfig,
    PerceiverBackendModel,
    atomic_directory,
    convert_lightning_checkpoint,
    load_tokenizer,
    register_auto_class,
    source_details,
)
from perceiver.model.core.loss import token_cross_entropy
from perceiver.model.core.modules import PerceiverDecoder
from perceiver.model.core.utils import pad_mask_from
from perceiver.model.core.validation import check_input_ids, check_labels
from perceiver.model.text.common import TextEncoder, TextEncoderConfig
from perceiver.model.text.mlm.backend import MaskedLanguageModel, MaskedLanguageModelConfig, TextDecoderConfig

logger = logging.getLogger(__name__)


class PerceiverMaskedLanguageModelConfig(PerceiverBackendConfig):
    model_type = "perceiver-io-masked-language-model"
    backend_config_class = MaskedLanguageModelConfig


class PerceiverMaskedLanguageModel(PerceiverBackendModel):
    """🤗 masked language model: `input_ids`, `attention_mask` (1 = token, 0 = padding), optional `labels`."""

    config_class = PerceiverMaskedLanguageModelConfig
    backend_model_class = MaskedLanguageModel
    main_input_name = "input_ids"

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.LongTensor] = None,
        return_dict: Optional[bool] = None,
        output_positions: Optional[torch.LongTensor] = None,
        **kwargs,
    ) -> MaskedLMOutput:
        """:param output_positions: decode only these positions, `(k,)` or `(b, k)`: logits are `(b, k, vocab)`,
        equal to the full logits at those positions, and `labels` (aligned with `input_ids`) are read there."""
        check_input_ids(input_ids)
        pad_mask = pad_mask_from(attention_mask)
        logits = self.backend_model(input_ids, pad_mask=pad_mask, output_positions=output_positions)
        loss = None
        if labels is not None:
            check_labels(labels, input_ids.shape, logits.shape[-1], allow_ignore=True)
            if output_positions is not None:
                index = output_positions
                labels = labels.gather(1, index.expand(labels.shape[0], -1) if index.dim() == 1 else index)
            loss = token_cross_entropy(logits, labels)
        return MaskedLMOutput(loss=loss, logits=logits)


class PerceiverFillMaskPipeline(FillMaskPipeline):
    """🤗 `fill-mask` pipeline that decodes only the masked positions of a Perceiver IO masked language model.

    The logits it hands to post-processing hold the decoded rows at the masked positions (the only ones read there)
    and zeros elsewhere. Other models run as in `FillMaskPipeline`.
    """

    def _forward(self, model_inputs):
        if not isinstance(self.model, PerceiverMaskedLanguageModel):
            return super()._forward(model_inputs)
        input_ids = model_inputs["input_ids"]
        masked = input_ids == self.tokenizer.mask_token_id
        # the pipeline takes one text at a time (batch of 1), so the masked positions are one index list
        positions = masked[0].nonzero().squeeze(-1)
        inputs = {k: v for k, v in model_inputs.items() if k in ("input_ids", "attention_mask")}
        decoded = self.model(**inputs, output_positions=positions).logits
        logits = decoded.new_zeros(*input_ids.shape, decoded.shape[-1])
        logits[:, positions] = decoded
        return {"logits": logits, "input_ids": input_ids}


register_auto_class(PerceiverMaskedLanguageModelConfig, PerceiverMaskedLanguageModel, AutoModelForMaskedLM)
_fill_mask = PIPELINE_REGISTRY.supported_tasks["fill-mask"]
if _fill_mask["impl"] in (FillMaskPipeline, "transformers.pipelines.fill_mask.FillMaskPipeline"):
    # `pipeline("fill-mask", ...)` builds this subclass, which behaves as its base for every other model
    _fill_mask["impl"] = PerceiverFillMaskPipeline


def convert_config(source) -> MaskedLanguageModelConfig:
    """Backend config equivalent to a `transformers.PerceiverForMaskedLM` (channel counts read from its layers).

    `source` may also be the model's `transformers.PerceiverConfig` (what perceiver-io 0.11 took); its layers are then
    built on the meta device, which allocates no memory.
    """
    if isinstance(source, transformers.PerceiverConfig):
        with torch.device("meta"):
            source = transformers.PerceiverForMaskedLM(source)
    source_config = source.config
    if not source_config.use_query_residual:
        raise ValueError(
            "source model uses use_query_residual=False, which this library's text encoder does not support"
        )
    encoder = source.perceiver.encoder
    cross_attention = attention_shape(encoder.cross_attention)
    self_attention = attention_shape(encoder.self_attends[0])
    decoder = attention_shape(source.perceiver.decoder.decoding_cross_attention)
    return MaskedLanguageModelConfig(
        encoder=TextEncoderConfig(
            vocab_size=source_config.vocab_size,
            max_seq_len=source_config.max_position_embeddings,
            num_input_channels=source_config.d_model,
            num_cross_attention_heads=cross_attention["num_heads"],
            num_cross_attention_qk_channels=cross_attention["num_qk_channels"],
            num_cross_attention_v_channels=cross_attention["num_v_channels"],
            cross_attention_widening_factor=source_config.cross_attention_widening_factor,
            num_self_attention_heads=self_attention["num_heads"],
            num_self_attention_qk_channels=self_attention["num_qk_channels"],
            num_self_attention_v_channels=self_attention["num_v_channels"],
            num_self_attention_layers_per_block=source_config.num_self_attends_per_block,
            num_self_attention_blocks=source_config.num_blocks,
            first_self_attention_block_shared=True,
            self_attention_widening_factor=source_config.self_attention_widening_factor,
            dropout=source_config.attention_probs_dropout_prob,
        ),
        decoder=TextDecoderConfig(
            vocab_size=source_config.vocab_size,
            max_seq_len=source_config.max_position_embeddings,
            num_cross_attention_heads=decoder["num_heads"],
            num_cross_attention_qk_channels=decoder["num_qk_channels"],
            num_cross_attention_v_channels=decoder["num_v_channels"],
            cross_attention_residual=False,
            dropout=source_config.attention_probs_dropout_prob,
        ),
        num_latents=source_config.num_latents,
        num_latent_channels=source_config.d_latents,
    )


def copy_weights(source, target: MaskedLanguageModel) -> None:
    """Copies the weights of a `transformers.PerceiverForMaskedLM` into a backend `MaskedLanguageModel`."""
    copy_text_encoder(source.perceiver, target.encoder)
    copy_text_decoder(source, target.decoder)


def copy_text_encoder(src, tgt: TextEncoder) -> None:
    """Copies the encoder weights of a `transformers.PerceiverModel` `src` (text input) into a `TextEncoder`."""
    with torch.no_grad():
        tgt.input_adapter.txt_embedding.weight.copy_(src.input_preprocessor.embeddings.weight)
        tgt.input_adapter.pos_embedding.weight.copy_(src.input_preprocessor.position_embeddings.weight)
        tgt.latent_provider._query.copy_(src.embeddings.latents)
        copy_cross_attention_layer(src.encoder.cross_attention, tgt.cross_attn_1)
        for src_layer, dst_layer in zip(src.encoder.self_attends, tgt.self_attn_1):
            copy_self_attention_layer(src_layer, dst_layer)


def copy_text_decoder(src, tgt: PerceiverDecoder) -> None:
    """Copies the decoder weights of a `transformers.PerceiverForMaskedLM` `src` into a masked LM's decoder."""
    decoder = src.perceiver.decoder
    with torch.no_grad():
        tgt.output_query_provider._query.copy_(decoder.output_position_encodings.position_embeddings)
        copy_cross_attention_layer(decoder.decoding_cross_attention, tgt.cross_attn)
        tgt.output_adapter.bias.copy_(src.embedding_decoder.bias)


def convert_model(save_dir: Union[str, os.PathLike], source_repo_id: str = "deepmind/language-perceiver", **kwargs):
    """Converts an official `transformers.PerceiverForMaskedLM` (hub id or local directory) into a
    `PerceiverMaskedLanguageModel` saved with its tokenizer in `save_dir`. Outputs equal the source model's.

    `kwargs` go to `save_pretrained` (e.g. `push_to_hub=True`). Nothing is left in `save_dir` if conversion fails.
    """
    source = load_source_model(source_repo_id, "PerceiverForMaskedLM")
    model = PerceiverMaskedLanguageModel(PerceiverMaskedLanguageModelConfig(convert_config(source)))
    copy_weights(source, model.backend_model)
    tokenizer = _load_tokenizer(source_repo_id)
    model.config.tokenizer_class = type(tokenizer).__name__
    with atomic_directory(save_dir, **source_details(source_repo_id)) as tmp_dir:
        model.save_pretrained(tmp_dir, **kwargs)
        tokenizer.save_pretrained(tmp_dir)
    logger.info("converted %s into %s", source_repo_id, save_dir)
    return model


def convert_checkpoint(
    save_dir: Union[str, os.PathLike],
    ckpt_url: Union[str, os.PathLike],
    tokenizer_name: Optional[str] = None,
    **kwargs,
) -> PerceiverMaskedLanguageModel:
    """Converts a `LitMaskedLanguageModel` checkpoint (local path or URL) into a `PerceiverMaskedLanguageModel`
    saved in `save_dir` with tokenizer `tokenizer_name` (name or path; None or "perceiver-bytes": UTF-8 bytes)."""
    from perceiver.model.text.mlm.lightning import LitMaskedLanguageModel

    return convert_lightning_checkpoint(
        LitMaskedLanguageModel,
        PerceiverMaskedLanguageModel,
        save_dir,
        ckpt_url,
        load_tokenizer(tokenizer_name),
        **kwargs,
    )


def _load_tokenizer(source_repo_id: str):
    try:
        return AutoTokenizer.from_pretrained(source_repo_id, verbose=False)
    except (OSError, ValueError):
        # official Perceiver language models all use the UTF-8 bytes tokenizer, which needs no files
        logger.info("no tokenizer found at %s, using PerceiverTokenizer", source_repo_id)
        return PerceiverTokenizer()


# perceiver-io 0.11 spellings
convert_config = renamed_keywords(convert_config, config="source")
__getattr__ = deprecated_aliases(
    __name__,
    {
        "copy_text_decoder_params": (
            "perceiver.model.text.mlm.huggingface.copy_text_decoder",
            "perceiver.model.text.mlm.huggingface:copy_text_decoder",
        )
    },
)
