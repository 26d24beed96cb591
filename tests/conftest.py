import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "perceiver-io-0.11"


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        raise FileNotFoundError(f"fixtures of perceiver-io 0.11 expected in {FIXTURES} (shared/ beside the checkout)")
    return FIXTURES


@pytest.fixture
def one_thread():
    """Tiny models: thread synchronization costs more than it saves, worst on a CPU shared with other processes."""
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(num_threads)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pydoc_text(num_chars: int = 20000) -> str:
    """English text that ships with Python (the pydoc topics), for tests that need real text."""
    from pydoc_data.topics import topics

    return "\n".join(topics[key] for key in sorted(topics))[:num_chars]
