"""Core attention: SDPA results against a plain reference, masks, causal alignment, rotary, cache, errors."""

import math

import pytest
import torch

from perceiver.model.core import (
    ActivationCheckpointing,
    CrossAttentionLayer,
    FrequencyPositionEncoding,
    KVCache,
    MultiHeadAttention,
    RotaryPositionEmbedding,
    SelfAttentionBlock,
)


def reference_attention(mha: MultiHeadAttention, x_q, x_kv, pad_mask=None, rot_q=None, rot_k=None):
    """Softmax attention written out with einsum, masked scores at -inf."""
    q, k, v = mha.q_proj(x_q), mha.k_proj(x_kv), mha.v_proj(x_kv)
    h = mha.num_heads
    q, k, v = (t.unflatten(-1, (h, -1)).transpose(1, 2) for t in (q, k, v))
    if rot_q is not None:
        q, k = rot_q.rotate(q), rot_k.rotate(k)
    scores = torch.einsum("bhic,bhjc->bhij", q, k) / math.sqrt(q.shape[-1])
    n_q, n_k = scores.shape[-2:]
    if pad_mask is not None:
        scores = scores.masked_fill(pad_mask[:, None, None, :], float("-inf"))
    if mha.causal_attention:
        future = torch.ones(n_q, n_k, dtype=torch.bool).triu(n_k - n_q + 1)
        scores = scores.masked_fill(future, float("-inf"))
    o = torch.einsum("bhij,bhjc->bhic", scores.softmax(-1), v)
    return mha.o_proj(o.transpose(1, 2).flatten(-2))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("heads,qk,v", [(1, 8, 8), (2, 8, 12), (4, 16, 32)])
def test_attention_matches_reference(causal, heads, qk, v):
    mha = MultiHeadAttention(heads, 12, 10, num_qk_channels=qk, num_v_channels=v, causal_attention=causal).eval()
    x_q, x_kv = torch.randn(3, 5, 12), torch.randn(3, 9, 10)
    pad_mask = torch.zeros(3, 9, dtype=torch.bool)
    pad_mask[1, :3] = True  # left padding
    pad_mask[2, -2:] = True
    if causal:
        pad_mask[2, -2:] = False  # right padding would mask the only keys of late queries
    out = mha(x_q, x_kv, pad_mask=pad_mask)
    assert out.shape == (3, 5, 12)
    torch.testing.assert_close(out, reference_attention(mha, x_q, x_kv, pad_mask), atol=1e-5, rtol=1e-5)


def test_causal_self_attention_uses_fast_path_equivalently():
    mha = MultiHeadAttention(2, 8, 8, causal_attention=True).eval()
    x = torch.randn(2, 7, 8)
    torch.testing.assert_close(mha(x, x), reference_attention(mha, x, x), atol=1e-5, rtol=1e-5)


def test_fully_masked_row_gives_no_nan():
    mha = MultiHeadAttention(2, 8, 8).eval()
    pad_mask = torch.tensor([[True, True, True], [False, True, True]])
    out = mha(torch.randn(2, 4, 8), torch.randn(2, 3, 8), pad_mask=pad_mask)
    assert torch.isfinite(out).all()


def test_max_heads_parallel_gives_same_result():
    full = MultiHeadAttention(4, 16, 16, causal_attention=True).eval()
    chunked = MultiHeadAttention(4, 16, 16, causal_attention=True, max_heads_parallel=1).eval()
    chunked.load_state_dict(full.state_dict())
    x = torch.randn(2, 6, 16)
    torch.testing.assert_close(full(x, x), chunked(x, x))


def test_rotary_embedding_matches_reference_and_is_relative():
    mha = MultiHeadAttention(2, 16, 16, causal_attention=True).eval()
    frq = FrequencyPositionEncoding(dim=4)
    x = torch.randn(1, 6, 16)
    pos = torch.arange(6)[None]
    rot = RotaryPositionEmbedding(frq(pos), right_align=True)
    out = mha(x, x, rot_pos_emb_q=rot, rot_pos_emb_k=rot)
    torch.testing.assert_close(out, reference_attention(mha, x, x, rot_q=rot, rot_k=rot), atol=1e-5, rtol=1e-5)
    # rotary attention depends on relative positions only: shifting all positions changes nothing
    rot_shifted = RotaryPositionEmbedding(frq(pos + 7), right_align=True)
    torch.testing.assert_close(
        out, mha(x, x, rot_pos_emb_q=rot_shifted, rot_pos_emb_k=rot_shifted), atol=1e-5, rtol=1e-5
    )


def test_kv_cache_incremental_equals_full():
    block = SelfAttentionBlock(num_layers=2, num_heads=2, num_channels=16, causal_attention=True).eval()
    x = torch.randn(2, 7, 16)
    full = block(x)
    caches = [KVCache(torch.empty(2, 0, 16), torch.empty(2, 0, 16)) for _ in block]
    steps = [block(x[:, i : i + 1], kv_cache=caches) for i in range(7)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)
    assert caches[0].seq_len == 7


def test_cross_attention_layer_with_prefix_attends_to_itself():
    layer = CrossAttentionLayer(2, 16, 16, causal_attention=True).eval()
    prefix, latents = torch.randn(1, 5, 16), torch.randn(1, 3, 16)
    out = layer(latents, x_kv_prefix=prefix)
    assert out.shape == (1, 3, 16)
    # the last latent sees the whole prefix: changing the prefix changes it
    assert not torch.allclose(out, layer(latents, x_kv_prefix=torch.randn(1, 5, 16)))


def test_invalid_channel_counts_raise():
    with pytest.raises(ValueError, match="num_qk_channels=10 must be divisible by num_heads=4"):
        MultiHeadAttention(4, 16, 16, num_qk_channels=10)
    with pytest.raises(ValueError, match="num_v_channels=6 must be divisible by num_heads=4"):
        MultiHeadAttention(4, 16, 16, num_v_channels=6)


def test_activation_checkpointing_gives_same_gradients():
    torch.manual_seed(1)
    plain = SelfAttentionBlock(num_layers=2, num_heads=2, num_channels=8)
    ckpt = SelfAttentionBlock(num_layers=2, num_heads=2, num_channels=8, checkpointing=ActivationCheckpointing(True))
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 5, 8)
    plain(x).sum().backward()
    ckpt(x).sum().backward()
    for p1, p2 in zip(plain.parameters(), ckpt.parameters()):
        torch.testing.assert_close(p1.grad, p2.grad)


@pytest.mark.parametrize("offload", [False, True])
def test_0_11_checkpointing_flags_still_work(offload):
    with pytest.warns(DeprecationWarning, match=r"checkpointing=ActivationCheckpointing\(enabled=True"):
        block = SelfAttentionBlock(
            num_layers=1, num_heads=2, num_channels=8, activation_checkpointing=True, activation_offloading=offload
        )
    assert block.checkpointing == ActivationCheckpointing(enabled=True, offload=offload)
    with pytest.raises(TypeError, match="pass checkpointing only"):
        SelfAttentionBlock(1, 2, 8, checkpointing=ActivationCheckpointing(), activation_checkpointing=True)


def test_loaded_position_buffers_are_checked(tmp_path):
    """A persisted rotary/Fourier buffer that disagrees with the config is an error, not a silent mismatch."""
    from perceiver.model.core import FourierPositionEncoding
    from perceiver.model.core.position import check_computed_buffers

    module = torch.nn.ModuleDict({"rot": FrequencyPositionEncoding(8), "fourier": FourierPositionEncoding((4, 5), 3)})
    check_computed_buffers(module)
    state = module.state_dict()
    state["fourier.position_encoding"] = state["fourier.position_encoding"] * 1.01
    module.load_state_dict(state)
    with pytest.raises(ValueError, match="buffer fourier.position_encoding of the loaded model does not match"):
        check_computed_buffers(module)
