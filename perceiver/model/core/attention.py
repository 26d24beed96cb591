"""Attention building blocks (Perceiver IO, arXiv 2107.14795, Appendix E).

Module structure and names follow perceiver-io 0.11, so that its saved state dicts load unchanged: a layer is
`[attention (in a Residual unless disabled), Residual(MLP)]`, an MLP is `[LayerNorm, Linear, GELU, Linear]`.
"""

from dataclasses import dataclass
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from perceiver.model.core.position import RotaryPositionEmbedding
from perceiver.model.core.utils import check_divisible, maybe_checkpoint


@dataclass
class KVCache:
    """Projected keys `(b, n, num_qk_channels)` and values `(b, n, num_v_channels)` of past positions of one
    attention layer. Keys are stored before rotary embedding, which is applied to the whole sequence each step."""

    keys: torch.Tensor
    values: torch.Tensor

    def extend(self, keys: torch.Tensor, values: torch.Tensor) -> "KVCache":
        self.keys = torch.cat([self.keys, keys], dim=1)
        self.values = torch.cat([self.values, values], dim=1)
        return self

    def drop_first(self, n: int) -> None:
        """Forgets the `n` oldest positions."""
        self.keys = self.keys[:, n:]
        self.values = self.values[:, n:]

    def select(self, batch_indices: torch.Tensor) -> None:
        """Keeps (and reorders) batch rows, e.g. for beam search."""
        self.keys = self.keys.index_select(0, batch_indices)
        self.values = self.values.index_select(0, batch_indices)

    @property
    def seq_len(self) -> int:
        return self.keys.shape[1]


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate query/key and value channel counts, boolean padding masks, optional
    right-aligned causal masking, rotary position embedding and a key/value cache.

    :param num_qk_channels: query/key channels (all heads). Default: `num_q_input_channels`.
    :param num_v_channels: value channels (all heads). Default: `num_qk_channels`.
    :param num_output_channels: output channels. Default: `num_q_input_channels`.
    :param max_heads_parallel: attend with at most this many heads at once to bound memory. Default: all heads.
    :param causal_attention: mask future keys; queries are right-aligned with keys if they are fewer.
    """

    def __init__(
        self,
        num_heads: int,
        num_q_input_channels: int,
        num_kv_input_channels: int,
        num_qk_channels: Optional[int] = None,
        num_v_channels: Optional[int] = None,
        num_output_channels: Optional[int] = None,
        max_heads_parallel: Optional[int] = None,
        causal_attention: bool = False,
        dropout: float = 0.0,
        qkv_bias: bool = True,
        out_bias: bool = True,
    ):
        super().__init__()
        num_qk_channels = num_qk_channels or num_q_input_channels
        num_v_channels = num_v_channels or num_qk_channels
        num_output_channels = num_output_channels or num_q_input_channels
        check_divisible("num_qk_channels", num_qk_channels, "num_heads", num_heads)
        check_divisible("num_v_channels", num_v_channels, "num_heads", num_heads)
        if max_heads_parallel is not None and max_heads_parallel < 1:
            raise ValueError(f"max_heads_parallel={max_heads_parallel} must be >= 1 or None")

        self.num_heads = num_heads
        self.num_qk_channels = num_qk_channels
        self.num_v_channels = num_v_channels
        self.max_heads_parallel = max_heads_parallel or num_heads
        self.causal_attention = causal_attention
        self.dropout = dropout

        self.q_proj = nn.Linear(num_q_input_channels, num_qk_channels, bias=qkv_bias)
        self.k_proj = nn.Linear(num_kv_input_channels, num_qk_channels, bias=qkv_bias)
        self.v_proj = nn.Linear(num_kv_input_channels, num_v_channels, bias=qkv_bias)
        self.o_proj = nn.Linear(num_v_channels, num_output_channels, bias=out_bias)

    def forward(
        self,
        x_q: torch.Tensor,
        x_kv: torch.Tensor,
        pad_mask: Optional[torch.Tensor] = None,
        rot_pos_emb_q: Optional[RotaryPositionEmbedding] = None,
        rot_pos_emb_k: Optional[RotaryPositionEmbedding] = None,
        kv_cache: Optional[KVCache] = None,
    ) -> torch.Tensor:
        """
        :param x_q: queries `(b, n, num_q_input_channels)`.
        :param x_kv: keys/values `(b, l, num_kv_input_channels)` (new positions only when `kv_cache` is given).
        :param pad_mask: `(b, l_total)`, True marks padding keys (cached positions included).
        :param kv_cache: extended in place with the keys/values of `x_kv`.
        :return: `(b, n, num_output_channels)`.
        """
        q = self.q_proj(x_q)
        k = self.k_proj(x_kv)
        v = self.v_proj(x_kv)

        if kv_cache is not None:
            kv_cache.extend(k, v)
            k, v = kv_cache.keys, kv_cache.values

        q, k, v = (t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2) for t in (q, k, v))  # (b, h, n, c)

        if rot_pos_emb_q is not None:
            q = rot_pos_emb_q.rotate(q)
        if rot_pos_emb_k is not None:
            k = rot_pos_emb_k.rotate(k)

        attn_mask, is_causal = self._attention_mask(q.shape[2], k.shape[2], pad_mask, q.device)
        dropout_p = self.dropout if self.training else 0.0

        if self.max_heads_parallel >= self.num_heads:
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal)
        else:
            chunks = zip(*(t.split(self.max_heads_parallel, dim=1) for t in (q, k, v)))
            o = torch.cat(
                [
                    F.scaled_dot_product_attention(
                        qc, kc, vc, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal
                    )
                    for qc, kc, vc in chunks
                ],
                dim=1,
            )

        o = o.transpose(1, 2).flatten(-2)  # (b, n, h * c)
        return self.o_proj(o)

    def _attention_mask(self, n_q: int, n_k: int, pad_mask: Optional[torch.Tensor], device: torch.device):
        """Boolean mask for SDPA (True = attend) of shape broadcastable to `(b, h, n_q, n_k)`, or `is_causal`."""
        if not self.causal_attention:
            return (None if pad_mask is None else ~pad_mask[:, None, None, :]), False
        if pad_mask is None and n_q == n_k:
            return None, True
        # right-aligned causal mask: query i sees keys j <= i + (n_k - n_q)
        mask = torch.ones(n_q, n_k, dtype=torch.bool, device=device).tril(n_k - n_q)
        if pad_mask is not None:
            mask = mask & ~pad_mask[:, None, None, :]
        return mask, False


class CrossAttention(nn.Module):
    """Pre-layer-norm cross-attention of queries `x_q` to keys/values `x_kv`.

    With `x_kv_prefix` instead of `x_kv`, keys/values are the prefix followed by the (normalized) queries themselves
    (Perceiver AR).
    """

    def __init__(self, num_q_input_channels: int, num_kv_input_channels: int, **attention_kwargs):
        super().__init__()
        self.q_norm = nn.LayerNorm(num_q_input_channels)
        self.kv_norm = nn.LayerNorm(num_kv_input_channels)
        self.attention = MultiHeadAttention(
            num_q_input_channels=num_q_input_channels, num_kv_input_channels=num_kv_input_channels, **attention_kwargs
        )

    def forward(
        self,
        x_q: torch.Tensor,
        x_kv: Optional[torch.Tensor] = None,
        x_kv_prefix: Optional[torch.Tensor] = None,
        pad_mask: Optional[torch.Tensor] = None,
        rot_pos_emb_q: Optional[RotaryPositionEmbedding] = None,
        rot_pos_emb_k: Optional[RotaryPositionEmbedding] = None,
        kv_cache: Optional[KVCache] = None,
    ) -> torch.Tensor:
        x_q = self.q_norm(x_q)
        if x_kv is None:
            x_kv = torch.cat([self.kv_norm(x_kv_prefix), x_q], dim=1)
        else:
            x_kv = self.kv_norm(x_kv)
        return self.attention(x_q, x_kv, pad_mask, rot_pos_emb_q, rot_pos_emb_k, kv_cache)


class SelfAttention(nn.Module):
    """Pre-layer-norm self-attention."""

    def __init__(self, num_channels: int, **attention_kwargs):
        super().__init__()
        self.norm = nn.LayerNorm(num_channels)
        self.attention = MultiHeadAttention(
            num_q_input_channels=num_channels, num_kv_input_channels=num_channels, **attention_kwargs
        )

    def forward(
        self,
        x: torch.Tensor,
        pad_mask: Optional[torch.Tensor] = None,
        rot_pos_emb: Optional[RotaryPositionEmbedding] = None,
        kv_cache: Optional[KVCache] = None,
    ) -> torch.Tensor:
        x = self.norm(x)
        return self.attention(x, x, pad_mask, rot_pos_emb, rot_pos_emb, kv_cache)


class MLP(nn.Sequential):
    """Pre-layer-norm feed-forward network with hidden size `widening_factor * num_channels`."""

    def __init__(self, num_channels: int, widening_factor: int, bias: bool = True):
        super().__init__(
            nn.LayerNorm(num_channels),
            nn.Linear(num_channels, widening_factor * num_channels, bias=bias),
            nn.GELU(),
            nn.Linear(widening_factor * num_channels, num_channels, bias=bias),
        )


class Residual(nn.Module):
    """`x + dropout(module(x, ...))`."""

    def __init__(self, module: nn.Module, dropout: float = 0.0):
        super().__init__()
        self.module = module
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return x + self.dropout(self.module(x, *args, **kwargs))


class CrossAttentionLayer(nn.Sequential):
    """Cross-attention followed by an MLP, each with a residual connection (the attention's is optional)."""

    def __init__(
        self,
        num_heads: int,
        num_q_input_channels: int,
        num_kv_input_channels: int,
        num_qk_channels: Optional[int] = None,
        num_v_channels: Optional[int] = None,
        max_heads_parallel: Optional[int] = None,
        causal_attention: bool = False,
        widening_factor: int = 1,
        dropout: float = 0.0,
        residual_dropout: float = 0.0,
        attention_residual: bool = True,
        qkv_bias: bool = True,
        out_bias: bool = True,
        mlp_bias: bool = True,
    ):
        cross_attn = CrossAttention(
            num_q_input_channels,
            num_kv_input_channels,
            num_heads=num_heads,
            num_qk_channels=num_qk_channels,
            num_v_channels=num_v_channels,
            max_heads_parallel=max_heads_parallel,
            causal_attention=causal_attention,
            dropout=dropout,
            qkv_bias=qkv_bias,
            out_bias=out_bias,
        )
        super().__init__(
            Residual(cross_attn, residual_dropout) if attention_residual else cross_attn,
            Residual(MLP(num_q_input_channels, widening_factor, bias=mlp_bias), residual_dropout),
        )

    def forward(self, x_q: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        attention, mlp = self
        return mlp(attention(x_q, *args, **kwargs))


class SelfAttentionLayer(nn.Sequential):
    """Self-attention followed by an MLP, each with a residual connection."""

    def __init__(
        self,
        num_heads: int,
        num_channels: int,
        num_qk_channels: Optional[int] = None,
        num_v_channels: Optional[int] = None,
        max_heads_parallel: Optional[int] = None,
        causal_attention: bool = False,
        widening_factor: int = 1,
        dropout: float = 0.0,
        residual_dropout: float = 0.0,
        qkv_bias: bool = True,
        out_bias: bool = True,
        mlp_bias: bool = True,
    ):
        self_attn = SelfAttention(
            num_channels,
            num_heads=num_heads,
            num_qk_channels=num_qk_channels,
            num_v_channels=num_v_channels,
            max_heads_parallel=max_heads_parallel,
            causal_attention=causal_attention,
            dropout=dropout,
            qkv_bias=qkv_bias,
            out_bias=out_bias,
        )
        super().__init__(
            Residual(self_attn, residual_dropout),
            Residual(MLP(num_channels, widening_factor, bias=mlp_bias), residual_dropout),
        )

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        attention, mlp = self
        return mlp(attention(x, *args, **kwargs))


class SelfAttentionBlock(nn.Sequential):
    """A stack of `num_layers` self-attention layers; rotary embedding on the first `num_rotary_layers` (-1: all)."""

    def __init__(
        self,
        num_layers: int,
        num_heads: int,
        num_channels: int,
        num_rotary_layers: int = 1,
        activation_checkpointing: bool = False,
        activation_offloading: bool = False,
        **layer_kwargs,
    ):
        super().__init__(
            *[
                SelfAttentionLayer(num_heads=num_heads, num_channels=num_channels, **layer_kwargs)
                for _ in range(num_layers)
            ]
        )
        self.num_rotary_layers = num_rotary_layers
        self.activation_checkpointing = activation_checkpointing
        self.activation_offloading = activation_offloading

    def forward(
        self,
        x: torch.Tensor,
        pad_mask: Optional[torch.Tensor] = None,
        rot_pos_emb: Optional[RotaryPositionEmbedding] = None,
        kv_cache: Optional[List[KVCache]] = None,
    ) -> torch.Tensor:
        for i, layer in enumerate(self):
            rotary = i < self.num_rotary_layers or self.num_rotary_layers == -1
            x = maybe_checkpoint(
                layer,
                x,
                pad_mask,
                rot_pos_emb if rotary else None,
                None if kv_cache is None else kv_cache[i],
                enabled=self.activation_checkpointing and self.training,
                offload=self.activation_offloading,
            )
        return x
