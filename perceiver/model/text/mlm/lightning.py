"""Lightning wrapper of the masked language model."""

import logging
from typing import List, Optional

import torch

from perceiver.model.core.lightning import LitModel
from perceiver.model.core.loss import token_cross_entropy
from perceiver.model.core.utils import pad_mask_from
from perceiver.model.text.common import TextEncoderConfig
from perceiver.model.text.mlm.backend import MaskedLanguageModel, MaskedLanguageModelConfig, TextDecoderConfig

logger = logging.getLogger(__name__)


class LitMaskedLanguageModel(LitModel):
    """Trains a `MaskedLanguageModel` on batches `{"input_ids", "labels", "attention_mask"}` (labels -100 where not
    predicted, as produced by 🤗's `DataCollatorForLanguageModeling`).

    :param masked_samples: texts with the tokenizer's mask token whose top predictions are logged at the end of each
        validation epoch (needs `tokenizer` or a data module with a `tokenizer` attribute).
    :param num_predictions: number of predictions logged per mask token.
    :param tokenizer: name or path of the tokenizer for `masked_samples`; defaults to the data module's tokenizer.
    """

    backend_config_class = MaskedLanguageModelConfig
    backend_model_class = MaskedLanguageModel

    def __init__(
        self,
        encoder: TextEncoderConfig,
        decoder: TextDecoderConfig,
        num_latents: int,
        num_latent_channels: int,
        activation_checkpointing: bool = False,
        activation_offloading: bool = False,
        masked_samples: Optional[List[str]] = None,
        num_predictions: int = 3,
        tokenizer: Optional[str] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)

    def forward(self, input_ids: torch.Tensor, pad_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.backend_model(input_ids, pad_mask=pad_mask)

    def _step(self, batch) -> torch.Tensor:
        pad_mask = pad_mask_from(batch.get("attention_mask"))
        logits = self(batch["input_ids"], pad_mask)
        return token_cross_entropy(logits, batch["labels"])

    def training_step(self, batch, batch_idx):
        loss = self._step(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss = self._step(batch)
        self.log("val_loss", loss, prog_bar=True, sync_dist=True)
        return loss

    def on_validation_epoch_end(self) -> None:
        if not self.hparams.masked_samples:
            return
        tokenizer = self._sample_tokenizer()
        if tokenizer is None:
            logger.warning("masked_samples given, but no tokenizer to decode predictions")
            return
        lines = [
            f"{text} -> {predictions}"
            for text, predictions in zip(
                self.hparams.masked_samples, self.predict_masked(self.hparams.masked_samples, tokenizer)
            )
        ]
        text = "\n".join(lines)
        logger.info("masked token predictions:\n%s", text)
        experiment = getattr(self.logger, "experiment", None)
        if hasattr(experiment, "add_text"):
            experiment.add_text("masked_samples", text.replace("\n", "  \n"), self.global_step)

    def _sample_tokenizer(self):
        if self.hparams.tokenizer is not None:
            from perceiver.model.core.huggingface import load_tokenizer

            return load_tokenizer(self.hparams.tokenizer)
        return getattr(getattr(self.trainer, "datamodule", None), "tokenizer", None)

    @torch.no_grad()
    def predict_masked(self, texts: List[str], tokenizer) -> List[List[List[str]]]:
        """The top `num_predictions` tokens for each mask token in each of `texts`."""
        encoding = tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
        logits = self(encoding["input_ids"], pad_mask_from(encoding["attention_mask"]))
        top = logits.topk(self.hparams.num_predictions, dim=-1).indices
        results = []
        for ids, top_ids in zip(encoding["input_ids"], top):
            positions = (ids == tokenizer.mask_token_id).nonzero().flatten().tolist()
            results.append([tokenizer.convert_ids_to_tokens(top_ids[p].tolist()) for p in positions])
        return results
