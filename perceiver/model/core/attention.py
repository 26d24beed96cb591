"""Attention building blocks (Perceiver IO, arXiv 2107.14795, Appendix E).

Module structure and names follow perceiver-io 0.11, so that its saved state dicts load unchanged: a layer is
`[attention (in a Residual unless disabled), Residual(MLP)]`, an MLP is `[LayerNorm, Linear, GELU, Linear]`.
"""

import math
import warnings
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from perceiver.model.core.position import RotaryPositionEmbedding, rotate_pairs
from perceiver.model.core.utils import (
    ActivationCheckpointing,
    ModuleOutput,
    check_divisible,
    checkpointing_from,
    maybe_checkpoint,
)


class KVCache:
    """Keys and values of the past positions of one attention layer, in a preallocated buffer written in place.

    Stored per head, `(b, h, capacity, c)`, the layout attention reads, so that a generation step copies only its
    new positions. Keys are stored after rotary embedding: rotary attention depends on relative positions only, so
    a cached key never needs rotating again. Dropping the oldest positions moves a start index; the live positions
    move to the front of the buffer only when its end is reached, and the buffer doubles when it is too small, so
    each operation costs O(1) amortized per position.

    `keys` `(b, n, num_qk_channels)` and `values` `(b, n, num_v_channels)` are copies in perceiver-io 0.11's layout,
    and `k, v = cache` unpacks them as 0.11's `(k, v)` tuples did. `position` counts all positions ever appended.
    """

    # set on the caches of perceiver-io 0.11's cache protocol (see `CausalSequenceModel.forward`)
    protocol_0_11: bool = False

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: Optional[int] = None):
        """:param keys: initial keys `(b, n, c)` (or per head `(b, h, n, c)`), usually with `n == 0`.
        :param capacity: positions to allocate (default: `n`); the buffer grows when needed."""
        self._store(_per_head(keys), _per_head(values), capacity)
        self.position = self._len
        # per-row offset of stream positions `(b, 1)` (left padding of a Perceiver AR prompt), or None
        self.position_shift: Optional[torch.Tensor] = None

    def _store(self, keys: torch.Tensor, values: torch.Tensor, capacity: Optional[int] = None) -> None:
        n = keys.shape[2]
        capacity = max(capacity or 0, n)
        self._k = keys.new_empty(*keys.shape[:2], capacity, keys.shape[3])
        self._v = values.new_empty(*values.shape[:2], capacity, values.shape[3])
        self._k[:, :, :n] = keys
        self._v[:, :, :n] = values
        self._start, self._len = 0, n

    @property
    def seq_len(self) -> int:
        return self._len

    @property
    def batch_size(self) -> int:
        return self._k.shape[0]

    @property
    def capacity(self) -> int:
        return self._k.shape[2]

    @property
    def head_keys(self) -> torch.Tensor:
        """Keys per head `(b, h, n, c)`, a view of the buffer."""
        return self._k[:, :, self._start : self._start + self._len]

    @property
    def head_values(self) -> torch.Tensor:
        return self._v[:, :, self._start : self._start + self._len]

    @property
    def keys(self) -> torch.Tensor:
        return self.head_keys.transpose(1, 2).flatten(2)

    @keys.setter
    def keys(self, keys: torch.Tensor) -> None:
        self._store(_per_head(keys, self._k.shape[1]), self.head_values.clone())

    @property
    def values(self) -> torch.Tensor:
        return self.head_values.transpose(1, 2).flatten(2)

    @values.setter
    def values(self, values: torch.Tensor) -> None:
        self._store(self.head_keys.clone(), _per_head(values, self._v.shape[1]))

    def __iter__(self):
        # perceiver-io 0.11 cached (keys, values) tuples: `k, v = kv_cache[i]`
        return iter((self.keys, self.values))

    def __getitem__(self, index: int) -> torch.Tensor:
        return (self.keys, self.values)[index]

    def extend(self, keys: torch.Tensor, values: torch.Tensor) -> "KVCache":
        """Appends positions, `(b, n, c)` or per head `(b, h, n, c)`, in place."""
        keys, values = _per_head(keys, self._k.shape[1]), _per_head(values, self._v.shape[1])
        if keys.shape[1] != self._k.shape[1]:
            # first use by an attention layer of a cache created with (b, n, c) tensors: store per head
            self._store(_per_head(self.keys, keys.shape[1]), _per_head(self.values, values.shape[1]), self.capacity)
        n = keys.shape[2]
        end = self._start + self._len
        if end + n > self.capacity:
            if self._len + n > self.capacity:
                self._store(self.head_keys, self.head_values, 2 * (self._len + n))
            else:
                # move the live positions to the front (clone: source and target overlap)
                self._k[:, :, : self._len] = self.head_keys.clone()
                self._v[:, :, : self._len] = self.head_values.clone()
                self._start = 0
            end = self._start + self._len
        self._k[:, :, end : end + n] = keys
        self._v[:, :, end : end + n] = values
        self._len += n
        self.position += n
        return self

    def drop_first(self, n: int) -> None:
        """Forgets the `n` oldest positions."""
        n = min(n, self._len)
        self._start += n
        self._len -= n

    def drop_last(self, n: int) -> None:
        """Forgets the `n` newest positions."""
        n = min(n, self._len)
        self._len -= n
        self.position -= n

    def select(self, batch_indices: torch.Tensor) -> None:
        """Keeps (and reorders) batch rows, e.g. for beam search."""
        self._k = self._k.index_select(0, batch_indices.to(self._k.device))
        self._v = self._v.index_select(0, batch_indices.to(self._v.device))
        if self.position_shift is not None:
            self.position_shift = self.position_shift.index_select(0, batch_indices.to(self._k.device))

    def repeat_interleave(self, repeats: int) -> None:
        """Repeats each batch row `repeats` times (e.g. for several samples per prompt)."""
        self._k = self._k.repeat_interleave(repeats, dim=0)
        self._v = self._v.repeat_interleave(repeats, dim=0)
        if self.position_shift is not None:
            self.position_shift = self.position_shift.repeat_interleave(repeats, dim=0)


def _warn_cache_0_11() -> None:
    warnings.warn(
        "kv_cache as a list of (keys, values) tuples (perceiver-io 0.11's protocol) is deprecated: pass KVCache "
        "objects (MultiHeadAttention.empty_kv_cache), which attention layers extend in place",
        DeprecationWarning,
        stacklevel=4,
    )


def _rotate_span(
    keys: torch.Tensor, rot_pos_emb: Optional[RotaryPositionEmbedding], total: int, inverse: bool = False
) -> torch.Tensor:
    """Keys per head `(b, h, n, c)` at the first `n` of `total` positions rotated by `rot_pos_emb` (whose table,
    right-aligned, ends with the `total` positions), or rotated back with `inverse`."""
    if rot_pos_emb is None or keys.shape[-2] == 0:
        return keys
    start = rot_pos_emb.cos.shape[-2] - total if rot_pos_emb.right_align else 0
    window = slice(start, start + keys.shape[-2])
    cos = rot_pos_emb.cos[..., window, :].to(keys.dtype)
    signed_sin = rot_pos_emb.signed_sin[..., window, :].to(keys.dtype)
    k_rot, k_pass = keys[..., : rot_pos_emb.rotate_dim], keys[..., rot_pos_emb.rotate_dim :]
    k_rot = rotate_pairs(k_rot, cos, -signed_sin if inverse else signed_sin)
    return torch.cat((k_rot, k_pass), dim=-1)


def _cache_from_0_11(
    cache: Tuple[torch.Tensor, torch.Tensor], num_heads: int, rot_pos_emb: Optional[RotaryPositionEmbedding], total: int
) -> KVCache:
    """A `KVCache` of perceiver-io 0.11's `(keys, values)` `(b, n, channels)`, whose keys were cached before rotary
    embedding (this library caches rotated keys). `total`: cached plus new positions of the call."""
    keys, values = cache
    return KVCache(_rotate_span(_per_head(keys, num_heads), rot_pos_emb, total), _per_head(values, num_heads))


def _cache_to_0_11(cache: KVCache, rot_pos_emb: Optional[RotaryPositionEmbedding]) -> Tuple[torch.Tensor, torch.Tensor]:
    """perceiver-io 0.11's `(keys, values)` `(b, n, channels)` of a cache, keys without rotary embedding."""
    keys = _rotate_span(cache.head_keys, rot_pos_emb, cache.seq_len, inverse=True)
    return keys.transpose(1, 2).flatten(2), cache.values


def _concat(*linears: nn.Linear) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Weights and biases of `linears` stacked along the output dimension (one GEMM for all)."""
    weight = torch.cat([m.weight for m in linears])
    bias = None if linears[0].bias is None else torch.cat([m.bias for m in linears])
    return weight, bias


def _per_head(t: torch.Tensor, num_heads: int = 1) -> torch.Tensor:
    """`(b, n, h * c)` -> `(b, h, n, c)`; per-head tensors pass unchanged."""
    return t if t.dim() == 4 else t.unflatten(-1, (num_heads, -1)).transpose(1, 2)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate query/key and value channel counts, boolean padding masks, optional
    right-aligned causal masking, rotary position embedding and a key/value cache.

    Projections keep 0.11's separate `q_proj`, `k_proj` and `v_proj` parameters (its state-dict layout). In eval mode
    without gradients and for at least `min_fused_rows` input rows, projections that read the same input run as one
    GEMM over concatenated weights (`fused_projections`), cached until `train()` or a change of the weights (an
    extra copy of these weights in memory while in eval mode).

    :param num_qk_channels: query/key channels (all heads). Default: `num_q_input_channels`.
    :param num_v_channels: value channels (all heads). Default: `num_qk_channels`.
    :param num_output_channels: output channels. Default: `num_q_input_channels`.
    :param max_heads_parallel: attend with at most this many heads at once to bound memory. Default: all heads.
    :param causal_attention: mask future keys; queries are right-aligned with keys if they are fewer.
    """

    fused_projections: bool = True
    min_fused_rows: int = 64

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
        self._fused_weights: Dict[str, tuple] = {}

    def empty_kv_cache(
        self, batch_size: int, capacity: Optional[int] = None, device=None, dtype: Optional[torch.dtype] = None
    ) -> KVCache:
        """An empty cache for this attention's keys and values, with room for `capacity` positions."""
        device = device or self.q_proj.weight.device
        dtype = dtype or self.q_proj.weight.dtype
        h = self.num_heads
        keys = torch.empty(batch_size, h, 0, self.num_qk_channels // h, device=device, dtype=dtype)
        values = torch.empty(batch_size, h, 0, self.num_v_channels // h, device=device, dtype=dtype)
        return KVCache(keys, values, capacity)

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
        :param rot_pos_emb_q: rotates the queries (right-aligned tables cover at least the `n` queries).
        :param rot_pos_emb_k: rotates the keys of `x_kv` (not the cached ones, which were rotated when computed).
        :param kv_cache: extended in place with the (rotated) keys/values of `x_kv`.
        :return: `(b, n, num_output_channels)`.
        """
        q, k, v = self._project(x_q, x_kv)
        q, k, v = (t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2) for t in (q, k, v))  # (b, h, n, c)

        if rot_pos_emb_q is not None:
            q = rot_pos_emb_q.rotate(q)
        if rot_pos_emb_k is not None:
            k = rot_pos_emb_k.rotate(k)
        if kv_cache is not None:
            kv_cache.extend(k, v)
            k, v = kv_cache.head_keys, kv_cache.head_values

        attn_mask, is_causal = self._attention_mask(q.shape[2], k.shape[2], pad_mask, q.device)
        dropout_p = self.dropout if self.training else 0.0

        if self.max_heads_parallel >= self.num_heads:
            o = _attend(q, k, v, attn_mask, dropout_p, is_causal)
        else:
            chunks = zip(*(t.split(self.max_heads_parallel, dim=1) for t in (q, k, v)))
            o = torch.cat([_attend(qc, kc, vc, attn_mask, dropout_p, is_causal) for qc, kc, vc in chunks], dim=1)

        o = o.transpose(1, 2).flatten(-2)  # (b, n, h * c)
        return self.o_proj(o)

    def _project(self, x_q: torch.Tensor, x_kv: torch.Tensor):
        """Query, key and value projections `(b, n, channels)`."""
        if (
            not self.fused_projections
            or self.training
            or torch.is_grad_enabled()
            or torch.compiler.is_compiling()
            or x_kv.shape[:-1].numel() < self.min_fused_rows
        ):
            # training (autograd through separate GEMMs), torch.compile (which fuses on its own) and few rows
            # (e.g. a generation step)
            return self.q_proj(x_q), self.k_proj(x_kv), self.v_proj(x_kv)
        sizes = [self.num_qk_channels, self.num_v_channels]
        if x_q is x_kv:
            weight, bias = self._fused("qkv", (self.q_proj, self.k_proj, self.v_proj))
            return F.linear(x_q, weight, bias).split([self.num_qk_channels] + sizes, dim=-1)
        weight, bias = self._fused("kv", (self.k_proj, self.v_proj))
        k, v = F.linear(x_kv, weight, bias).split(sizes, dim=-1)
        return self.q_proj(x_q), k, v

    def _fused(self, name: str, linears) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Concatenated weights of `linears`, cached in eval mode. The cache is dropped by `train()` (optimizers
        may update weights without bumping their version counters) and rebuilt when a weight is replaced or changed
        in place (`load_state_dict`, `to`)."""
        # `_parameters` rather than attribute access: this check runs in every generation step
        params = [p for m in linears for p in (m._parameters["weight"], m._parameters["bias"]) if p is not None]
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)
        cached = self._fused_weights.get(name)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                cached = self._fused_weights[name] = (key, *_concat(*linears))
        return cached[1], cached[2]

    def train(self, mode: bool = True) -> "MultiHeadAttention":
        self._fused_weights.clear()
        return super().train(mode)

    def _attention_mask(self, n_q: int, n_k: int, pad_mask: Optional[torch.Tensor], device: torch.device):
        """Boolean mask for SDPA (True = attend) of shape broadcastable to `(b, h, n_q, n_k)`, or `is_causal`."""
        if not self.causal_attention or n_q == 1:
            # a single right-aligned query sees every key
            return (None if pad_mask is None else ~pad_mask[:, None, None, :]), False
        if pad_mask is None and n_q == n_k:
            return None, True
        # right-aligned causal mask: query i sees keys j <= i + (n_k - n_q)
        mask = torch.ones(n_q, n_k, dtype=torch.bool, device=device).tril(n_k - n_q)
        if pad_mask is not None:
            mask = mask & ~pad_mask[:, None, None, :]
        return mask, False


def _attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: Optional[torch.Tensor],
    dropout_p: float,
    is_causal: bool,
) -> torch.Tensor:
    """`softmax(q k^T / sqrt(d)) v` per head, `(b, h, n, c)`, with a boolean `attn_mask` (True = attend).

    SDPA, except on CPU when values have another head width than queries and keys (DeepMind's language perceiver:
    32 vs 160). No fused CPU kernel takes that, and SDPA's math fallback materializes all `b x h x n_q x n_k` scores,
    takes PyTorch's CPU softmax (slow for long rows) and makes three more passes over them (it guards fully masked
    rows even without a mask). Here, attention runs block by block as flash attention does: queries in blocks, and,
    without autograd, keys in blocks too, whose partial results are combined through their row maxima and sums. So
    the scores of a block stay in cache (`SCORE_BLOCK_ELEMENTS`) and memory stays bounded for any number of keys.
    Fully masked rows give zero output, as with SDPA.
    """
    if q.device.type != "cpu" or q.shape[-1] == v.shape[-1] or torch.compiler.is_compiling():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal)
    if is_causal:  # n_q == n_k (see `MultiHeadAttention._attention_mask`)
        attn_mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
    # contiguous heads: batched CPU GEMMs over the projections' strided head views can take a 3x slower path
    q, k = q.contiguous() * q.shape[-1] ** -0.5, k.contiguous()
    (b, h, n_q, _), n_k = q.shape, k.shape[-2]
    # each block reads its keys and values (or queries) again: a block narrower than a key and value have channels
    # would move more bytes than the scores it keeps in cache
    min_block = q.shape[-1] + v.shape[-1]
    rows = SCORE_BLOCK_ELEMENTS // (b * h * n_k)
    rows = n_q if rows < min_block else rows
    autograd = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
    keys = n_k if autograd else min(n_k, max(min_block, SCORE_BLOCK_ELEMENTS // (b * h * min(rows, n_q))))
    blocks = []
    for i in range(0, n_q, rows):
        mask = attn_mask
        if mask is not None and mask.shape[-2] > 1:
            mask = mask[..., i : i + rows, :]
        blocks.append(_attend_rows(q[..., i : i + rows, :], k, v, mask, dropout_p, keys, in_place=not autograd))
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=-2)


def _attend_rows(q, k, v, mask, dropout_p: float, keys: int, in_place: bool) -> torch.Tensor:
    """Attention of pre-scaled queries `q` over `keys` keys at a time (online softmax); `in_place` without autograd."""
    output = row_max = row_sum = None
    for j in range(0, k.shape[-2], keys):
        scores = torch.matmul(q, k[..., j : j + keys, :].transpose(-2, -1))  # (b, h, rows, keys)
        if mask is not None:
            key_mask = ~mask[..., j : j + keys]
            scores = (
                scores.masked_fill_(key_mask, float("-inf")) if in_place else scores.masked_fill(key_mask, -math.inf)
            )
        block_max = scores.detach().amax(dim=-1, keepdim=True)
        if mask is not None:  # rows without any key in this block: exp(-inf - finite) = 0, not exp(-inf + inf)
            block_max = block_max.clamp(min=torch.finfo(scores.dtype).min)
        probs = scores.sub_(block_max).exp_() if in_place else (scores - block_max).exp()
        block_sum = probs.sum(dim=-1, keepdim=True)
        if dropout_p > 0.0:
            probs = F.dropout(probs, dropout_p)  # dropout(p) / sum = dropout(p / sum): scaling commutes
        block_output = torch.matmul(probs, v[..., j : j + keys, :])
        if output is None:
            output, row_max, row_sum = block_output, block_max, block_sum
            continue
        new_max = torch.maximum(row_max, block_max)
        old_scale, block_scale = (row_max - new_max).exp_(), (block_max - new_max).exp_()
        output = output.mul_(old_scale).add_(block_output.mul_(block_scale))
        row_sum = row_sum.mul_(old_scale).add_(block_sum.mul_(block_scale))
        row_max = new_max
    # a row's sum is >= 1 (its maximum contributes exp(0)) unless it has no key to attend, whose output is then 0
    return output / row_sum.clamp(min=torch.finfo(row_sum.dtype).tiny)


# scores per block of `_attend` (2 MiB of float32: the fastest of 128 KiB to 4 MiB on this project's CPU)
SCORE_BLOCK_ELEMENTS = 2**19


# perceiver-io 0.11's positional parameter order of `CrossAttention` and `SelfAttention` (`num_heads` first)
class CrossAttention(nn.Module):
    """Pre-layer-norm cross-attention of queries `x_q` to keys/values `x_kv`; attention arguments as in
    `MultiHeadAttention`, in perceiver-io 0.11's order.

    With `x_kv_prefix` instead of `x_kv`, keys/values are the prefix followed by the (normalized) queries themselves
    (Perceiver AR).
    """

    def __init__(
        self,
        num_heads: int,
        num_q_input_channels: int,
        num_kv_input_channels: int,
        num_qk_channels: Optional[int] = None,
        num_v_channels: Optional[int] = None,
        max_heads_parallel: Optional[int] = None,
        causal_attention: bool = False,
        dropout: float = 0.0,
        qkv_bias: bool = True,
        out_bias: bool = True,
        num_output_channels: Optional[int] = None,
    ):
        super().__init__()
        self.q_norm = nn.LayerNorm(num_q_input_channels)
        self.kv_norm = nn.LayerNorm(num_kv_input_channels)
        self.attention = MultiHeadAttention(
            num_heads=num_heads,
            num_q_input_channels=num_q_input_channels,
            num_kv_input_channels=num_kv_input_channels,
            num_qk_channels=num_qk_channels,
            num_v_channels=num_v_channels,
            num_output_channels=num_output_channels,
            max_heads_parallel=max_heads_parallel,
            causal_attention=causal_attention,
            dropout=dropout,
            qkv_bias=qkv_bias,
            out_bias=out_bias,
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
    """Pre-layer-norm self-attention; attention arguments as in `MultiHeadAttention`, in perceiver-io 0.11's order."""

    def __init__(
        self,
        num_heads: int,
        num_channels: int,
        num_qk_channels: Optional[int] = None,
        num_v_channels: Optional[int] = None,
        max_heads_parallel: Optional[int] = None,
        causal_attention: bool = False,
        dropout: float = 0.0,
        qkv_bias: bool = True,
        out_bias: bool = True,
    ):
        super().__init__()
        self.norm = nn.LayerNorm(num_channels)
        self.attention = MultiHeadAttention(
            num_heads=num_heads,
            num_q_input_channels=num_channels,
            num_kv_input_channels=num_channels,
            num_qk_channels=num_qk_channels,
            num_v_channels=num_v_channels,
            max_heads_parallel=max_heads_parallel,
            causal_attention=causal_attention,
            dropout=dropout,
            qkv_bias=qkv_bias,
            out_bias=out_bias,
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


class GELU(nn.GELU):
    """`nn.GELU` (exact, erf-based) that takes PyTorch's own CPU kernel for small inputs.

    On CPU, `F.gelu` goes to oneDNN, whose kernel has a fixed setup cost of about 7 µs: five times the whole
    computation for the few rows of a generation step (1 x 1024 elements: 8.8 µs, PyTorch's kernel 1.5 µs). Above
    `max_native_elements`, oneDNN is the faster one. Both compute the same function (max abs difference ~1e-7).
    """

    max_native_elements: int = 16384

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            torch.compiler.is_compiling()
            or x.device.type != "cpu"
            or x.numel() > self.max_native_elements
            or not torch._C._get_mkldnn_enabled()
        ):
            return super().forward(x)
        # PyTorch has no per-call option, only this global switch: a thread running a oneDNN op at this very moment
        # would take PyTorch's kernel too (its speed changes, not its result)
        torch._C._set_mkldnn_enabled(False)
        try:
            return super().forward(x)
        finally:
            torch._C._set_mkldnn_enabled(True)


class MLP(nn.Sequential):
    """Pre-layer-norm feed-forward network with hidden size `widening_factor * num_channels`."""

    def __init__(self, num_channels: int, widening_factor: int, bias: bool = True):
        super().__init__(
            nn.LayerNorm(num_channels),
            nn.Linear(num_channels, widening_factor * num_channels, bias=bias),
            GELU(),
            nn.Linear(widening_factor * num_channels, num_channels, bias=bias),
        )


class Residual(nn.Module):
    """`x + dropout(module(x, ...))`."""

    def __init__(self, module: nn.Module, dropout: float = 0.0):
        super().__init__()
        self.module = module
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        y = self.module(x, *args, **kwargs)
        if self.training and self.dropout.p > 0.0:  # else the identity: no module call (per-token cost in generation)
            y = self.dropout(y)
        return x + y


class AttentionLayer(nn.Sequential):
    """`[attention, Residual(MLP)]`: the shared shape of cross- and self-attention layers (0.11's module layout)."""

    @property
    def attention(self) -> MultiHeadAttention:
        """The layer's multi-head attention module."""
        attention = self[0]
        return (attention.module if isinstance(attention, Residual) else attention).attention

    def empty_kv_cache(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """perceiver-io 0.11's empty cache for a batch like `x` `(b, ...)`: `(keys, values)` of shape `(b, 0,
        channels)` with its device and dtype. Passed as `kv_cache`, the layer returns 0.11's output (see `forward`).
        This library's caches are `self.attention.empty_kv_cache(batch_size)`."""
        attention = self.attention
        keys = x.new_empty(x.shape[0], 0, attention.num_qk_channels)
        return keys, x.new_empty(x.shape[0], 0, attention.num_v_channels)

    def forward(self, x: torch.Tensor, *args, **kwargs):
        """The layer's output `(b, n, c)`. With a `kv_cache` (keyword) of `(keys, values)` tensors `(b, n, channels)`
        (perceiver-io 0.11's cache protocol, deprecated), the cache is not changed and the output is 0.11's
        `ModuleOutput(last_hidden_state, kv_cache)` with the extended `(keys, values)`."""
        cache_0_11 = kwargs.get("kv_cache")
        if isinstance(cache_0_11, tuple):
            _warn_cache_0_11()
            rot_pos_emb = self._rot_pos_emb_k(args, kwargs)
            total = cache_0_11[0].shape[1] + self._num_new_kv(x, args, kwargs)
            kwargs["kv_cache"] = cache = _cache_from_0_11(cache_0_11, self.attention.num_heads, rot_pos_emb, total)
            output = self.forward(x, *args, **kwargs)
            return ModuleOutput(last_hidden_state=output, kv_cache=_cache_to_0_11(cache, rot_pos_emb))
        attention, mlp = self
        return mlp(attention(x, *args, **kwargs))

    def _num_new_kv(self, x: torch.Tensor, args: tuple, kwargs: dict) -> int:
        """Number of key/value positions that a call with these arguments adds to the cache."""
        raise NotImplementedError

    def _rot_pos_emb_k(self, args: tuple, kwargs: dict) -> Optional[RotaryPositionEmbedding]:
        """The rotary embedding of the keys of a call with these arguments."""
        raise NotImplementedError


class CrossAttentionLayer(AttentionLayer):
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
            num_heads=num_heads,
            num_q_input_channels=num_q_input_channels,
            num_kv_input_channels=num_kv_input_channels,
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

    def _num_new_kv(self, x: torch.Tensor, args: tuple, kwargs: dict) -> int:
        # CrossAttention.forward(x_q, x_kv, x_kv_prefix, pad_mask, rot_pos_emb_q, rot_pos_emb_k, kv_cache)
        x_kv = args[0] if len(args) > 0 else kwargs.get("x_kv")
        x_kv_prefix = args[1] if len(args) > 1 else kwargs.get("x_kv_prefix")
        return x_kv.shape[1] if x_kv is not None else x_kv_prefix.shape[1] + x.shape[1]

    def _rot_pos_emb_k(self, args: tuple, kwargs: dict) -> Optional[RotaryPositionEmbedding]:
        return args[4] if len(args) > 4 else kwargs.get("rot_pos_emb_k")


class SelfAttentionLayer(AttentionLayer):
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
            num_heads=num_heads,
            num_channels=num_channels,
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

    def _num_new_kv(self, x: torch.Tensor, args: tuple, kwargs: dict) -> int:
        return x.shape[1]

    def _rot_pos_emb_k(self, args: tuple, kwargs: dict) -> Optional[RotaryPositionEmbedding]:
        # SelfAttention.forward(x, pad_mask, rot_pos_emb, kv_cache)
        return args[1] if len(args) > 1 else kwargs.get("rot_pos_emb")


class SelfAttentionBlock(nn.Sequential):
    """A stack of `num_layers` self-attention layers; rotary embedding on the first `num_rotary_layers` (-1: all).

    :param checkpointing: activation checkpointing of each layer in training (default: off).
    """

    def __init__(
        self,
        num_layers: int,
        num_heads: int,
        num_channels: int,
        num_qk_channels: Optional[int] = None,
        num_v_channels: Optional[int] = None,
        num_rotary_layers: int = 1,
        max_heads_parallel: Optional[int] = None,
        causal_attention: bool = False,
        widening_factor: int = 1,
        dropout: float = 0.0,
        residual_dropout: float = 0.0,
        activation_checkpointing: Optional[bool] = None,
        activation_offloading: Optional[bool] = None,
        qkv_bias: bool = True,
        out_bias: bool = True,
        mlp_bias: bool = True,
        *,
        checkpointing: Optional[ActivationCheckpointing] = None,
    ):
        # parameter order as in perceiver-io 0.11, whose activation_* flags `checkpointing` replaces
        flags = dict(activation_checkpointing=activation_checkpointing, activation_offloading=activation_offloading)
        checkpointing = checkpointing_from(
            checkpointing, {k: v for k, v in flags.items() if v is not None}, "SelfAttentionBlock"
        )
        layer_kwargs = dict(
            num_heads=num_heads,
            num_channels=num_channels,
            num_qk_channels=num_qk_channels,
            num_v_channels=num_v_channels,
            max_heads_parallel=max_heads_parallel,
            causal_attention=causal_attention,
            widening_factor=widening_factor,
            dropout=dropout,
            residual_dropout=residual_dropout,
            qkv_bias=qkv_bias,
            out_bias=out_bias,
            mlp_bias=mlp_bias,
        )
        super().__init__(*[SelfAttentionLayer(**layer_kwargs) for _ in range(num_layers)])
        self.num_rotary_layers = num_rotary_layers
        self.checkpointing = checkpointing

    def forward(
        self,
        x: torch.Tensor,
        pad_mask: Optional[torch.Tensor] = None,
        rot_pos_emb: Optional[RotaryPositionEmbedding] = None,
        kv_cache: Optional[List[KVCache]] = None,
    ) -> torch.Tensor:
        """The block's output `(b, n, c)`; `kv_cache` holds one cache per layer, extended in place. perceiver-io
        0.11's cache protocol (deprecated) also works: an empty list or a list of `(keys, values)` tuples, not
        changed; the output is then 0.11's `ModuleOutput(last_hidden_state, kv_cache)` with the extended tuples."""
        if kv_cache is not None and (len(kv_cache) == 0 or not isinstance(kv_cache[0], KVCache)):
            _warn_cache_0_11()
            rot_pos_embs = [rot_pos_emb if self._rotary(i) else None for i in range(len(self))]
            if kv_cache:
                total = kv_cache[0][0].shape[1] + x.shape[1]
                caches = [
                    _cache_from_0_11(cache, layer.attention.num_heads, rpe, total)
                    for cache, layer, rpe in zip(kv_cache, self, rot_pos_embs)
                ]
            else:
                caches = [layer.attention.empty_kv_cache(x.shape[0], device=x.device, dtype=x.dtype) for layer in self]
            output = self.forward(x, pad_mask, rot_pos_emb, caches)
            kv_cache = [_cache_to_0_11(cache, rpe) for cache, rpe in zip(caches, rot_pos_embs)]
            return ModuleOutput(last_hidden_state=output, kv_cache=kv_cache)
        for i, layer in enumerate(self):
            rotary = self._rotary(i)
            x = maybe_checkpoint(
                layer,
                x,
                pad_mask,
                rot_pos_emb if rotary else None,
                None if kv_cache is None else kv_cache[i],
                checkpointing=self.checkpointing,
            )
        return x

    def _rotary(self, i: int) -> bool:
        """Whether layer `i` uses the rotary position embedding."""
        return i < self.num_rotary_layers or self.num_rotary_layers == -1
