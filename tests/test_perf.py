"""Performance paths against the plain ones: fused projections, the preallocated KV cache, decoding a subset of
output queries, chunked decoder queries, token-id checks without host sync, and 0.11's cache protocol."""

import warnings

import pytest
import torch

from perceiver.model.core import (
    CrossAttentionLayer,
    KVCache,
    MultiHeadAttention,
    SelfAttentionBlock,
    SelfAttentionLayer,
)
from perceiver.model.core.utils import check_token_ids
from perceiver.model.text import clm, mlm

ATOL = 1e-5


def plain(module: torch.nn.Module, fused: bool) -> None:
    for m in module.modules():
        if isinstance(m, MultiHeadAttention):
            m.fused_projections = fused


@pytest.mark.parametrize("bias", [True, False])
def test_fused_projections_equal_plain(bias, monkeypatch):
    torch.manual_seed(0)
    self_attn = SelfAttentionLayer(num_heads=2, num_channels=16, num_qk_channels=8, num_v_channels=12, qkv_bias=bias)
    cross_attn = CrossAttentionLayer(2, 16, 10, num_qk_channels=8, num_v_channels=12, qkv_bias=bias)
    x, x_kv = torch.randn(2, 40, 16), torch.randn(2, 50, 10)  # >= min_fused_rows rows
    linear = torch.nn.functional.linear
    widths = []

    def recording(input, weight, bias=None):
        widths.append(weight.shape[0])
        return linear(input, weight, bias)

    monkeypatch.setattr(torch.nn.functional, "linear", recording)
    for layer, args, fused_width in ((self_attn, (x,), 8 + 8 + 12), (cross_attn, (x, x_kv), 8 + 12)):
        layer.eval()
        with torch.no_grad():
            plain(layer, False)
            expected = layer(*args)
            assert fused_width not in widths
            plain(layer, True)
            fused = layer(*args)
        assert fused_width in widths, "the fused path did not run"
        torch.testing.assert_close(fused, expected, atol=ATOL, rtol=0)


def test_fused_projections_follow_weight_updates_and_state_dict_keeps_0_11_layout():
    layer = SelfAttentionLayer(num_heads=2, num_channels=8).eval()
    keys = set(layer.state_dict())
    assert {"0.module.attention.q_proj.weight", "0.module.attention.k_proj.weight"} <= keys
    assert not any("qkv" in k or "fused" in k for k in keys)
    x = torch.randn(1, 70, 8)
    with torch.no_grad():
        before = layer(x)
        layer.attention.v_proj.weight.mul_(2.0)  # in place: bumps the version counter, the fused copy is rebuilt
        after = layer(x)
        layer.attention.k_proj.weight.data.mul_(2.0)  # no version bump (as some optimizers): train() drops the copy
        layer.train().eval()
        after_training = layer(x)
        plain(layer, False)
        torch.testing.assert_close(after_training, layer(x), atol=ATOL, rtol=0)
        layer.attention.k_proj.weight.data.div_(2.0)
        torch.testing.assert_close(after, layer(x), atol=ATOL, rtol=0)
    assert not torch.allclose(before, after)


def test_kv_cache_writes_in_place_and_slides_without_reallocation():
    cache = KVCache(torch.empty(1, 2, 0, 4), torch.empty(1, 2, 0, 3), capacity=8)
    buffer = cache._k.data_ptr()
    k, v = torch.randn(1, 2, 20, 4), torch.randn(1, 2, 20, 3)
    for i in range(20):  # a window of 4 positions sliding over 20
        cache.extend(k[:, :, i : i + 1], v[:, :, i : i + 1])
        cache.drop_first(max(0, cache.seq_len - 4))
        n = min(i + 1, 4)
        torch.testing.assert_close(cache.head_keys, k[:, :, i + 1 - n : i + 1])
        torch.testing.assert_close(cache.head_values, v[:, :, i + 1 - n : i + 1])
        assert cache._k.data_ptr() == buffer
    assert cache.position == 20
    # 0.11's (keys, values) layout and tuple unpacking
    keys, values = cache
    assert keys.shape == (1, 4, 8) and values.shape == (1, 4, 6)
    torch.testing.assert_close(keys, k[:, :, -4:].transpose(1, 2).flatten(2))
    cache.select(torch.tensor([0, 0]))
    assert cache.batch_size == 2 and cache.seq_len == 4
    cache.drop_last(1)
    torch.testing.assert_close(cache.head_keys[1], k[0, :, -4:-1])


def test_kv_cache_grows_and_accepts_flat_tensors():
    cache = KVCache(torch.empty(2, 0, 8), torch.empty(2, 0, 8))
    block = SelfAttentionBlock(num_layers=1, num_heads=2, num_channels=8, causal_attention=True).eval()
    x = torch.randn(2, 6, 8)
    with torch.no_grad():
        steps = [block(x[:, i : i + 1], kv_cache=[cache]) for i in range(6)]
        torch.testing.assert_close(torch.cat(steps, dim=1), block(x), atol=ATOL, rtol=0)
    assert cache.seq_len == 6 and cache.capacity >= 6 and cache.keys.shape == (2, 6, 8)


def tiny_clm(**kwargs) -> clm.CausalLanguageModel:
    torch.manual_seed(0)
    config = dict(vocab_size=262, max_seq_len=24, max_latents=8, num_channels=32, num_heads=4)
    config.update(kwargs)
    return clm.CausalLanguageModel(clm.CausalLanguageModelConfig(num_self_attention_layers=2, **config)).eval()


def test_cached_generation_buffers_are_never_reallocated():
    model = tiny_clm()
    cache = model.empty_kv_cache(1)
    pointers = [c._k.data_ptr() for c in cache]
    prompt = torch.randint(3, 262, (1, 10))
    with torch.no_grad():
        model(prompt, 9, kv_cache=cache)
        for _ in range(40):  # phases 1-3: latents grow, prefix grows, the window slides
            model(torch.randint(3, 262, (1, 1)), 0, kv_cache=cache)
    assert [c._k.data_ptr() for c in cache] == pointers
    assert [c.seq_len for c in cache] == [24, 8, 8]


def test_0_11_cache_protocol_list_starts_empty_and_grows():
    model = tiny_clm()
    prompt = torch.randint(3, 262, (2, 12))
    kv_cache = []
    with pytest.warns(DeprecationWarning, match=r"model.empty_kv_cache\(batch_size\)"):
        output = model(prompt, 8, kv_cache=kv_cache)
    kv_cache = output.kv_cache  # as in 0.11, the list passed stays empty (it may start another sequence)
    assert len(kv_cache) == model.num_kv_caches
    assert output.logits.shape == (2, 4, 262) and output.last_hidden_state.shape == (2, 4, 32)
    assert output["logits"] is output.logits
    k, v = output.kv_cache[0]  # 0.11 unpacked (keys, values) of shape (b, n, channels)
    assert k.shape == (2, 12, 32) and v.shape == (2, 12, 32)
    next_token = output.logits[:, -1:].argmax(-1)
    expected = model(next_token, 0, kv_cache=[KVCache(c.head_keys, c.head_values) for c in kv_cache]).logits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        output = model(next_token, 0, kv_cache=output.kv_cache)
    torch.testing.assert_close(output.logits, expected)
    with pytest.warns(DeprecationWarning, match="tuples"):
        model(next_token, 0, kv_cache=[tuple(c) for c in kv_cache])


def test_layer_empty_kv_cache_like_0_11():
    layer = CrossAttentionLayer(2, 16, 16, num_v_channels=8)
    cache = layer.empty_kv_cache(torch.zeros(3, 5, 16, dtype=torch.float64))
    k, v = cache
    assert k.shape == (3, 0, 16) and v.shape == (3, 0, 8) and k.dtype == torch.float64


def tiny_mlm(max_seq_len=64) -> mlm.MaskedLanguageModel:
    torch.manual_seed(0)
    encoder = mlm.TextEncoderConfig(
        vocab_size=262,
        max_seq_len=max_seq_len,
        num_input_channels=32,
        num_cross_attention_heads=2,
        num_self_attention_heads=2,
        num_self_attention_layers_per_block=2,
    )
    decoder = mlm.TextDecoderConfig(vocab_size=262, max_seq_len=max_seq_len, num_cross_attention_heads=2)
    config = mlm.MaskedLanguageModelConfig(encoder=encoder, decoder=decoder, num_latents=8, num_latent_channels=16)
    return mlm.MaskedLanguageModel(config).eval()


def test_subset_decoding_equals_full_logits_at_those_positions():
    model = tiny_mlm()
    x = torch.randint(3, 262, (3, 40))
    pad_mask = torch.zeros(3, 40, dtype=torch.bool)
    pad_mask[2, 30:] = True
    with torch.no_grad():
        full = model(x, pad_mask)
        shared = torch.tensor([0, 7, 39, 7])
        torch.testing.assert_close(model(x, pad_mask, output_positions=shared), full[:, shared], atol=ATOL, rtol=0)
        per_row = torch.tensor([[1, 2], [5, 39], [0, 29]])
        expected = full.gather(1, per_row.unsqueeze(-1).expand(-1, -1, 262))
        torch.testing.assert_close(model(x, pad_mask, output_positions=per_row), expected, atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match=r"output_positions holds position 40, allowed range is \[0, 39\]"):
        model(x, output_positions=torch.tensor([40]))
    with pytest.raises(ValueError, match=r"output_positions must have shape \(k,\) or \(3, k\)"):
        model(x, output_positions=torch.zeros(2, 1, dtype=torch.long))


def test_chunked_decoder_queries_equal_all_at_once():
    model = tiny_mlm()
    x = torch.randint(3, 262, (2, 50))
    with torch.no_grad():
        latents = model.encoder(x)
        query = model.decoder.output_query_provider(num_queries=50)
        embedding = model.encoder.input_adapter.txt_embedding
        whole = model.decoder(latents, query, max_queries_parallel=None, txt_embedding=embedding)
        chunked = model.decoder(latents, query, max_queries_parallel=7, txt_embedding=embedding)
    torch.testing.assert_close(chunked, whole, atol=ATOL, rtol=0)


def test_fill_mask_pipeline_decodes_masked_positions_only(tmp_path, monkeypatch):
    from transformers import PerceiverTokenizer, pipeline

    hf_model = mlm.PerceiverMaskedLanguageModel(mlm.PerceiverMaskedLanguageModelConfig(tiny_mlm().config))
    hf_model.save_pretrained(tmp_path)
    PerceiverTokenizer(model_max_length=64).save_pretrained(tmp_path)
    fill_mask = pipeline("fill-mask", model=str(tmp_path))
    text = "Perceiver [MASK]O"
    decoded = []
    forward = type(fill_mask.model.backend_model.decoder).forward

    def recording(self, x_latent, output_query=None, *args, **kwargs):
        decoded.append(output_query.shape[1])
        return forward(self, x_latent, output_query, *args, **kwargs)

    monkeypatch.setattr(type(fill_mask.model.backend_model.decoder), "forward", recording)
    predictions = fill_mask(text, top_k=3)
    assert decoded == [1]  # one masked position decoded, not the whole sequence
    inputs = fill_mask.tokenizer(text, return_tensors="pt")
    position = (inputs["input_ids"][0] == fill_mask.tokenizer.mask_token_id).nonzero()[0, 0]
    with torch.no_grad():
        probs = fill_mask.model(**inputs).logits[0, position].softmax(-1)
    expected = probs.topk(3)
    assert [p["token"] for p in predictions] == expected.indices.tolist()
    torch.testing.assert_close(torch.tensor([p["score"] for p in predictions]), expected.values, atol=1e-6, rtol=0)


def test_check_token_ids_errors_on_cpu_and_skips_while_compiling(monkeypatch):
    with pytest.raises(ValueError, match=r"input_ids holds token id 262, outside the vocabulary range \[0, 261\]"):
        check_token_ids("input_ids", torch.tensor([[1, 262]]), 262)
    with pytest.raises(ValueError, match=r"input_ids holds token id -1"):
        check_token_ids("input_ids", torch.tensor([[-1, 5]]), 262)
    with pytest.raises(TypeError, match="must hold integer token ids"):
        check_token_ids("input_ids", torch.tensor([[1.0]]), 262)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    check_token_ids("input_ids", torch.tensor([[1, 262]]), 262)  # no value check (no graph break) while compiling


def test_default_optimizer_is_fused_adamw_with_the_same_steps():
    """The Lightning wrappers' default AdamW runs its fused kernel (one kernel for all parameters); its updates equal
    the plain loop's up to float rounding."""
    from perceiver.model.core.lightning import fused_optimizer_supported

    torch.manual_seed(0)
    lit = clm.LitCausalLanguageModel(vocab_size=262, max_seq_len=16, max_latents=4, num_channels=16, num_heads=2,
                                     num_self_attention_layers=1, cross_attention_dropout=0.0, lr=1e-2)  # fmt: skip
    optimizer = lit.configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"]
    plain_model = clm.LitCausalLanguageModel(**lit.hparams)
    plain_model.load_state_dict(lit.state_dict())
    plain_optimizer = torch.optim.AdamW(plain_model.parameters(), lr=1e-2, weight_decay=lit.hparams.weight_decay)
    x = torch.randint(6, 262, (2, 16))
    for model, opt in [(lit, optimizer), (plain_model, plain_optimizer)]:
        for _ in range(3):
            model(x, 12).square().mean().backward()
            opt.step()
            opt.zero_grad()
    for (name, p), q in zip(lit.named_parameters(), plain_model.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5, msg=name)
    assert fused_optimizer_supported([torch.zeros(2, dtype=torch.long)]) is None  # no fused kernel for integers
    assert fused_optimizer_supported([]) is None


@pytest.mark.parametrize("numel", [1, 1024, 16384, 16385, 200_000])
def test_gelu_small_inputs_take_pytorch_kernel_with_the_same_values(numel):
    """Small CPU inputs bypass oneDNN's GELU (fixed setup cost) for PyTorch's own kernel: the same function; the
    global oneDNN switch is restored afterwards, also when a user has turned oneDNN off."""
    from perceiver.model.core.attention import GELU

    x = torch.randn(numel) * 4
    expected = torch.nn.functional.gelu(x.double()).float()
    torch.testing.assert_close(GELU()(x), expected, atol=2e-6, rtol=1e-6)
    assert torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(False)
    try:
        torch.testing.assert_close(GELU()(x), expected, atol=2e-6, rtol=1e-6)
        assert not torch._C._get_mkldnn_enabled()
    finally:
        torch._C._set_mkldnn_enabled(True)
    x.requires_grad_(True)
    GELU()(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.autograd.grad(torch.nn.functional.gelu(x).sum(), x)[0], atol=1e-6, rtol=0)


def test_rotary_rotation_equals_the_pairwise_formula():
    """`rotate` (swap pairs times a signed sin table) against the textbook rotation of each channel pair."""
    from perceiver.model.core.position import FrequencyPositionEncoding, RotaryPositionEmbedding

    torch.manual_seed(0)
    angles = FrequencyPositionEncoding(dim=8)(torch.arange(12).expand(2, 12))  # (b, n, 8)
    t = torch.randn(2, 3, 12, 16)  # (b, h, n, c): 8 rotated channels, 8 passed through
    rotated = RotaryPositionEmbedding(angles, right_align=True).rotate(t)
    a = angles[..., ::2].unsqueeze(1)  # one angle per pair
    x1, x2 = t[..., 0:8:2], t[..., 1:8:2]
    expected = torch.stack((x1 * a.cos() - x2 * a.sin(), x2 * a.cos() + x1 * a.sin()), dim=-1).flatten(-2)
    torch.testing.assert_close(rotated[..., :8], expected, atol=1e-6, rtol=0)
    assert torch.equal(rotated[..., 8:], t[..., 8:])
    table = RotaryPositionEmbedding(angles.double(), dtype=torch.float32)
    assert table.cos.dtype == table.sin.dtype == table.signed_sin.dtype == torch.float32


def test_mask_without_padding_equals_no_mask():
    """An all-ones 🤗 attention mask (what `generate` passes) is dropped on CPU: the logits equal unmasked ones, in
    the prompt's forward pass and in cached steps; a mask with padding still masks."""
    model = tiny_clm()
    prompt = torch.randint(3, 262, (2, 10))
    no_padding = torch.zeros(2, 10, dtype=torch.bool)
    with torch.no_grad():
        expected = model(prompt, 6).logits
        torch.testing.assert_close(model(prompt, 6, pad_mask=no_padding).logits, expected, atol=0, rtol=0)
        padded = no_padding.clone()
        padded[0, :3] = True
        assert not torch.allclose(model(prompt, 6, pad_mask=padded).logits[0], expected[0])
        caches = [model.empty_kv_cache(2), model.empty_kv_cache(2)]
        model(prompt, 6, kv_cache=caches[0])
        model(prompt, 6, pad_mask=no_padding, kv_cache=caches[1])
        for step in range(12):
            token = torch.randint(3, 262, (2, 1))
            mask = torch.zeros(2, 11 + step, dtype=torch.bool)
            torch.testing.assert_close(
                model(token, 0, pad_mask=mask, kv_cache=caches[1]).logits,
                model(token, 0, kv_cache=caches[0]).logits,
                atol=0,
                rtol=0,
            )


@pytest.mark.parametrize("case", ["no mask", "pad mask", "causal", "right-aligned causal", "one query"])
@pytest.mark.parametrize("blocks", ["none", "queries", "keys"])
def test_attention_with_wider_values_equals_sdpa(case, blocks, monkeypatch):
    """On CPU, attention whose values are wider than queries/keys (language perceiver) runs in blocks of its own
    instead of SDPA's math fallback: the same outputs and gradients, fully masked rows included (zero). Key blocks
    (combined through row maxima and sums) are taken without autograd."""
    import perceiver.model.core.attention as attention

    torch.manual_seed(0)
    n_q, n_k = {"causal": (40, 40), "one query": (1, 9)}.get(case, (40, 50))
    q, k = torch.randn(2, 3, n_q, 4, requires_grad=True), torch.randn(2, 3, n_k, 4, requires_grad=True)
    v = torch.randn(2, 3, n_k, 10, requires_grad=True)
    # blocks of 14 query rows or keys (the fewest it takes with 4 + 10 channels), or all at once
    elements = {"none": n_q * n_k, "queries": 14 * n_k, "keys": 14 * 14}[blocks] * 2 * 3
    monkeypatch.setattr(attention, "SCORE_BLOCK_ELEMENTS", elements)
    mask, is_causal = None, case == "causal"
    if case == "pad mask":
        mask = torch.ones(2, 1, 1, n_k, dtype=torch.bool)
        mask[0, ..., :3] = False
        mask[1] = False  # a row without any key: zero output, as with SDPA
    elif case == "right-aligned causal":
        mask = torch.ones(n_q, n_k, dtype=torch.bool).tril(n_k - n_q)
    calls = []  # (query rows, keys per block) of each query block
    attend_rows = attention._attend_rows
    monkeypatch.setattr(
        attention,
        "_attend_rows",
        lambda q, k, *a, **kw: calls.append((q.shape[-2], a[3])) or attend_rows(q, k, *a, **kw),
    )
    output = attention._attend(q, k, v, mask, 0.0, is_causal)
    grads = torch.autograd.grad(output.square().sum(), (q, k, v))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
    expected_grads = torch.autograd.grad(expected.square().sum(), (q, k, v))
    torch.testing.assert_close(output, expected, atol=ATOL, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(attention._attend(q, k, v, mask, 0.0, is_causal), expected, atol=ATOL, rtol=0)
    # with autograd, keys are never split; without, in "keys" mode
    if n_q > 1:
        rows = 14 if blocks == "queries" else n_q
        assert calls[0] == (rows, n_k) and len(calls) == 2 * -(-n_q // rows)
        assert calls[-1][1] == (14 if blocks == "keys" else n_k)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, atol=ATOL, rtol=0)
    if case == "pad mask":
        assert torch.equal(output[1], torch.zeros_like(output[1]))
