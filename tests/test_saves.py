"""Saves are all or nothing: stale files, user files, leftovers of killed saves, SIGKILL at many points of a save,
model cards and push_to_hub (the hub upload is mocked: it needs the network)."""

import os
import random
import signal
import sys
import time
from pathlib import Path

import huggingface_hub
import pytest
import torch
from transformers import PerceiverConfig, PerceiverForMaskedLM, PerceiverTokenizer

from perceiver.model.core import saving
from perceiver.model.text import mlm

INPUT_IDS = torch.tensor([[5, 9, 33, 70, 2, 8]])


def tiny_model(seed: int) -> mlm.PerceiverMaskedLanguageModel:
    torch.manual_seed(seed)
    config = mlm.MaskedLanguageModelConfig(
        encoder=mlm.TextEncoderConfig(
            vocab_size=262, max_seq_len=16, num_input_channels=16, num_self_attention_layers_per_block=1
        ),
        decoder=mlm.TextDecoderConfig(vocab_size=262, max_seq_len=16),
        num_latents=4,
        num_latent_channels=16,
    )
    return mlm.PerceiverMaskedLanguageModel(mlm.PerceiverMaskedLanguageModelConfig(config)).eval()


def snapshot(path: Path) -> dict:
    """Every file below `path` (relative name -> bytes)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def logits(path: Path) -> torch.Tensor:
    with torch.no_grad():
        return mlm.PerceiverMaskedLanguageModel.from_pretrained(path)(INPUT_IDS).logits


def save_old(model, path: Path) -> None:
    model.save_pretrained(path)


def save_new(model, path: Path) -> None:
    # sharded: a file set different from the old model's single model.safetensors
    model.save_pretrained(path, max_shard_size="20KB")


def add_user_files(path: Path) -> None:
    (path / "notes.txt").write_text("my notes")
    (path / "runs").mkdir()
    (path / "runs" / "log.txt").write_text("my log")


@pytest.fixture
def references(tmp_path):
    """Directories holding exactly the old and exactly the new model (plus the user's files)."""
    old, new = tiny_model(0), tiny_model(1)
    refs = {}
    for name, model, save in [("old", old, save_old), ("new", new, save_new)]:
        path = tmp_path / f"ref-{name}"
        path.mkdir()
        add_user_files(path)
        save(model, path)
        refs[name] = (snapshot(path), logits(path))
    assert len(refs["old"][0]) != len(refs["new"][0])
    return old, new, refs


def check_old_or_new(path: Path, refs: dict) -> str:
    files = snapshot(path)
    matches = [name for name, (ref_files, _) in refs.items() if files == ref_files]
    assert len(matches) == 1, f"{path} holds neither the old nor the new model exactly: {sorted(files)}"
    assert torch.allclose(logits(path), refs[matches[0]][1], atol=0, rtol=0)
    return matches[0]


def test_sharded_save_over_single_file_removes_stale_weights_and_keeps_user_files(tmp_path, references):
    old, new, refs = references
    path = tmp_path / "model"
    path.mkdir()
    add_user_files(path)
    save_old(old, path)
    assert (path / "model.safetensors").is_file()
    save_new(new, path)
    assert not (path / "model.safetensors").exists()
    assert check_old_or_new(path, refs) == "new"
    # and back: single-file weights over shards
    save_old(old, path)
    assert not list(path.glob("model-*-of-*.safetensors")) and not (path / "model.safetensors.index.json").exists()
    assert check_old_or_new(path, refs) == "old"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_save_over_a_model_of_another_tool_replaces_its_files(tmp_path):
    # a folder without our manifest (e.g. saved by transformers or perceiver-io 0.11): known model files are replaced
    path = tmp_path / "model"
    source = PerceiverForMaskedLM(PerceiverConfig(num_latents=4, d_latents=16, d_model=16, num_blocks=1,
                                                  num_self_attends_per_block=1, vocab_size=262,
                                                  max_position_embeddings=16))  # fmt: skip
    source.save_pretrained(path, max_shard_size="20KB")
    PerceiverTokenizer().save_pretrained(path)
    (path / "keep.md").write_text("mine")
    tiny_model(0).save_pretrained(path)
    names = {p.name for p in path.iterdir()}
    assert names == {"config.json", "model.safetensors", "README.md", "keep.md", saving.MANIFEST_NAME}


def test_failed_save_changes_nothing(tmp_path, references, monkeypatch):
    old, new, refs = references
    path = tmp_path / "model"
    path.mkdir()
    add_user_files(path)
    save_old(old, path)

    import transformers.modeling_utils

    real_save_file, written = transformers.modeling_utils.safe_save_file, []

    def fail_at_second_shard(tensors, filename, **kwargs):
        if written:
            raise OSError("disk full")
        written.append(filename)
        real_save_file(tensors, filename, **kwargs)

    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", fail_at_second_shard)
    with pytest.raises(OSError, match="disk full"):
        save_new(new, path)
    assert check_old_or_new(path, refs) == "old"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_leftovers_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "model"
    dead_pid = _dead_pid()
    leftover = tmp_path / f".model{saving.SAVE_MARK}{dead_pid}-abc123"
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"partial")
    other = tmp_path / ".unrelated"  # not ours: kept
    other.mkdir()
    tiny_model(0).save_pretrained(path)
    assert not leftover.exists() and other.exists()


def test_a_file_as_save_directory_is_refused(tmp_path):
    (tmp_path / "model").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        tiny_model(0).save_pretrained(tmp_path / "model")


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _in_child() -> None:
    """Set-up of a forked child that may be killed: no progress bars. tqdm's write lock is a multiprocessing lock that
    the child shares with the parent across fork; a child killed while holding it (transformers shows progress bars
    while saving and loading) would leave the parent waiting for it forever."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils.logging import disable_progress_bar

    torch.set_num_threads(1)
    disable_progress_bar()
    disable_progress_bars()


def _run_child(fn) -> int:
    """Runs `fn` in a forked child; returns the signal that ended it (0 if it exited)."""
    pid = os.fork()
    if pid == 0:
        try:
            _in_child()
            fn()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_sigkill_at_every_kind_of_point_of_a_save_leaves_old_or_new_model(tmp_path, references):
    """Instrumented kill points: the child kills itself with SIGKILL at the k-th function call of a save (k spread
    over the whole save, from the first temporary file to the removal of the old directory)."""
    old, new, refs = references
    path = tmp_path / "model"
    path.mkdir()
    add_user_files(path)

    def save_counting_calls(kill_at=None):
        counter = [0]

        def profile(frame, event, arg):
            if event in ("call", "c_call"):
                counter[0] += 1
                if kill_at is not None and counter[0] >= kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)

        sys.setprofile(profile)
        try:
            save_new(new, path)
        finally:
            sys.setprofile(None)
        return counter[0]

    save_old(old, path)
    # the number of calls of a complete save (measured in a child, so that the parent's state stays as it is)
    count_file = tmp_path / "count"
    assert _run_child(lambda: count_file.write_text(str(save_counting_calls()))) == 0
    total = int(count_file.read_text())
    shutil_rmtree(path)
    path.mkdir()
    add_user_files(path)
    save_old(old, path)

    seen = set()
    kill_points = sorted({max(1, int(total * i / 16)) for i in range(16)} | {total - i for i in range(0, 400, 50)})
    for k in kill_points:
        assert _run_child(lambda k=k: save_counting_calls(kill_at=k)) == signal.SIGKILL
        result = check_old_or_new(path, refs)
        seen.add(result)
        saving.remove_leftovers(path)  # as the next save would: each kill point starts from the same state
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]
        if result == "new":  # back to the old model for the next kill point (also cleans the leftovers)
            save_old(old, path)
            assert check_old_or_new(path, refs) == "old"
    assert seen == {"old", "new"}
    save_old(old, path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_sigkill_after_random_delays_of_saves_in_a_loop_leaves_old_or_new_model(tmp_path, references):
    old, new, refs = references
    path = tmp_path / "model"
    path.mkdir()
    add_user_files(path)
    save_old(old, path)
    rng = random.Random(0)
    seen = set()
    for _ in range(12):
        pid = os.fork()
        if pid == 0:
            try:
                _in_child()
                while True:
                    save_new(new, path)
                    save_old(old, path)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 0.6))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        seen.add(check_old_or_new(path, refs))
    assert seen  # which of the two depends on timing; both are correct
    save_old(old, path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]


def shutil_rmtree(path):
    import shutil

    shutil.rmtree(path)


def test_model_card_is_written_unless_the_user_has_one(tmp_path):
    path = tmp_path / "model"
    tiny_model(0).save_pretrained(path)
    card = (path / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: perceiver-io\npipeline_tag: fill-mask\n")
    assert "PerceiverMaskedLanguageModel" in card and '"num_latents": 4' in card
    # a generated card is rewritten by the next save, a user's card is kept
    tiny_model(1).save_pretrained(path)
    assert (path / "README.md").read_text() == card
    (path / "README.md").write_text("# my card")
    tiny_model(1).save_pretrained(path)
    assert (path / "README.md").read_text() == "# my card"


def save_source(path: Path) -> None:
    config = dict(num_latents=4, d_latents=16, d_model=16, num_blocks=1, num_self_attends_per_block=1, vocab_size=262)
    source = PerceiverConfig(max_position_embeddings=16, architectures=["PerceiverForMaskedLM"], **config)
    PerceiverForMaskedLM(source).save_pretrained(path)


def test_convert_model_card_names_the_source_model(tmp_path):
    save_source(tmp_path / "source")
    mlm.convert_model(tmp_path / "converted", source_repo_id=str(tmp_path / "source"))
    card = (tmp_path / "converted" / "README.md").read_text()
    assert "pipeline_tag: fill-mask" in card and "Converted from a transformers Perceiver model" in card
    assert "base_model" not in card  # a local directory is no hub model
    from perceiver.model.core.huggingface import source_details

    assert source_details("deepmind/language-perceiver")["base_model"] == "deepmind/language-perceiver"


@pytest.fixture
def mocked_hub(monkeypatch):
    """The hub's repo creation and commit (they need the network), recording what would be uploaded."""
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = repo_id
        full_id = repo_id if "/" in repo_id else f"user/{repo_id}"  # the hub adds the user's namespace
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{full_id}")

    def create_commit(self, repo_id, operations, **kwargs):
        calls["repo_id"] = repo_id
        calls["files"] = sorted(op.path_in_repo for op in operations)
        calls["local"] = sorted(str(op.path_or_fileobj) for op in operations)
        calls["commit_message"] = kwargs.get("commit_message")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", create_commit)
    return calls


def test_save_pretrained_pushes_to_the_named_repo_from_the_final_folder(tmp_path, mocked_hub):
    path = tmp_path / "my-mlm"
    path.mkdir()
    (path / "notes.txt").write_text("private")
    tiny_model(0).save_pretrained(path, push_to_hub=True, commit_message="first")
    assert mocked_hub["create_repo"] == "my-mlm" and mocked_hub["repo_id"] == "user/my-mlm"
    assert mocked_hub["files"] == ["README.md", "config.json", "model.safetensors"]
    assert all(Path(f).parent == path for f in mocked_hub["local"])
    assert mocked_hub["commit_message"] == "first"
    tiny_model(0).save_pretrained(path, push_to_hub=True, repo_id="someone/other")
    assert mocked_hub["create_repo"] == "someone/other"


def test_convert_pushes_model_and_tokenizer_to_the_named_repo(tmp_path, mocked_hub):
    save_source(tmp_path / "source")
    mlm.convert_model(tmp_path / "out", source_repo_id=str(tmp_path / "source"), push_to_hub=True, repo_id="me/mlm")
    assert mocked_hub["create_repo"] == "me/mlm"
    assert {"config.json", "model.safetensors", "README.md", "tokenizer_config.json"} <= set(mocked_hub["files"])
    assert all(Path(f).parent == tmp_path / "out" for f in mocked_hub["local"])
