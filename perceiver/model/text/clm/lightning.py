"""Lightning wrapper of the Perceiver AR causal language model (and base of other Perceiver AR wrappers)."""

import logging
import warnings
from typing import Any, Dict, Optional

import torch
from torchmetrics import MeanMetric

from perceiver.model.core.lightning import LitModel
from perceiver.model.core.loss import IGNORE_INDEX, token_cross_entropy
from perceiver.model.core.perceiver_ar import CausalSequenceModel, CausalSequenceModelConfig, latent_targets
from perceiver.model.core.utils import pad_mask_from
from perceiver.model.text.clm.backend import CausalLanguageModel, CausalLanguageModelConfig

logger = logging.getLogger(__name__)


class LossPerplexity(MeanMetric):
    """Perplexity of a validation or test epoch: exp of the mean loss over its batches (weighted by batch size, as
    the logged mean loss), not the mean of the batches' perplexities. Synced across processes by torchmetrics."""

    def compute(self) -> torch.Tensor:
        return torch.exp(super().compute())


class LitCausalSequenceModel(LitModel):
    """Trains a Perceiver AR model on batches `{"input_ids", "attention_mask" (optional, 0 = left padding), "labels"
    (optional, aligned with input_ids as in 🤗, -100 = ignore; default: input_ids with padding ignored)}`.

    The last `min(n, max_latents)` positions of each batch are latents; the loss covers their next-token predictions.
    Logs loss, perplexity and next-token accuracy.

    :param vocab_size: number of token ids (the CLI takes it from the data module).
    :param max_seq_len: maximum number of positions, prefix plus latents (the CLI takes it from the data module).
    :param num_channels: model channels (token embedding, attention layers).
    :param output_bias: learned bias of the output logits.
    :param init_scale: standard deviation of the normal initialization of the weights.
    :param validation_sample_prompt: text whose continuation is generated and logged at the end of each validation
        epoch (needs `tokenizer` or a data module with a `tokenizer` attribute).
    :param validation_sample_record: index of a validation example whose continuation is generated and logged at the
        end of each validation epoch (-1: a random one each time), as in perceiver-io 0.11.
    :param tokenizer: name or path of the tokenizer for the sample (None: the data module's).
    :param validation_sample_num_tokens: number of tokens generated for the sample.
    """

    backend_config_class = CausalSequenceModelConfig
    backend_model_class = CausalSequenceModel
    backend_model: CausalSequenceModel

    def __init__(
        self,
        vocab_size: int = 262,
        max_seq_len: int = 4096,
        max_latents: int = 512,
        num_channels: int = 512,
        num_heads: int = 8,
        max_heads_parallel: Optional[int] = None,
        num_self_attention_layers: int = 6,
        num_self_attention_rotary_layers: int = 1,
        self_attention_widening_factor: int = 4,
        cross_attention_widening_factor: int = 4,
        cross_attention_dropout: float = 0.5,
        post_attention_dropout: float = 0.0,
        residual_dropout: float = 0.0,
        output_norm: bool = False,
        output_bias: bool = True,
        abs_pos_emb: bool = True,
        init_scale: float = 0.02,
        activation_checkpointing: bool = False,
        activation_offloading: bool = False,
        validation_sample_prompt: Optional[str] = None,
        validation_sample_record: Optional[int] = None,
        validation_sample_num_tokens: int = 64,
        tokenizer: Optional[str] = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.val_ppl = LossPerplexity()
        self.test_ppl = LossPerplexity()

    def forward(self, input_ids: torch.Tensor, prefix_len: int, pad_mask: Optional[torch.Tensor] = None):
        return self.backend_model(input_ids, prefix_len=prefix_len, pad_mask=pad_mask).logits

    def _step(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        input_ids = batch["input_ids"]
        attention_mask = batch.get("attention_mask")
        pad_mask = pad_mask_from(attention_mask)
        labels = batch.get("labels")
        if labels is None:
            labels = input_ids if pad_mask is None else input_ids.masked_fill(pad_mask, IGNORE_INDEX)
        num_latents = min(input_ids.shape[1], self.backend_model.max_latents)
        logits = self(input_ids, input_ids.shape[1] - num_latents, pad_mask)
        targets = latent_targets(labels, num_latents)
        loss = token_cross_entropy(logits, targets)
        valid = targets != IGNORE_INDEX
        accuracy = (logits.argmax(dim=-1) == targets)[valid].float().mean()
        return {"loss": loss, "accuracy": accuracy}

    def training_step(self, batch, batch_idx):
        metrics = self._step(batch)
        self.log("train_loss", metrics["loss"], prog_bar=True)
        self.log("train_acc", metrics["accuracy"])
        return metrics["loss"]

    def _eval_step(self, batch, stage: str) -> torch.Tensor:
        metrics = self._step(batch)
        batch_size = batch["input_ids"].shape[0]
        perplexity = getattr(self, f"{stage}_ppl")
        perplexity.update(metrics["loss"], batch_size)
        self.log(f"{stage}_loss", metrics["loss"], prog_bar=True, sync_dist=True, batch_size=batch_size)
        self.log(f"{stage}_ppl", perplexity, batch_size=batch_size)
        self.log(f"{stage}_acc", metrics["accuracy"], sync_dist=True, batch_size=batch_size)
        return metrics["loss"]

    def validation_step(self, batch, batch_idx):
        return self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx):
        return self._eval_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        prompts = self.validation_sample_prompts()
        if not prompts:
            return
        if self.hparams.tokenizer is not None:
            from perceiver.processing.text import load_tokenizer

            tokenizer = load_tokenizer(self.hparams.tokenizer)
        else:
            tokenizer = getattr(getattr(self.trainer, "datamodule", None), "tokenizer", None)
        if tokenizer is None:
            logger.warning("a validation sample is asked for, but there is no tokenizer to encode or decode it")
            return
        for i, prompt in enumerate(prompts):
            text = self.generate_text(prompt if isinstance(prompt, str) else tokenizer.decode(prompt), tokenizer)
            logger.info("validation sample: %s", text)
            experiment = getattr(self.logger, "experiment", None)
            if hasattr(experiment, "add_text"):
                experiment.add_text(f"validation_sample_{i}" if i else "validation_sample", text, self.global_step)

    def validation_sample_prompts(self) -> list:
        """The prompts of the validation samples: `validation_sample_prompt` (text), and the token ids of validation
        example `validation_sample_record` of the data module (-1: a random one, drawn without touching the global
        random state, so that training stays reproducible)."""
        h = self.hparams
        prompts = [h.validation_sample_prompt] if h.validation_sample_prompt else []
        record = h.validation_sample_record
        if record is None:
            return prompts
        dataset = getattr(getattr(self.trainer, "datamodule", None), "ds_valid", None)
        if dataset is None or len(dataset) == 0:
            logger.warning("validation_sample_record=%s given, but the data module has no validation examples", record)
            return prompts
        if not -1 <= record < len(dataset):
            raise ValueError(
                f"validation_sample_record={record} out of range [-1, {len(dataset) - 1}] (-1: a random example)"
            )
        if record == -1:
            record = int(torch.randint(len(dataset), (), generator=torch.Generator().manual_seed(self.global_step)))
        return prompts + [list(dataset[record]["input_ids"])]

    @torch.no_grad()
    def generate_text(self, prompt: str, tokenizer, top_k: int = 10) -> str:
        """Prompt plus `validation_sample_num_tokens` sampled tokens (top-k sampling with cache), decoded."""
        max_prompt_len = self.backend_model.max_prefix_len + 1
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"][:, -max_prompt_len:]
        was_training = self.training
        self.eval()
        try:
            out = self.backend_model.generate(
                ids.to(self.device),
                self.hparams.validation_sample_num_tokens,
                num_latents=1,
                top_k=top_k,
                do_sample=True,
            )
        finally:
            self.train(was_training)
        return tokenizer.decode(out[0], skip_special_tokens=True)


class LitCausalLanguageModel(LitCausalSequenceModel):
    """Lightning wrapper of `CausalLanguageModel`; see `LitCausalSequenceModel`."""

    backend_config_class = CausalLanguageModelConfig
    backend_model_class = CausalLanguageModel

    def to_hgf_model(self):
        """perceiver-io 0.11's 🤗 view of this model: a `PerceiverCausalLanguageModel` sharing its backend model.
        Deprecated: `convert_checkpoint` saves a checkpoint as a 🤗 model with its tokenizer."""
        from perceiver.model.text.clm.huggingface import (
            PerceiverCausalLanguageModel,
            PerceiverCausalLanguageModelConfig,
        )

        warnings.warn(
            "LitCausalLanguageModel.to_hgf_model is deprecated (perceiver-io 0.11), use "
            "PerceiverCausalLanguageModel(PerceiverCausalLanguageModelConfig(lit_model.backend_config), "
            "backend_model=lit_model.backend_model) or perceiver.model.text.clm.convert_checkpoint",
            DeprecationWarning,
            stacklevel=2,
        )
        config = PerceiverCausalLanguageModelConfig(self.backend_config)
        return PerceiverCausalLanguageModel(config, backend_model=self.backend_model)
