"""🤗 side of Perceiver AR, shared by its tasks (`perceiver.model.text.clm`, `perceiver.model.audio.symbolic`): the
cache and the base model with cached generation through `GenerationMixin`, `generate(num_latents=...)` and the loss
from labels. A task subclasses `PerceiverCausalSequenceModel` and sets its config and backend classes.
"""

from typing import Any, Dict, List, Optional

import torch
from transformers import GenerationMixin
from transformers.cache_utils import Cache, CacheLayerMixin
from transformers.modeling_outputs import CausalLMOutputWithPast

from perceiver.model.core.attention import KVCache
from perceiver.model.core.huggingface import PerceiverBackendModel
from perceiver.model.core.loss import token_cross_entropy
from perceiver.model.core.perceiver_ar.backend import (
    CausalSequenceModel,
    check_latents,
    generation_window,
    latent_targets,
)
from perceiver.model.core.utils import check_token_ids, pad_mask_from
from perceiver.model.core.validation import check_input_ids, check_labels


class PerceiverARCacheLayer(KVCache, CacheLayerMixin):
    """One attention layer's cache, both the backend's `KVCache` (which the backend model updates in place) and a
    🤗 cache layer (so that `generate` can reorder it for beam search). `keys`/`values` read `(b, n, channels)`."""

    def __init__(self, cache: KVCache):
        # takes over the backend cache's preallocated buffers
        self.__dict__.update(cache.__dict__)
        self.is_initialized = True
        self.device = cache.head_keys.device

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seq_len={self.seq_len})"

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        pass

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        self.extend(key_states, value_states)
        return self.keys, self.values

    def get_mask_sizes(self, query_length: int) -> tuple:
        return self.seq_len + query_length, 0

    def get_seq_length(self) -> int:
        return self.seq_len

    def get_max_length(self) -> int:
        return -1

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError(
                f"tokens_to_remove={tokens_to_remove} must be <= 0 (the number of newest positions to drop)"
            )
        self.drop_last(-tokens_to_remove)

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.select(beam_idx)

    def batch_repeat_interleave(self, repeats: int) -> None:
        self.repeat_interleave(repeats)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.select(indices)


class PerceiverARCache(Cache):
    """🤗 cache of a Perceiver AR model: layer 0 caches the cross-attention (all positions of the current window),
    layers 1.. the self-attention layers (the latents). The backend model moves the window (see
    `CausalSequenceModel`); `get_seq_length()` is the number of positions in the window."""

    def __init__(self, kv_cache: List[KVCache]):
        super().__init__(layers=[PerceiverARCacheLayer(c) for c in kv_cache])

    @classmethod
    def empty(cls, model: CausalSequenceModel, batch_size: int, device=None) -> "PerceiverARCache":
        return cls(model.empty_kv_cache(batch_size, device=device))

    @property
    def kv_cache(self) -> List[KVCache]:
        """The backend model's caches (the layers themselves, updated in place)."""
        return list(self.layers)


class PerceiverCausalSequenceModel(PerceiverBackendModel, GenerationMixin):
    """🤗 base of Perceiver AR models (`input_ids`, `attention_mask` 1 = token / 0 = left padding, optional `labels`).

    `forward` returns the logits of the latent positions only, the last `n - prefix_len` (default: as many as
    `max_latents` allows). `generate(..., num_latents=N)` starts generation with `N` latents at the end of the prompt.
    Subclasses set `config_class` and `backend_model_class`.
    """

    main_input_name = "input_ids"
    backend_model: CausalSequenceModel

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: Optional[torch.Tensor] = None,
        prefix_len: Optional[int] = None,
        cache: Optional[PerceiverARCache] = None,
        labels: Optional[torch.LongTensor] = None,
        use_cache: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """
        :param prefix_len: number of prefix positions of `input_ids`. Default: `max(0, n - max_latents)`, or 0 when
            `cache` holds positions (new tokens are latents).
        :param cache: a `PerceiverARCache`, updated in place; created when `use_cache` is True and none is given.
        :param labels: `(b, n)` aligned with `input_ids` (shifted inside; -100 = ignore). The loss covers the latents.
        """
        check_input_ids(input_ids)
        if cache is not None and not isinstance(cache, PerceiverARCache):
            raise TypeError(f"cache must be a PerceiverARCache, got {type(cache).__name__}")
        if cache is None and use_cache:
            cache = PerceiverARCache.empty(self.backend_model, input_ids.shape[0], device=input_ids.device)
        n_cached = 0 if cache is None else cache.get_seq_length()
        if prefix_len is None:
            prefix_len = 0 if n_cached > 0 else max(0, input_ids.shape[1] - self.backend_model.max_latents)
        pad_mask = pad_mask_from(attention_mask)
        kv_cache = None if cache is None else cache.kv_cache
        logits = self.backend_model(input_ids, prefix_len=prefix_len, pad_mask=pad_mask, kv_cache=kv_cache).logits
        loss = None
        if labels is not None:
            check_labels(labels, input_ids.shape, logits.shape[-1], allow_ignore=True)
            loss = token_cross_entropy(logits, latent_targets(labels, logits.shape[1]))
        return CausalLMOutputWithPast(loss=loss, logits=logits, cache=cache)

    def generate(self, inputs: Optional[torch.Tensor] = None, num_latents: int = 1, **kwargs: Any):
        """`GenerationMixin.generate` with a `num_latents` argument: the number of latent positions at the end of the
        prompt when generation starts (`1 <= num_latents <= max_latents`, and the prompt's prefix at most
        `max_prefix_len`), not the size of a latent array (as Perceiver IO's `num_latents` is).

        During generation, the number of latents first grows to `max_latents`, then the prefix grows to
        `max_prefix_len`, then the window of `max_seq_len` positions slides (see docs/perceiver_ar.md).
        """
        input_ids = inputs if inputs is not None else kwargs.get("input_ids")
        if input_ids is None:
            raise ValueError("input_ids (or inputs) must be given: Perceiver AR generates from a prompt")
        check_input_ids(input_ids)
        check_token_ids("input_ids", input_ids, self.backend_model.config.vocab_size)
        model = self.backend_model
        check_latents(num_latents, input_ids.shape[-1], model.max_latents, model.max_prefix_len)
        attention_mask = kwargs.get("attention_mask")
        # one check per call: without padding, steps need no attention mask over the whole window
        padded = attention_mask is not None and not bool(attention_mask.bool().all())
        return super().generate(inputs, num_latents=num_latents, padded=padded, **kwargs)

    def prepare_inputs_for_generation(
        self,
        input_ids: torch.LongTensor,
        next_sequence_length: Optional[int] = None,
        cache: Optional[PerceiverARCache] = None,
        attention_mask: Optional[torch.Tensor] = None,
        num_latents: int = 1,
        use_cache: Optional[bool] = None,
        padded: bool = True,
        **kwargs: Any,
    ) -> Dict[str, Any]:
        if not padded:
            attention_mask = None
        if cache is not None and cache.get_seq_length() > 0:
            # new tokens only; the backend moves the cache window and slices the attention mask
            input_ids, prefix_len = input_ids[:, -(next_sequence_length or 1) :], 0
        else:
            input_ids, attention_mask = generation_window(input_ids, attention_mask, self.backend_model.max_seq_len)
            prefix_len = input_ids.shape[1] - min(num_latents, input_ids.shape[1])
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "prefix_len": prefix_len,
            "cache": cache,
            "use_cache": use_cache,
        }

    def _update_model_kwargs_for_generation(self, outputs, model_kwargs: Dict[str, Any], *args, **kwargs):
        model_kwargs = super()._update_model_kwargs_for_generation(outputs, model_kwargs, *args, **kwargs)
        # latents grow until max_latents (used when generating without cache)
        model_kwargs["num_latents"] = min(model_kwargs.get("num_latents", 1) + 1, self.backend_model.max_latents)
        return model_kwargs

    def _prepare_cache_for_generation(self, generation_config, model_kwargs: Dict[str, Any], *args, **kwargs) -> None:
        # transformers' pattern for model-specific caches: the first forward pass creates a PerceiverARCache
        if model_kwargs.get("cache") is not None:
            raise ValueError(
                "cache: generate() starts from a prompt; passing a cache to continue from is not supported"
            )
