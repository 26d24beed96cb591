"""A sharded checkpoint as Lightning's FSDPStrategy(state_dict_type="sharded") writes it, converted into a 🤗 model.

Lightning refuses FSDP on CPU, so the checkpoint is written here by the same steps as the strategy's
`save_checkpoint`, by 2 real FSDP processes (gloo, CPU) with the documented wrap policy and activation checkpointing:
`torch.distributed.checkpoint` files of `{"model": ..., "optimizer_0": ...}` and `meta.pt` with the rest."""

import functools
import os
import pickle
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from transformers import AutoModelForCausalLM

from perceiver.model.core.checkpoint import TASK_KEY, is_sharded_checkpoint
from perceiver.model.core.lightning import load_sharded_checkpoint
from perceiver.model.text import clm

HPARAMS = dict(
    vocab_size=262,
    max_seq_len=12,
    max_latents=4,
    num_channels=16,
    num_heads=2,
    num_self_attention_layers=2,
    cross_attention_dropout=0.0,
    activation_checkpointing=True,
)


def write_sharded_checkpoint(rank: int, store: str, path: str) -> None:
    import torch.distributed as dist
    from lightning.fabric.strategies.fsdp import _distributed_checkpoint_save
    from lightning.fabric.utilities.load import _METADATA_FILENAME
    from torch.distributed.fsdp import FullStateDictConfig, ShardedStateDictConfig, StateDictType
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy

    from perceiver.model.core.attention import CrossAttentionLayer, SelfAttentionLayer
    from perceiver.model.core.loss import token_cross_entropy
    from perceiver.model.core.perceiver_ar import latent_targets

    torch.set_num_threads(1)
    # a file store: no rank serves it (a TCP store dies with rank 0, aborting a rank still tearing down)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        lit_model = clm.LitCausalLanguageModel(**HPARAMS)
        policy = ModuleWrapPolicy({CrossAttentionLayer, SelfAttentionLayer})
        model = FSDP(lit_model, auto_wrap_policy=policy, device_id=torch.device("cpu"), use_orig_params=True)
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
        torch.manual_seed(rank)
        for _ in range(2):  # train, so that the saved weights are not the initialization
            input_ids = torch.randint(0, 262, (2, 12))
            logits = model(input_ids, 8)  # through the FSDP root, which gathers the shards
            loss = token_cross_entropy(logits, latent_targets(input_ids, 4))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        # FSDPStrategy.save_checkpoint with state_dict_type="sharded"
        with FSDP.state_dict_type(model, StateDictType.SHARDED_STATE_DICT, ShardedStateDictConfig(offload_to_cpu=True)):
            checkpoint = {
                "epoch": 0,
                "global_step": 2,
                "state_dict": model.state_dict(),
                "optimizer_states": [FSDP.optim_state_dict(model, optimizer)],
                "hparams_name": "kwargs",
                "hyper_parameters": dict(lit_model.hparams),
            }
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        converted = {"model": checkpoint.pop("state_dict")}
        converted.update({f"optimizer_{i}": s for i, s in enumerate(checkpoint.pop("optimizer_states"))})
        _distributed_checkpoint_save(converted, path)
        if rank == 0:
            torch.save(checkpoint, path / _METADATA_FILENAME)

        # the reference: the full (unsharded) weights
        config = FullStateDictConfig(offload_to_cpu=False, rank0_only=False)  # offloading crashes on CPU
        with FSDP.state_dict_type(model, StateDictType.FULL_STATE_DICT, config):
            full = model.state_dict()
        if rank == 0:
            torch.save(full, path.parent / "full.pt")
        # Both ranks leave together: a rank that tears gloo down while its peer still talks to it can abort
        # ("terminate called without an active exception"), seen under load.
        dist.barrier()
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def sharded_checkpoint(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("fsdp")
    path = directory / "last.ckpt"
    try:
        mp.spawn(functools.partial(write_sharded_checkpoint), args=(str(directory / "store"), str(path)), nprocs=2)
    except mp.ProcessExitedException as e:
        # gloo may abort a process while it is torn down ("terminate called without an active exception"), after
        # every collective is done and the files are written: only that is tolerated
        if e.signal_name != "SIGABRT" or not (directory / "full.pt").is_file():
            raise
    return path


@pytest.mark.slow
def test_sharded_checkpoint_converts(sharded_checkpoint, tmp_path):
    path = sharded_checkpoint
    assert is_sharded_checkpoint(path)
    assert {p.name for p in path.iterdir()} == {".metadata", "meta.pt", "__0_0.distcp", "__1_0.distcp"}

    model = clm.convert_checkpoint(tmp_path / "hf", path, tokenizer_name="perceiver-bytes")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    reference = clm.LitCausalLanguageModel(**HPARAMS)
    full = torch.load(path.parent / "full.pt", weights_only=True)
    reference.load_state_dict(full)
    reference.eval()
    initial = clm.LitCausalLanguageModel(**HPARAMS).state_dict()
    assert any(not torch.equal(full[k], initial[k]) for k in full if k.endswith("weight"))  # trained weights

    for name, value in reference.backend_model.state_dict().items():
        torch.testing.assert_close(model.backend_model.state_dict()[name], value, atol=0, rtol=0, msg=name)
    input_ids = torch.randint(6, 262, (2, 12))
    with torch.no_grad():
        expected = reference(input_ids, 8)
        max_diff = (loaded(input_ids=input_ids).logits[:, -4:] - expected).abs().max().item()
    assert max_diff <= 1e-4
    assert loaded.generate(input_ids[:1, :6], max_new_tokens=3, do_sample=False).shape == (1, 9)


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_sharded_checkpoint_metadata_is_not_unpickled_blindly(tmp_path):
    path = tmp_path / "last.ckpt"
    path.mkdir()
    # meta.pt as this library writes it (with its task), a malicious .metadata beside it
    torch.save({"hyper_parameters": HPARAMS, TASK_KEY: "CausalLanguageModelConfig"}, path / "meta.pt")
    (path / ".metadata").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system|nt.system"):
        load_sharded_checkpoint(clm.LitCausalLanguageModel, path)
    with pytest.raises(ValueError, match="is not a sharded checkpoint directory"):
        load_sharded_checkpoint(clm.LitCausalLanguageModel, tmp_path)


def test_fsdp_recipe_config(capsys):
    """examples/fsdp.yaml (docs/training-examples.md) sets up FSDPStrategy as the test above uses FSDP."""
    import yaml

    from perceiver.scripts.text import clm as clm_script

    examples = Path(__file__).resolve().parents[1] / "examples"
    args = ["fit", "--config", str(examples / "clm_wikitext.yaml"), "--config", str(examples / "fsdp.yaml")]
    with pytest.raises(SystemExit):
        clm_script.main([*args, "--print_config"])
    config = yaml.safe_load(capsys.readouterr().out)
    strategy = config["trainer"]["strategy"]
    assert strategy["class_path"] == "lightning.pytorch.strategies.FSDPStrategy"
    assert sorted(name.rsplit(".", 1)[1] for name in strategy["init_args"]["auto_wrap_policy"]) == [
        "CrossAttentionLayer",
        "SelfAttentionLayer",
    ]
    assert strategy["init_args"]["state_dict_type"] == "sharded"
    assert config["model"]["activation_checkpointing"] is True
