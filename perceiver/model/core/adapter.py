"""Input adapters (task input -> encoder input), output adapters (decoder output -> task output), query providers."""

from typing import Optional

import torch
import torch.nn as nn

from perceiver.model.core.position import FrequencyPositionEncoding, positions


class InputAdapter(nn.Module):
    """Transforms and position-encodes task input into generic encoder input of `num_input_channels` channels."""

    def __init__(self, num_input_channels: int):
        super().__init__()
        self._num_input_channels = num_input_channels

    @property
    def num_input_channels(self) -> int:
        return self._num_input_channels


class TokenInputAdapter(InputAdapter):
    """Token embedding plus an optional learned absolute position embedding."""

    def __init__(self, vocab_size: int, max_seq_len: int, num_input_channels: int, abs_pos_emb: bool = True):
        super().__init__(num_input_channels)
        self.txt_embedding = nn.Embedding(vocab_size, num_input_channels)
        if abs_pos_emb:
            self.pos_embedding = nn.Embedding(max_seq_len, num_input_channels)
        self._max_seq_len = max_seq_len
        self._abs_pos_emb = abs_pos_emb

    @property
    def vocab_size(self) -> int:
        return self.txt_embedding.num_embeddings

    @property
    def max_seq_len(self) -> int:
        return self._max_seq_len

    def forward(self, x: torch.Tensor, abs_pos: Optional[torch.Tensor] = None) -> torch.Tensor:
        # x: (b, n) token ids -> (b, n, c)
        if not self._abs_pos_emb:
            return self.txt_embedding(x)
        if abs_pos is None:
            abs_pos = positions(*x.shape, device=x.device)
        return self.txt_embedding(x) + self.pos_embedding(abs_pos[:, -x.shape[1] :])


class RotarySupport(nn.Module):
    """Mixin for input adapters of Perceiver AR: also returns the rotation angles for the input's positions."""

    def __init__(self, rotated_channels_per_head: int, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.frq_pos_encoding = FrequencyPositionEncoding(dim=rotated_channels_per_head)

    def forward(self, x: torch.Tensor, abs_pos: Optional[torch.Tensor] = None):
        if abs_pos is None:
            abs_pos = positions(*x.shape[:2], device=x.device)
        return super().forward(x, abs_pos), self.frq_pos_encoding(abs_pos)


class TokenInputAdapterWithRotarySupport(RotarySupport, TokenInputAdapter):
    """Token input adapter that also provides rotary position angles (Perceiver AR)."""


class OutputAdapter(nn.Module):
    """Transforms generic decoder output into task output."""


class TiedTokenOutputAdapter(OutputAdapter):
    """Token logits from the input embedding matrix (weight tying) plus an optional bias."""

    def __init__(self, vocab_size: int, emb_bias: bool = True):
        super().__init__()
        if emb_bias:
            self.bias = nn.Parameter(torch.zeros(vocab_size))
        else:
            self.bias = None

    def forward(self, x: torch.Tensor, txt_embedding: nn.Embedding) -> torch.Tensor:
        return nn.functional.linear(x, txt_embedding.weight, self.bias)


class TokenOutputAdapter(OutputAdapter):
    """Token logits from a linear layer of its own (no weight tying), as perceiver-io 0.11's masked LM uses when its
    decoder sets `num_output_query_channels`."""

    def __init__(self, vocab_size: int, num_output_query_channels: int):
        super().__init__()
        self.linear = nn.Linear(num_output_query_channels, vocab_size)

    def forward(self, x: torch.Tensor, txt_embedding: Optional[nn.Embedding] = None) -> torch.Tensor:
        # `txt_embedding` is accepted, and not used, so that callers treat tied and untied adapters alike
        return self.linear(x)


class ClassificationOutputAdapter(OutputAdapter):
    """Class logits from the decoder output; a single output query is squeezed away: `(b, 1, c) -> (b, classes)`."""

    def __init__(self, num_classes: int, num_output_query_channels: int):
        super().__init__()
        self.linear = nn.Linear(num_output_query_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).squeeze(dim=1)


class QueryProvider(nn.Module):
    """Provides the query input of a cross-attention (latents of an encoder, output queries of a decoder)."""

    @property
    def num_query_channels(self) -> int:
        raise NotImplementedError()


class TrainableQueryProvider(QueryProvider):
    """A learned query array `(num_queries, num_query_channels)`, returned with a batch dimension of 1."""

    def __init__(self, num_queries: int, num_query_channels: int, init_scale: float = 0.02):
        super().__init__()
        self._query = nn.Parameter(torch.empty(num_queries, num_query_channels))
        with torch.no_grad():
            self._query.normal_(0.0, init_scale)

    @property
    def num_query_channels(self) -> int:
        return self._query.shape[-1]

    def forward(self, x: Optional[torch.Tensor] = None, num_queries: Optional[int] = None) -> torch.Tensor:
        query = self._query if num_queries is None else self._query[:num_queries]
        return query.unsqueeze(0)
