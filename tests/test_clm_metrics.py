"""Validation metrics of the causal LM wrapper, computed by a real Lightning Trainer."""

import lightning.pytorch as pl
import pytest
import torch

from perceiver.model.text.clm import LitCausalLanguageModel


def tiny_model() -> LitCausalLanguageModel:
    torch.manual_seed(0)
    return LitCausalLanguageModel(
        vocab_size=32, max_seq_len=12, max_latents=4, num_channels=16, num_heads=2, num_self_attention_layers=1
    )


def loader(batches):
    return torch.utils.data.DataLoader(batches, batch_size=None)


def test_validation_perplexity_is_exp_of_mean_loss():
    model = tiny_model()
    with torch.no_grad():
        model.backend_model.output_adapter.bias[7] += 4.0  # token 7 is likely: batches of 7s have a low loss
    generator = torch.Generator().manual_seed(1)
    # batches of unequal loss (random vs. constant tokens) and unequal size
    batches = [
        {"input_ids": torch.randint(0, 32, (3, 12), generator=generator)},
        {"input_ids": torch.full((1, 12), 7)},
        {"input_ids": torch.randint(0, 8, (2, 12), generator=generator)},
    ]
    model.eval()
    with torch.no_grad():
        losses = torch.stack([model._step(batch)["loss"] for batch in batches])
    sizes = torch.tensor([3.0, 1.0, 2.0])
    mean_loss = (losses * sizes).sum() / sizes.sum()
    assert losses.max() - losses.min() > 0.1  # the batches' losses differ, so the two definitions differ

    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    (results,) = trainer.validate(model, dataloaders=loader(batches), verbose=False)
    assert results["val_loss"] == pytest.approx(mean_loss.item(), abs=1e-5)
    assert results["val_ppl"] == pytest.approx(torch.exp(mean_loss).item(), rel=1e-5)
    mean_of_exp = ((torch.exp(losses) * sizes).sum() / sizes.sum()).item()
    assert abs(results["val_ppl"] - mean_of_exp) > 1e-3

    # the metric starts afresh each epoch
    (again,) = trainer.validate(model, dataloaders=loader(batches[1:2]), verbose=False)
    assert again["val_ppl"] == pytest.approx(torch.exp(losses[1]).item(), rel=1e-5)
    (test,) = trainer.test(model, dataloaders=loader(batches), verbose=False)
    assert test["test_ppl"] == pytest.approx(torch.exp(mean_loss).item(), rel=1e-5)
