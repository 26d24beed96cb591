"""Perceiver AR (arXiv 2202.07765): causal cross-attention of the latents (the last positions of a sequence) to the
whole sequence, followed by causal self-attention over the latents.

Module names follow perceiver-io 0.11 (`input_adapter`, `cross_attention`, `self_attention`), so that its saved
state dicts load unchanged.
"""

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

import torch
import torch.nn as nn

from perceiver._compat import positional_0_11
from perceiver.model.core.adapter import RotarySupport, TiedTokenOutputAdapter, TokenInputAdapterWithRotarySupport
from perceiver.model.core.attention import CrossAttentionLayer, KVCache, SelfAttentionBlock
from perceiver.model.core.config import PerceiverARConfig, config_from_0_11_kwargs
from perceiver.model.core.loss import IGNORE_INDEX
from perceiver.model.core.position import RotaryPositionEmbedding, positions
from perceiver.model.core.utils import (
    ActivationCheckpointing,
    check_divisible,
    check_seq_len,
    check_token_ids,
    init_parameters,
    maybe_checkpoint,
    without_empty_pad_mask,
)


def window_mask(pad_mask: Optional[torch.Tensor], width: int) -> Optional[torch.Tensor]:
    """The last `width` columns of `pad_mask` `(..., m)`, `m >= width` (None stays None): the mask of the newest
    `width` positions of a sequence whose mask is aligned with its end."""
    return None if pad_mask is None else pad_mask[..., pad_mask.shape[-1] - width :]


def generation_window(
    input_ids: torch.Tensor, pad_mask: Optional[torch.Tensor], max_len: int
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """The last `max_len` token ids of `input_ids` `(..., n)` and their mask: the window a Perceiver AR model sees
    (`max_len=max_seq_len`), or the longest prompt it takes with `num_latents` latents
    (`max_len=max_prefix_len + num_latents`). `pad_mask` `(..., m)`, `m >= n`, is aligned with the end of
    `input_ids` (as a 🤗 attention mask of the whole sequence is), or None."""
    if max_len < 1:
        raise ValueError(f"max_len={max_len} must be >= 1")
    input_ids = input_ids[..., max(0, input_ids.shape[-1] - max_len) :]
    return input_ids, window_mask(pad_mask, input_ids.shape[-1])


class PerceiverAR(nn.Module):
    """Perceiver AR over the output of an input adapter with rotary support.

    The last `n - prefix_len` positions of an input of length `n` are the latents. They attend causally to the
    prefix and to themselves (cross-attention, whose keys/values are the prefix followed by the latents), then to
    each other (`num_self_attention_layers` causal self-attention layers). Rotary position embedding is applied to
    the cross-attention and to the first `num_self_attention_rotary_layers` self-attention layers.

    The architecture comes from `config` (a `PerceiverARConfig`, whose docstring describes the fields; its
    `cross_attention_dropout` is the prefix dropout of the paper: dropped prefix positions leave the cross-attention
    in training, the kept ones keep their order and positions). perceiver-io 0.11 took the fields as arguments
    instead (`PerceiverAR(input_adapter, num_heads=8, ...)`, or positionally in the config's field order); that still
    works, with a DeprecationWarning.
    """

    def __init__(
        self, input_adapter: RotarySupport, config: Optional[PerceiverARConfig] = None, *args: Any, **config_0_11: Any
    ):
        super().__init__()
        if isinstance(config, int) and not isinstance(config, bool):
            # perceiver-io 0.11's positional order (`num_heads` first): the config's fields, in their order
            names = [f.name for f in dataclasses.fields(PerceiverARConfig)]
            new_spelling = "PerceiverAR(input_adapter, config=PerceiverARConfig(...))"
            config_0_11 = positional_0_11("PerceiverAR", names, (config, *args), config_0_11, new_spelling)
            config = None
        elif args:
            raise TypeError(f"PerceiverAR() takes 2 positional arguments with a config ({2 + len(args)} given)")
        if config is None:
            config = config_from_0_11_kwargs(PerceiverARConfig, {}, config_0_11, "PerceiverAR")
        elif config_0_11:
            raise TypeError(f"PerceiverAR() got config and keyword arguments {sorted(config_0_11)}; pass one")
        if not isinstance(config, PerceiverARConfig):
            raise TypeError(f"config must be a PerceiverARConfig, got {type(config).__name__}")
        num_channels = input_adapter.num_input_channels
        self.config = config
        self.input_adapter = input_adapter
        self.cross_attention_dropout = config.cross_attention_dropout
        self.checkpointing = ActivationCheckpointing.of(config)
        # arguments of all attention layers; 0.11 layout: no biases except the cross-attention's output projection
        layer_kwargs = dict(
            num_heads=config.num_heads,
            max_heads_parallel=config.max_heads_parallel,
            causal_attention=True,
            dropout=config.post_attention_dropout,
            residual_dropout=config.residual_dropout,
            qkv_bias=False,
            mlp_bias=False,
        )
        self.cross_attention = CrossAttentionLayer(
            num_q_input_channels=num_channels,
            num_kv_input_channels=num_channels,
            widening_factor=config.cross_attention_widening_factor,
            out_bias=True,
            **layer_kwargs,
        )
        self.self_attention = SelfAttentionBlock(
            num_layers=config.num_self_attention_layers,
            num_channels=num_channels,
            num_rotary_layers=config.num_self_attention_rotary_layers,
            checkpointing=self.checkpointing,
            widening_factor=config.self_attention_widening_factor,
            out_bias=False,
            **layer_kwargs,
        )

    @property
    def num_kv_caches(self) -> int:
        """One cache for the cross-attention plus one per self-attention layer."""
        return 1 + len(self.self_attention)

    def empty_kv_cache(
        self, batch_size: int, device=None, dtype: Optional[torch.dtype] = None, max_seq_len: Optional[int] = None
    ) -> List[KVCache]:
        """Empty caches `[cross-attention, self-attention layer 0, ...]` for a cached forward pass.

        :param max_seq_len: positions the cross-attention cache will hold at most (the self-attention caches hold
            the latents); buffers of twice this size are preallocated. Default: grow as needed.
        """
        capacity = None if max_seq_len is None else 2 * max_seq_len
        max_latents = getattr(self, "max_latents", None)
        sa_capacity = None if max_latents is None else 2 * max_latents
        return [self.cross_attention.attention.empty_kv_cache(batch_size, capacity, device, dtype)] + [
            layer.attention.empty_kv_cache(batch_size, sa_capacity, device, dtype) for layer in self.self_attention
        ]

    def forward(
        self,
        x: torch.Tensor,
        prefix_len: int,
        pad_mask: Optional[torch.Tensor] = None,
        kv_cache: Optional[List[KVCache]] = None,
    ) -> torch.Tensor:
        """Computes the latents' hidden states.

        :param x: input `(b, n)` of the input adapter; with `kv_cache`, only the positions that follow the cached ones.
        :param prefix_len: number of leading positions of `x` that are prefix; the other `n - prefix_len` are latents.
        :param pad_mask: `(b, m)`, True marks (left) padding, aligned with the end of the sequence: its last
            `n_cached + n` columns (`n` without cache) are those of the cached and new positions, in either mode. The
            absolute positions of padded rows are shifted so that their first real token gets position 0.
        :param kv_cache: `[cross-attention, self-attention layer 0, ...]` caches (see `empty_kv_cache`), extended in
            place. The cross-attention cache holds all cached positions; a self-attention cache holds the latents.
        :return: hidden states of the latents `(b, n - prefix_len, num_channels)`.
        """
        b, n = x.shape[:2]
        n_cached = 0 if kv_cache is None else kv_cache[0].seq_len
        pad_mask = without_empty_pad_mask(window_mask(pad_mask, n_cached + n))  # 🤗 `generate` passes all-ones masks
        if n_cached == 0:
            shift = None if pad_mask is None else pad_mask.sum(dim=1, keepdim=True)
            x, frq_pos_enc = self.input_adapter(x, abs_pos=positions(b, n, shift, device=x.device))
            if kv_cache is not None:
                kv_cache[0].position_shift = shift
            rot_pos_emb = RotaryPositionEmbedding(frq_pos_enc, right_align=True)
        else:
            x, rot_pos_emb = self._embed_next(x, pad_mask, kv_cache[0])
            frq_pos_enc = None

        x_prefix, x_latent = x[:, :prefix_len], x[:, prefix_len:]
        num_latents = n - prefix_len
        # keys of the cross-attention: prefix then latents; queries, and the self-attention's keys, are the last
        # positions, so both use right-aligned angles of all new positions
        rot_pos_emb_k = rot_pos_emb
        pad_mask_k = pad_mask

        if self.training and self.cross_attention_dropout > 0.0 and kv_cache is None and prefix_len > 0:
            num_keep = prefix_len - int(prefix_len * self.cross_attention_dropout)
            keep = torch.rand(b, prefix_len, device=x.device).topk(num_keep, dim=1).indices.sort(dim=1).values
            x_prefix = x_prefix.gather(1, keep.unsqueeze(-1).expand(-1, -1, x_prefix.shape[-1]))
            frq_prefix = frq_pos_enc[:, :prefix_len].gather(1, keep.unsqueeze(-1).expand(-1, -1, frq_pos_enc.shape[-1]))
            frq_pos_enc_k = torch.cat([frq_prefix, frq_pos_enc[:, prefix_len:]], dim=1)
            rot_pos_emb_k = RotaryPositionEmbedding(frq_pos_enc_k, right_align=True)
            if pad_mask is not None:
                pad_mask_k = torch.cat([pad_mask[:, :prefix_len].gather(1, keep), pad_mask[:, prefix_len:]], dim=1)

        x_latent = maybe_checkpoint(
            self.cross_attention,
            x_latent,
            x_kv_prefix=x_prefix,
            pad_mask=pad_mask_k,
            rot_pos_emb_q=rot_pos_emb,
            rot_pos_emb_k=rot_pos_emb_k,
            kv_cache=None if kv_cache is None else kv_cache[0],
            checkpointing=self.checkpointing,
        )

        sa_kv_cache = None if kv_cache is None else kv_cache[1:]
        # the self-attention's keys are the latents (and the cached ones): the last positions
        pad_mask_sa = window_mask(pad_mask, num_latents + (0 if kv_cache is None else kv_cache[1].seq_len))
        return self.self_attention(x_latent, pad_mask=pad_mask_sa, rot_pos_emb=rot_pos_emb, kv_cache=sa_kv_cache)

    def _embed_next(self, x: torch.Tensor, pad_mask: Optional[torch.Tensor], cache: KVCache):
        """Input embedding and rotary embedding of new positions `x` `(b, n)` that follow the cached ones.

        The absolute position embedding takes positions within the cached window (renumbered from 0 when the window
        slides, as in perceiver-io 0.11). Rotary angles take positions in the whole stream, those the cached keys
        were rotated with (the same relative positions), computed in float64 so that they stay exact when the stream
        grows long. Both cost O(n), whatever the number of cached positions.
        """
        b, n = x.shape
        n_window = cache.seq_len + n
        new_pos = torch.arange(cache.seq_len, n_window, device=x.device).expand(b, n)
        stream_pos = torch.arange(cache.position, cache.position + n, device=x.device).expand(b, n)
        if pad_mask is not None:
            # pad_mask covers the window: cached and new positions
            new_pos = (new_pos - pad_mask.sum(dim=1, keepdim=True)).clamp(min=0)
        if cache.position_shift is not None:
            stream_pos = (stream_pos - cache.position_shift).clamp(min=0)
        x, _ = self.input_adapter(x, abs_pos=new_pos)
        inv_freq = self.input_adapter.frq_pos_encoding.inv_freq
        wide = torch.float64 if x.device.type in ("cpu", "cuda") else torch.float32
        angles = stream_pos.to(wide).unsqueeze(-1) * inv_freq.to(wide)
        rot_pos_emb = RotaryPositionEmbedding(angles.repeat_interleave(2, dim=-1), right_align=True, dtype=x.dtype)
        return x, rot_pos_emb


@dataclass
class CausalSequenceModelConfig(PerceiverARConfig):
    """Perceiver AR over a token sequence with logits tied to the token embedding (text, symbolic audio).

    :param vocab_size: number of token ids.
    :param max_seq_len: maximum number of positions (prefix + latents).
    :param max_latents: maximum number of latents; `max_seq_len - max_latents` is the maximum prefix length.
    :param num_channels: model channels (token embedding, attention layers).
    :param output_norm: layer norm before the output projection.
    :param output_bias: learned bias of the output logits.
    :param abs_pos_emb: learned absolute position embedding (then rotary embedding rotates half of each head).
    :param init_scale: standard deviation of the normal initialization of the weights.
    """

    vocab_size: int = 262
    max_seq_len: int = 4096
    max_latents: int = 512
    num_channels: int = 512
    output_norm: bool = False
    output_bias: bool = True
    abs_pos_emb: bool = True
    init_scale: float = 0.02

    @classmethod
    def create(cls, **kwargs: Any) -> "CausalSequenceModelConfig":
        """The config of the fields among `kwargs`; other keys are ignored (perceiver-io 0.11 built configs from a
        Lightning module's hyperparameters this way)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in kwargs.items() if name in names})


@dataclass
class CausalSequenceModelOutput:
    """Output of `CausalSequenceModel.forward` (fields also readable as `output["logits"]`, as in 0.11)."""

    logits: torch.Tensor
    last_hidden_state: torch.Tensor
    kv_cache: Optional[List[KVCache]] = None

    def __getitem__(self, name: str):
        return getattr(self, name)


class CausalSequenceModel(PerceiverAR):
    """Perceiver AR over token ids with logits tied to the token embedding (text, symbolic audio).

    `forward(x, prefix_len, pad_mask, kv_cache)` returns the latents' logits. With a key/value cache (see
    `empty_kv_cache`), calls after the first take only new tokens, which all become latents, and the cache follows
    the three phases of generation as perceiver-io 0.11 does:

    1. while there are fewer than `max_latents` latents, a new token adds a latent;
    2. then the oldest latent turns into prefix: it is dropped from the self-attention caches but its cross-attention
       keys/values stay as computed when it was a latent;
    3. once the sequence fills `max_seq_len`, the oldest position is dropped from the cross-attention cache and
       positions are renumbered from 0 within the window.

    From phase 2 on this is not the computation of a fresh forward pass over the same tokens (see docs/perceiver_ar.md).
    """

    def __init__(self, config: CausalSequenceModelConfig):
        if not 1 <= config.max_latents <= config.max_seq_len:
            raise ValueError(f"max_latents={config.max_latents} must be in [1, max_seq_len={config.max_seq_len}]")
        check_divisible("num_channels", config.num_channels, "num_heads", config.num_heads)
        rotated_channels_per_head = config.num_channels // config.num_heads
        if config.abs_pos_emb:
            # absolute position embedding already carries positions: rotate half of each head's channels (as 0.11)
            rotated_channels_per_head //= 2
        input_adapter = TokenInputAdapterWithRotarySupport(
            rotated_channels_per_head=rotated_channels_per_head,
            vocab_size=config.vocab_size,
            max_seq_len=config.max_seq_len,
            num_input_channels=config.num_channels,
            abs_pos_emb=config.abs_pos_emb,
        )
        super().__init__(input_adapter, config)
        if config.output_norm:
            self.out_norm = nn.LayerNorm(config.num_channels)
        self.output_adapter = TiedTokenOutputAdapter(vocab_size=config.vocab_size, emb_bias=config.output_bias)
        init_parameters(self, config.init_scale)
        self.config = config

    @property
    def max_seq_len(self) -> int:
        return self.config.max_seq_len

    @property
    def max_latents(self) -> int:
        return self.config.max_latents

    @property
    def max_prefix_len(self) -> int:
        return self.config.max_seq_len - self.config.max_latents

    def forward(
        self,
        x: torch.Tensor,
        prefix_len: int,
        pad_mask: Optional[torch.Tensor] = None,
        kv_cache: Optional[List[KVCache]] = None,
    ) -> "CausalSequenceModelOutput":
        """Logits `(b, n - prefix_len, vocab_size)` of the latent positions of token ids `x` `(b, n)`.

        :param prefix_len: leading prefix positions of `x`; `0 <= prefix_len <= max_prefix_len` and
            `1 <= n - prefix_len <= max_latents`. Must be 0 when `kv_cache` already holds positions.
        :param pad_mask: `(b, m)`, True marks left padding, aligned with the end of the sequence: its last columns
            are those of the positions in the window, `n` without cache (or with an empty one), `n_cached + n` with it
            (`n_cached` after the window moved), so `m` must be at least that, in either mode. So the 🤗 attention
            mask of the whole sequence can be passed (see `generation_window`).
        :param kv_cache: caches from `empty_kv_cache`, updated in place. perceiver-io 0.11's protocol also works
            (deprecated): an empty list (left empty; the output holds new caches), a list of `(keys, values)`
            tuples, or the `kv_cache` of such an output, with the prompt's `prefix_len` passed on (ignored).
        :return: `logits`, `last_hidden_state` (of the latents) and `kv_cache` (the caches, or None).
        """
        kv_cache = self._kv_cache_of(x, kv_cache)
        self.validate_input(x, prefix_len, pad_mask, kv_cache)
        if kv_cache is not None and kv_cache[0].seq_len > 0:
            prefix_len = 0  # 0.11's protocol passes the prompt's prefix_len on, and ignores it
        return self._forward(x, prefix_len, pad_mask, kv_cache)

    def _forward(
        self, x: torch.Tensor, prefix_len: int, pad_mask: Optional[torch.Tensor], kv_cache: Optional[List[KVCache]]
    ) -> "CausalSequenceModelOutput":
        # forward of validated input (generation loops validate their prompt once, then call this per step)
        if kv_cache is not None and kv_cache[0].seq_len > 0:
            self._make_room(kv_cache, x.shape[1])
        h = super().forward(x, prefix_len=prefix_len, pad_mask=pad_mask, kv_cache=kv_cache)
        if self.config.output_norm:
            h = self.out_norm(h)
        logits = self.output_adapter(h, txt_embedding=self.input_adapter.txt_embedding)
        return CausalSequenceModelOutput(logits=logits, last_hidden_state=h, kv_cache=kv_cache)

    def empty_kv_cache(self, batch_size: int, device=None, dtype: Optional[torch.dtype] = None) -> List[KVCache]:
        """Empty caches `[cross-attention, self-attention layer 0, ...]` with room preallocated for `max_seq_len`
        (cross-attention) and `max_latents` positions (self-attention), so that generation never reallocates."""
        return super().empty_kv_cache(batch_size, device, dtype, max_seq_len=self.max_seq_len)

    def _kv_cache_of(self, x: torch.Tensor, kv_cache) -> Optional[List[KVCache]]:
        """This model's caches from `kv_cache`, also in perceiver-io 0.11's protocol: an empty list (filled in
        place), or a list of `(keys, values)` tuples `(b, n, channels)` as this model's outputs unpack to."""
        if kv_cache is None or (len(kv_cache) > 0 and all(isinstance(c, KVCache) for c in kv_cache)):
            return kv_cache
        if not isinstance(kv_cache, list):
            raise TypeError(f"kv_cache must be a list of KVCache (see empty_kv_cache), got {type(kv_cache).__name__}")
        if len(kv_cache) == 0:
            warnings.warn(
                "kv_cache=[] (perceiver-io 0.11) is deprecated: pass kv_cache=model.empty_kv_cache(batch_size)",
                DeprecationWarning,
                stacklevel=3,
            )
            # as in 0.11, the list passed stays empty (it may start another sequence); the output holds the caches
            caches = self.empty_kv_cache(x.shape[0], device=x.device)
            caches[0].protocol_0_11 = True
            return caches
        warnings.warn(
            "a kv_cache of (keys, values) tuples (perceiver-io 0.11) is deprecated: pass the KVCache list of "
            "model.empty_kv_cache(batch_size), which the model updates in place",
            DeprecationWarning,
            stacklevel=3,
        )
        caches = self.empty_kv_cache(x.shape[0], device=x.device)
        for cache, entry in zip(caches, kv_cache):
            keys, values = entry
            cache.extend(keys.to(cache.head_keys.dtype), values.to(cache.head_values.dtype))
        caches[0].protocol_0_11 = True
        return caches

    def _make_room(self, kv_cache: List[KVCache], num_new: int) -> None:
        # the oldest latents turn into prefix: they leave the self-attention caches (phase 2)
        num_drop = kv_cache[1].seq_len + num_new - self.max_latents
        if num_drop > 0:
            for cache in kv_cache[1:]:
                cache.drop_first(num_drop)
        # the window slides: the oldest positions leave the cross-attention cache (phase 3)
        num_drop = kv_cache[0].seq_len + num_new - self.max_seq_len
        if num_drop > 0:
            kv_cache[0].drop_first(num_drop)

    def validate_input(
        self,
        x: torch.Tensor,
        prefix_len: int,
        pad_mask: Optional[torch.Tensor] = None,
        kv_cache: Optional[List[KVCache]] = None,
    ) -> int:
        """Raises a ValueError (naming argument, value and allowed range) for input this model cannot take.

        :return: the number of cached positions.
        """
        if x.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, seq_len), got {tuple(x.shape)}")
        check_token_ids("input_ids", x, self.config.vocab_size)
        if not isinstance(prefix_len, int) or isinstance(prefix_len, bool):
            raise TypeError(f"prefix_len must be an int, got {type(prefix_len).__name__}")
        n = x.shape[1]
        if kv_cache is not None and len(kv_cache) != self.num_kv_caches:
            raise ValueError(f"kv_cache has {len(kv_cache)} entries, expected {self.num_kv_caches}")
        n_cached = 0 if kv_cache is None else kv_cache[0].seq_len
        if n_cached == 0:
            check_seq_len("input_ids", n, self.max_seq_len)
            lo, hi = max(0, n - self.max_latents), min(self.max_prefix_len, n - 1)
            if not lo <= prefix_len <= hi:
                raise ValueError(
                    f"prefix_len={prefix_len} out of range [{lo}, {hi}] for input_ids of length {n} "
                    f"(max_latents={self.max_latents}, max_prefix_len={self.max_prefix_len})"
                )
        else:
            check_seq_len("input_ids", n, self.max_latents)
            # perceiver-io 0.11's protocol passed the prompt's prefix_len along with the cache, and ignored it
            ignored = getattr(kv_cache[0], "protocol_0_11", False) and 0 <= prefix_len < n_cached + n
            if prefix_len != 0 and not ignored:
                raise ValueError(
                    f"prefix_len={prefix_len} must be 0 when kv_cache holds positions (new tokens are latents)"
                )
            if kv_cache[0].batch_size != x.shape[0]:
                raise ValueError(f"kv_cache has batch size {kv_cache[0].batch_size}, input_ids {x.shape[0]}")
        # one rule in both modes: the mask covers at least the positions of the window
        n_window = min(n_cached + n, self.max_seq_len)
        if pad_mask is not None and (
            pad_mask.dim() != 2 or pad_mask.shape[0] != x.shape[0] or pad_mask.shape[1] < n_window
        ):
            what = "the input's positions" if n_cached == 0 else "cached plus new positions"
            raise ValueError(
                f"pad_mask has shape {tuple(pad_mask.shape)}, expected ({x.shape[0]}, m) with m >= {n_window} ({what})"
            )
        return n_cached

    @torch.no_grad()
    def generate(
        self,
        x: torch.Tensor,
        max_new_tokens: int,
        num_latents: int = 1,
        pad_mask: Optional[torch.Tensor] = None,
        use_cache: bool = True,
        temperature: float = 1.0,
        top_k: Optional[int] = None,
        do_sample: bool = False,
    ) -> torch.Tensor:
        """A minimal generation loop (greedy, or sampling with temperature and top-k), without 🤗.

        Without cache, each step runs a fresh forward pass over the last `max_seq_len` tokens with
        `min(num_latents + step, max_latents)` latents; with cache, it follows the phases described in the class
        docstring. The prompt is validated once; tokens are written into a preallocated output, so a step's cost
        does not grow with the number of generated tokens. Returns prompt and new tokens `(b, n + max_new_tokens)`.

        :param num_latents: the number of latents of the first step (the last `num_latents` prompt tokens), not the
            size of a latent array (Perceiver IO's `num_latents`).
        :param pad_mask: `(b, n)`, True marks left padding of the prompt.
        :param top_k: sample from (or pick among) the `top_k` most likely tokens; None or 0: all (as in 🤗).
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a tensor of token ids (batch, seq_len), got {type(x).__name__}")
        if x.dim() != 2:
            raise ValueError(f"x must have shape (batch, seq_len), got {tuple(x.shape)}")
        if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens={max_new_tokens!r} must be an int >= 0")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 0):
            raise ValueError(f"top_k={top_k!r} must be None or an int >= 0 (0 and None: no top-k filtering)")
        if not temperature > 0:
            raise ValueError(f"temperature={temperature!r} must be > 0")
        top_k = top_k or None
        check_latents(num_latents, x.shape[1], self.max_latents, self.max_prefix_len)
        b, n = x.shape
        self.validate_input(x, n - num_latents, pad_mask)
        seq = x.new_empty(b, n + max_new_tokens)
        seq[:, :n] = x
        if pad_mask is not None:
            pad_mask = torch.cat([window_mask(pad_mask, n), pad_mask.new_zeros(b, max_new_tokens)], dim=1)
        kv_cache = self.empty_kv_cache(b, device=x.device) if use_cache else None
        for step in range(max_new_tokens):
            end = n + step
            mask = None if pad_mask is None else pad_mask[:, :end]
            if step > 0 and use_cache:
                logits = self._forward(seq[:, end - 1 : end], 0, mask, kv_cache).logits
            else:
                ids, mask = generation_window(seq[:, :end], mask, self.max_seq_len)
                n_latents = min(num_latents + step, self.max_latents, ids.shape[1])
                logits = self._forward(ids, ids.shape[1] - n_latents, mask, kv_cache).logits
            logits = logits[:, -1] / temperature
            if top_k is not None:
                kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            if do_sample:
                next_token = torch.multinomial(logits.softmax(dim=-1), num_samples=1)
            else:
                next_token = logits.argmax(dim=-1, keepdim=True)
            seq[:, end : end + 1] = next_token
        return seq


def check_latents(num_latents: int, seq_len: int, max_latents: int, max_prefix_len: int) -> None:
    """Raises a ValueError unless a prompt of `seq_len` tokens can start generation with `num_latents` latents."""
    if not 1 <= seq_len <= max_prefix_len + max_latents:
        raise ValueError(
            f"input_ids has sequence length {seq_len} (prompt), allowed range is [1, {max_prefix_len + max_latents}]"
        )
    lo = max(1, seq_len - max_prefix_len)
    if not isinstance(num_latents, int) or not lo <= num_latents <= max_latents:
        raise ValueError(
            f"num_latents={num_latents} out of range [{lo}, {max_latents}] for a prompt of length {seq_len} "
            f"(max_latents={max_latents}, max_prefix_len={max_prefix_len})"
        )


def latent_targets(labels: torch.Tensor, num_latents: int) -> torch.Tensor:
    """Next-token targets `(b, num_latents)` of the last `num_latents` positions from labels `(b, n)` aligned with
    the input (🤗 convention): the target of position `i` is `labels[:, i + 1]`, the last position has none (-100)."""
    targets = labels[:, labels.shape[1] - num_latents + 1 :]
    return torch.cat([targets, targets.new_full((labels.shape[0], 1), IGNORE_INDEX)], dim=1)
