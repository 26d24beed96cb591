"""Each Lightning training step's loss equals a reference computed by hand (log-softmax, gather, mean over the
positions that count) on a small batch with padding, so that unshifted targets or an ignored attention_mask fail;
collator options at non-default values."""

import numpy as np
import pytest
import torch
from transformers import PerceiverTokenizer

from perceiver.data.text.collator import CausalLanguageModelCollator, TokenMaskingCollator, WordMaskingCollator
from perceiver.model.audio.symbolic import LitSymbolicAudioModel, SymbolicAudioModelConfig
from perceiver.model.text import classifier, clm, mlm
from perceiver.model.vision import image_classifier as ic

# right-padded batch: the second example has 3 padding positions
ATTENTION_MASK = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0, 0]])


def hand_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of `targets` over the positions whose target is not -100."""
    log_probs = logits.log_softmax(dim=-1)
    valid = targets != -100
    picked = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(picked * valid).sum() / valid.sum()


def token_batch(vocab_size: int, left_padding: bool = False):
    torch.manual_seed(1)
    mask = ATTENTION_MASK.flip(1) if left_padding else ATTENTION_MASK
    input_ids = torch.randint(3, vocab_size, mask.shape).masked_fill(mask == 0, 0)
    return input_ids, mask


def text_encoder():
    # large init: outputs that depend visibly on every input (the default 0.02 gives near-uniform predictions)
    return dict(
        vocab_size=40, max_seq_len=8, num_input_channels=16, num_self_attention_layers_per_block=1, init_scale=0.5
    )


def test_masked_lm_step_uses_attention_mask_and_labels():
    config = mlm.MaskedLanguageModelConfig(
        encoder=mlm.TextEncoderConfig(**text_encoder()),
        decoder=mlm.TextDecoderConfig(vocab_size=40, max_seq_len=8, init_scale=0.5),
        num_latents=4,
        num_latent_channels=16,
    )
    lit = mlm.LitMaskedLanguageModel.create(config)
    input_ids, mask = token_batch(40)
    labels = torch.full_like(input_ids, -100)
    labels[0, [1, 4]] = input_ids[0, [1, 4]]
    labels[1, [0, 2]] = input_ids[1, [0, 2]]
    loss = lit.training_step({"input_ids": input_ids, "attention_mask": mask, "labels": labels}, 0)
    logits = lit.backend_model(input_ids, pad_mask=mask == 0)
    torch.testing.assert_close(loss, hand_cross_entropy(logits, labels), atol=1e-6, rtol=0)
    # the reference would catch an ignored attention_mask: without it, the loss differs
    unmasked = hand_cross_entropy(lit.backend_model(input_ids), labels)
    assert abs(float(unmasked - loss)) > 1e-4


@pytest.mark.parametrize("lit_class", ["clm", "symbolic audio"])
def test_causal_step_predicts_the_next_token_of_the_latents(lit_class):
    kwargs = dict(max_seq_len=8, max_latents=4, num_channels=16, num_heads=2, num_self_attention_layers=1)
    kwargs["cross_attention_dropout"] = 0.0  # deterministic
    if lit_class == "clm":
        lit = clm.LitCausalLanguageModel.create(clm.CausalLanguageModelConfig(vocab_size=40, **kwargs))
    else:
        lit = LitSymbolicAudioModel.create(SymbolicAudioModelConfig(vocab_size=40, **kwargs))
    input_ids, mask = token_batch(40, left_padding=True)
    labels = input_ids.masked_fill(mask == 0, -100)
    loss = lit.training_step({"input_ids": input_ids, "attention_mask": mask, "labels": labels}, 0)
    # latents are the last 4 positions (prefix 4); latent i predicts the token at position prefix + i + 1
    logits = lit.backend_model(input_ids, prefix_len=4, pad_mask=mask == 0).logits
    targets = torch.cat([input_ids[:, 5:], torch.full((2, 1), -100)], dim=1)
    torch.testing.assert_close(loss, hand_cross_entropy(logits, targets), atol=1e-6, rtol=0)
    unshifted = hand_cross_entropy(logits, input_ids[:, 4:])
    assert abs(float(unshifted - loss)) > 1e-4
    # without labels, the step derives them from input_ids with padding ignored
    loss_without_labels = lit.training_step({"input_ids": input_ids, "attention_mask": mask}, 0)
    torch.testing.assert_close(loss_without_labels, loss, atol=1e-6, rtol=0)


def test_text_classifier_step():
    config = classifier.TextClassifierConfig(
        encoder=classifier.TextEncoderConfig(**text_encoder()),
        decoder=classifier.ClassificationDecoderConfig(num_classes=3, num_output_query_channels=16, init_scale=0.5),
        num_latents=4,
        num_latent_channels=16,
    )
    lit = classifier.LitTextClassifier.create(config)
    input_ids, mask = token_batch(40)
    labels = torch.tensor([2, 0])
    loss = lit.training_step({"input_ids": input_ids, "attention_mask": mask, "labels": labels}, 0)
    logits = lit.backend_model(input_ids, pad_mask=mask == 0)
    torch.testing.assert_close(loss, hand_cross_entropy(logits, labels), atol=1e-6, rtol=0)
    assert abs(float(hand_cross_entropy(lit.backend_model(input_ids), labels) - loss)) > 1e-4


def test_image_classifier_step():
    config = ic.ImageClassifierConfig(
        encoder=ic.ImageEncoderConfig(image_shape=(6, 6, 3), num_frequency_bands=4, num_self_attention_heads=1,
                                      num_cross_attention_heads=1, num_self_attention_layers_per_block=1),
        decoder=ic.ClassificationDecoderConfig(num_classes=4, num_output_query_channels=16,
                                               num_cross_attention_heads=1),
        num_latents=4,
        num_latent_channels=16,
    )  # fmt: skip
    lit = ic.LitImageClassifier.create(config)
    pixel_values, labels = torch.randn(3, 6, 6, 3), torch.tensor([3, 0, 1])
    for batch in ({"pixel_values": pixel_values, "labels": labels}, (pixel_values, labels)):
        loss = lit.training_step(batch, 0)
        torch.testing.assert_close(loss, hand_cross_entropy(lit.backend_model(pixel_values), labels), atol=1e-6, rtol=0)


def examples(n: int = 64, length: int = 20):
    torch.manual_seed(0)
    return [{"input_ids": torch.randint(10, 200, (length,)).tolist()} for _ in range(n)]


@pytest.mark.parametrize("mask_prob", [0.05, 0.5])
def test_token_masking_collator_mask_prob(mask_prob):
    batch = TokenMaskingCollator(PerceiverTokenizer(), mask_prob=mask_prob)(examples())
    selected = (batch["labels"] != -100).float().mean()
    assert abs(float(selected) - mask_prob) < 0.05


@pytest.mark.parametrize("mask_prob", [0.05, 0.5])
def test_word_masking_collator_mask_prob(mask_prob):
    data = [{**e, "word_ids": [i // 2 for i in range(len(e["input_ids"]))]} for e in examples(128)]
    batch = WordMaskingCollator(PerceiverTokenizer(), mask_prob=mask_prob)(data)
    labeled = batch["labels"] != -100
    assert abs(float(labeled.float().mean()) - mask_prob) < 0.05
    # whole words: both tokens of a word are selected together
    assert torch.equal(labeled[:, 0::2], labeled[:, 1::2])


def test_causal_collator_padding_side_and_truncation():
    data = [{"input_ids": [5, 6, 7]}, {"input_ids": [8, 9, 10, 11, 12]}]
    right = CausalLanguageModelCollator(pad_token_id=0, padding_side="right")(data)
    assert right["input_ids"].tolist() == [[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]]
    assert right["labels"].tolist() == [[5, 6, 7, -100, -100], [8, 9, 10, 11, 12]]
    torch.manual_seed(0)
    lengths = {
        CausalLanguageModelCollator(0, random_truncation=True, random_min_seq_len=2)(data)["input_ids"].shape[1]
        for _ in range(50)
    }
    assert lengths == {2, 3, 4, 5}


def test_rotary_rotates_pairs_counter_clockwise_with_base_10000():
    from perceiver.model.core.position import FrequencyPositionEncoding, RotaryPositionEmbedding

    encoding = FrequencyPositionEncoding(dim=4)
    torch.testing.assert_close(encoding.inv_freq, torch.tensor([1.0, 0.01]))  # 1 / 10000^(2i/dim)
    positions = torch.tensor([[0.0, 1.0, 3.0]])
    rotary = RotaryPositionEmbedding(encoding(positions))
    t = torch.tensor([1.0, 0.0, 1.0, 0.0]).expand(1, 1, 3, 4)  # (b, h, n, c): unit vector of each pair
    rotated = rotary.rotate(t)[0, 0]
    for i, p in enumerate([0.0, 1.0, 3.0]):
        for pair, freq in enumerate([1.0, 0.01]):
            angle = torch.tensor(p * freq)
            # (1, 0) rotated by +angle: (cos, sin)
            torch.testing.assert_close(rotated[i, 2 * pair : 2 * pair + 2], torch.stack([angle.cos(), angle.sin()]))
    # relative positions only: q.k is the same for position pairs (1, 0) and (3, 2)
    q, k = torch.randn(4), torch.randn(4)
    rot = RotaryPositionEmbedding(encoding(torch.arange(4.0)[None]))
    qs, ks = rot.rotate(q.expand(1, 1, 4, 4))[0, 0], rot.rotate(k.expand(1, 1, 4, 4))[0, 0]
    torch.testing.assert_close(qs[1] @ ks[0], qs[3] @ ks[2])


def test_optical_flow_tiles_that_disagree_blend_with_border_distance_weights():
    from perceiver.model.vision.optical_flow.pipeline import blend_tiles

    # two 7x4 tiles at x=0 and x=2 of a 7x6 image, predicting flow 0 and 1; in the middle row (3 pixels from the
    # top and bottom borders) the weights along x are the distances to the left/right borders, [1, 2, 2, 1]
    tiles = np.stack([np.zeros((7, 4, 2)), np.ones((7, 4, 2))]).astype(np.float32)
    blended = blend_tiles(tiles, [(0, 0), (0, 2)], (7, 6))[3:4]
    # x=2: (0 * 2 + 1 * 1) / 3, x=3: (0 * 1 + 1 * 2) / 3
    expected = np.array([0.0, 0.0, 1 / 3, 2 / 3, 1.0, 1.0], dtype=np.float32)
    np.testing.assert_allclose(blended[0, :, 0], expected, atol=1e-6)
    np.testing.assert_allclose(blended[0, :, 1], expected, atol=1e-6)
    # 2-D: the weight is the distance to the nearest border (min over y and x)
    tiles = np.stack([np.zeros((3, 3, 1)), np.full((3, 3, 1), 9.0)]).astype(np.float32)
    blended = blend_tiles(tiles, [(0, 0), (1, 1)], (4, 4))
    # pixel (1, 1): tile 0 local (1, 1) weight 2, tile 1 local (0, 0) weight 1 -> 9 / 3
    assert blended[1, 1, 0] == pytest.approx(3.0)
    # pixel (2, 2): tile 0 local (2, 2) weight 1, tile 1 local (1, 1) weight 2 -> 18 / 3
    assert blended[2, 2, 0] == pytest.approx(6.0)
