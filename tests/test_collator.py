"""The classification collator (🤗's DataCollatorWithPadding) pads as the tokenizer says."""

import pytest
import torch
from transformers import PerceiverTokenizer

from perceiver.data.text.collator import ClassificationCollator


@pytest.mark.parametrize("side", ["right", "left"])
def test_classification_collator_pads_on_the_tokenizers_side(side):
    tokenizer = PerceiverTokenizer(padding_side=side)
    examples = [{"input_ids": [7, 8, 9], "label": 1}, {"input_ids": [10], "label": 0}, {"input_ids": [], "label": 2}]
    batch = ClassificationCollator(tokenizer)(examples)
    pad = tokenizer.pad_token_id
    if side == "right":
        input_ids = [[7, 8, 9], [10, pad, pad], [pad, pad, pad]]
        attention_mask = [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    else:
        input_ids = [[7, 8, 9], [pad, pad, 10], [pad, pad, pad]]
        attention_mask = [[1, 1, 1], [0, 0, 1], [0, 0, 0]]
    assert set(batch) == {"input_ids", "attention_mask", "labels"}
    assert torch.equal(batch["input_ids"], torch.tensor(input_ids))
    assert torch.equal(batch["attention_mask"], torch.tensor(attention_mask))
    assert torch.equal(batch["labels"], torch.tensor([1, 0, 2]))
    assert batch["input_ids"].dtype == batch["attention_mask"].dtype == batch["labels"].dtype == torch.long
