"""Tokenizer loading: any 🤗 tokenizer by hub id or local directory, or the Perceiver UTF-8 bytes tokenizer."""

import os
from typing import Any, Optional

from transformers import AutoTokenizer, PerceiverTokenizer, PreTrainedTokenizerBase

PERCEIVER_BYTES = "perceiver-bytes"
"""Tokenizer name of the Perceiver UTF-8 bytes tokenizer (`transformers.PerceiverTokenizer`, needs no files)."""


def load_tokenizer(name: Optional[str] = None, **kwargs: Any) -> PreTrainedTokenizerBase:
    """Tokenizer `name` (hub id or local directory), or the UTF-8 bytes tokenizer for None / "perceiver-bytes"."""
    if name is None or name == PERCEIVER_BYTES:
        return PerceiverTokenizer(**kwargs)
    return AutoTokenizer.from_pretrained(os.path.expanduser(str(name)), verbose=False, **kwargs)
