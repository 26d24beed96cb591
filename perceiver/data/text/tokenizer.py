"""Tokenizers of the text data modules: any 🤗 tokenizer by name or path, or the Perceiver UTF-8 bytes tokenizer."""

from typing import List, Optional

import numpy as np
from transformers import PerceiverTokenizer, PreTrainedTokenizerBase

from perceiver.data.common import check_source
from perceiver.processing import text
from perceiver.processing.text import PERCEIVER_BYTES

_WHITESPACE = " \t\n\r\x0b\x0c"


def load_tokenizer(name: Optional[str] = None) -> PreTrainedTokenizerBase:
    """The tokenizer `name`: a 🤗 hub id or local directory, or None / "perceiver-bytes" for UTF-8 bytes."""
    if name not in (None, PERCEIVER_BYTES):
        check_source(name, name="tokenizer")  # a clear error for a missing local path
    return text.load_tokenizer(name)


def is_bytes_tokenizer(tokenizer: PreTrainedTokenizerBase) -> bool:
    return isinstance(tokenizer, PerceiverTokenizer)


def word_ids(tokenizer: PreTrainedTokenizerBase, encoding, num_words_before: int = 0) -> List[List[int]]:
    """Word index of each token of a batch `encoding` (-1 for special and, with bytes, whitespace tokens).

    Indices continue across the batch's sequences, starting at `num_words_before`, so that words of different
    texts stay apart after texts are concatenated. Fast tokenizers know their words; for the UTF-8 bytes tokenizer
    a word is a run of non-whitespace bytes.
    """
    result = []
    offset = num_words_before
    if is_bytes_tokenizer(tokenizer):
        not_words = np.array(tokenizer.all_special_ids + tokenizer(_WHITESPACE, add_special_tokens=False)["input_ids"])
        for ids in encoding["input_ids"]:
            is_word = ~np.isin(np.asarray(ids, dtype=np.int64), not_words)
            starts = is_word & ~np.concatenate([[False], is_word[:-1]])
            words = np.cumsum(starts) - 1 + offset
            offset += int(starts.sum())
            result.append(np.where(is_word, words, -1).tolist())
    elif tokenizer.is_fast:
        for i in range(len(encoding["input_ids"])):
            ids = [-1 if w is None else w + offset for w in encoding.word_ids(i)]
            offset = max([offset - 1, *ids]) + 1
            result.append(ids)
    else:
        raise ValueError(
            f"whole word masking needs a fast tokenizer or the UTF-8 bytes tokenizer, got {type(tokenizer).__name__}"
        )
    return result
