"""perceiver-io 0.11's `MaskFiller`. Deprecated: use the `fill-mask` pipeline or
`LitMaskedLanguageModel.predict_masked`."""

import warnings
from typing import Any, List, Tuple

import torch


class MaskFiller:
    """Fills the mask tokens of texts with a masked language model's top predictions.

    :param preprocessor: has `tokenizer` and `preprocess_batch(texts) -> (input_ids, pad_mask)` (e.g. 0.11's
        `perceiver.data.text.TextPreprocessor`).
    """

    def __init__(self, preprocessor: Any):
        warnings.warn(
            "MaskFiller is deprecated, use transformers.pipeline('fill-mask', ...) with a PerceiverMaskedLanguageModel "
            "or LitMaskedLanguageModel.predict_masked",
            DeprecationWarning,
            stacklevel=2,
        )
        self.preprocessor = preprocessor

    @torch.no_grad()
    def fill(
        self, model: Any, masked_text_batch: List[str], num_predictions: int, device: Any = "cpu"
    ) -> Tuple[List[str], List[List[str]]]:
        """`masked_text_batch` (with "<mask>" written as the tokenizer's mask token) and, per text, the
        `num_predictions` texts with every mask replaced by its i-th most likely token.

        :param model: called as `model(input_ids, pad_mask)`, returns logits `(b, n, vocab)`.
        """
        tokenizer = self.preprocessor.tokenizer
        texts = [text.replace("<mask>", tokenizer.mask_token) for text in masked_text_batch]
        input_ids, pad_mask = self.preprocessor.preprocess_batch(texts)
        input_ids, pad_mask = input_ids.to(device), pad_mask.to(device)
        logits = model(input_ids, pad_mask)
        masked = input_ids == tokenizer.mask_token_id
        top_ids = logits[masked].topk(num_predictions, dim=-1).indices  # (num masks, num_predictions)
        filled = []
        for i in range(num_predictions):
            ids = input_ids.clone()
            ids[masked] = top_ids[:, i]
            filled.append(tokenizer.batch_decode(ids, skip_special_tokens=True))
        return texts, [list(predictions) for predictions in zip(*filled)]
