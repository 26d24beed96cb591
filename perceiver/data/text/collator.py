"""Collators turning lists of tokenized examples into padded batches `{"input_ids", "attention_mask", "labels"}`.

All randomness comes from torch's global generator, which Lightning seeds (per data loader worker, too).
"""

from typing import Dict, List, Optional, Sequence

import torch
from transformers import DataCollatorForLanguageModeling, DataCollatorWithPadding, PreTrainedTokenizerBase

Batch = Dict[str, torch.Tensor]


class TextBatch(dict):
    """A batch `{"input_ids", "attention_mask", "labels"}` that, unpacked or indexed by position, is perceiver-io
    0.11's batch tuple: `labels, input_ids, pad_mask = batch` (`pad_mask` True at padding)."""

    def as_tuple(self) -> tuple:
        return self["labels"], self["input_ids"], self.pad_mask()

    def pad_mask(self) -> torch.Tensor:
        attention_mask = self.get("attention_mask")
        return torch.zeros_like(self["input_ids"], dtype=torch.bool) if attention_mask is None else attention_mask == 0

    def __iter__(self):
        return iter(self.as_tuple())

    def __getitem__(self, key):
        if isinstance(key, int):
            return self.as_tuple()[key]
        return super().__getitem__(key)


class CausalTextBatch(TextBatch):
    """A causal language modeling `TextBatch`: as 0.11's tuple, `labels` are the next tokens (shifted by one, -100
    at the last position), where this library's `labels` are aligned with `input_ids` (🤗's convention)."""

    def as_tuple(self) -> tuple:
        labels = self["labels"]
        next_tokens = torch.cat([labels[:, 1:], torch.full_like(labels[:, :1], -100)], dim=1)
        return next_tokens, self["input_ids"], self.pad_mask()


def pad(sequences: Sequence[Sequence[int]], value: int, side: str = "right") -> torch.Tensor:
    """Pads `sequences` of token ids to a `(b, n)` tensor with `value` on the `side` ("left" or "right")."""
    n = max(len(s) for s in sequences)
    result = torch.full((len(sequences), n), value, dtype=torch.long)
    for i, s in enumerate(sequences):
        if len(s):
            if side == "left":
                result[i, n - len(s) :] = torch.as_tensor(s)
            else:
                result[i, : len(s)] = torch.as_tensor(s)
    return result


def _attention_mask(sequences: Sequence[Sequence[int]], side: str) -> torch.Tensor:
    return pad([[1] * len(s) for s in sequences], 0, side)


class TokenMaskingCollator:
    """Masked language modeling batches: each token is selected with `mask_prob` and then replaced by the mask
    token (80%), a random token (10%) or kept (10%) (BERT's recipe, 🤗's `DataCollatorForLanguageModeling`).
    Labels are -100 except at selected tokens."""

    batch_class: type = dict

    def __init__(self, tokenizer: PreTrainedTokenizerBase, mask_prob: float = 0.15):
        self.collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mask_prob)

    def __call__(self, examples: List[dict]) -> Batch:
        return self.batch_class(self.collator([{"input_ids": example["input_ids"]} for example in examples]))


class WordMaskingCollator:
    """Masked language modeling batches with whole words masked: each word is selected with `mask_prob`, and all
    its tokens are then replaced by mask tokens (80%), random tokens (10%) or kept (10%).

    Examples hold `word_ids`, a word index per token (-1 for tokens outside words); contiguous tokens with the same
    index form a word.
    """

    batch_class: type = dict

    def __init__(self, tokenizer: PreTrainedTokenizerBase, mask_prob: float = 0.15):
        if tokenizer.mask_token_id is None:
            raise ValueError(f"tokenizer {type(tokenizer).__name__} has no mask token, needed for masking")
        self.mask_token_id = tokenizer.mask_token_id
        self.pad_token_id = tokenizer.pad_token_id
        self.padding_side = tokenizer.padding_side
        self.vocab_size = len(tokenizer)
        self.mask_prob = mask_prob

    def __call__(self, examples: List[dict]) -> Batch:
        side = self.padding_side
        input_ids = pad([e["input_ids"] for e in examples], self.pad_token_id, side)
        word_ids = pad([e["word_ids"] for e in examples], -1, side)
        # a new word starts wherever the word index changes; words are numbered through the whole batch
        previous = torch.cat([torch.full_like(word_ids[:, :1], -1), word_ids[:, :-1]], dim=1)
        in_word = word_ids >= 0
        starts = in_word & (word_ids != previous)
        words = (starts.flatten().cumsum(0) - 1).view_as(word_ids)
        num_words = int(starts.sum())

        selected = torch.rand(num_words) < self.mask_prob
        action = torch.rand(num_words)  # < 0.8: mask token, < 0.9: random token, else: unchanged
        token_words = words.clamp(min=0)
        token_selected = in_word & selected[token_words]
        token_action = action[token_words]

        labels = torch.where(token_selected, input_ids, torch.full_like(input_ids, -100))
        masked = token_selected & (token_action < 0.8)
        randomized = token_selected & (token_action >= 0.8) & (token_action < 0.9)
        input_ids = input_ids.masked_fill(masked, self.mask_token_id)
        input_ids = torch.where(randomized, torch.randint_like(input_ids, self.vocab_size), input_ids)
        attention_mask = _attention_mask([e["input_ids"] for e in examples], side)
        return self.batch_class(input_ids=input_ids, attention_mask=attention_mask, labels=labels)


class CausalLanguageModelCollator:
    """Causal language modeling batches in 🤗's convention: `labels` are `input_ids` with -100 at padding, aligned
    with the input (the model predicts `labels[:, i + 1]` at position `i`, so it shifts them itself).

    :param padding_side: "left" (default) keeps the last positions real tokens, where Perceiver AR has its latents.
    :param random_truncation: keep only the last n positions of a batch, n uniformly drawn from
        [`random_min_seq_len`, sequence length]. With Perceiver AR's fixed number of latents this draws a random
        prefix length for each batch (its sequence length minus the number of latents).
    """

    # Our own, not 🤗's padding collators: it pads tokenizers without a padding token (and the MIDI tokenizer, which is
    # no 🤗 tokenizer), makes the labels and truncates batches randomly in one pass.
    batch_class: type = dict

    def __init__(
        self,
        pad_token_id: Optional[int],
        padding_side: str = "left",
        random_truncation: bool = False,
        random_min_seq_len: int = 1,
    ):
        # tokenizers without a padding token only ever see equal-length chunks; 0 fills the (masked) rest
        self.pad_token_id = 0 if pad_token_id is None else pad_token_id
        self.padding_side = padding_side
        self.random_truncation = random_truncation
        self.random_min_seq_len = random_min_seq_len

    def __call__(self, examples: List[dict]) -> Batch:
        sequences = [e["input_ids"] for e in examples]
        input_ids = pad(sequences, self.pad_token_id, self.padding_side)
        attention_mask = _attention_mask(sequences, self.padding_side)
        labels = input_ids.masked_fill(attention_mask == 0, -100)
        seq_len = input_ids.shape[1]
        if self.random_truncation and seq_len > self.random_min_seq_len:
            n = int(torch.randint(self.random_min_seq_len, seq_len + 1, ()))
            input_ids, attention_mask, labels = input_ids[:, -n:], attention_mask[:, -n:], labels[:, -n:]
        return self.batch_class(input_ids=input_ids, attention_mask=attention_mask, labels=labels)


class RandomTruncateCollator(CausalLanguageModelCollator):
    """`CausalLanguageModelCollator` with random truncation (perceiver-io 0.11's name): each batch keeps its last n
    positions, n uniformly drawn from [`random_min_seq_len`, sequence length]."""

    def __init__(self, pad_token_id: Optional[int], padding_side: str = "left", random_min_seq_len: int = 1):
        super().__init__(pad_token_id, padding_side, random_truncation=True, random_min_seq_len=random_min_seq_len)


class MaskedExamplesCollator:
    """Batches of examples masked beforehand (static masking): pads their `input_ids` and `labels` (with -100)."""

    batch_class: type = dict

    def __init__(self, pad_token_id: int, padding_side: str = "right"):
        self.pad_token_id = pad_token_id
        self.padding_side = padding_side

    def __call__(self, examples: List[dict]) -> Batch:
        sequences = [e["input_ids"] for e in examples]
        return self.batch_class(
            input_ids=pad(sequences, self.pad_token_id, self.padding_side),
            attention_mask=_attention_mask(sequences, self.padding_side),
            labels=pad([e["labels"] for e in examples], -100, self.padding_side),
        )


class ClassificationCollator:
    """Classification batches: token ids padded on the tokenizer's padding side with an attention mask (🤗's
    `DataCollatorWithPadding`), integer class `labels`."""

    batch_class: type = dict

    def __init__(self, tokenizer: PreTrainedTokenizerBase):
        self.collator = DataCollatorWithPadding(tokenizer, return_tensors="pt")

    def __call__(self, examples: List[dict]) -> Batch:
        batch = self.collator([{"input_ids": e["input_ids"], "labels": e["label"]} for e in examples])
        return self.batch_class(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
        )
