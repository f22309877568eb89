"""Shared fixtures. Tests that need staged datasets use `data_dir` and skip when it is absent."""
from __future__ import annotations

import os
from pathlib import Path

# Tiny test models run fastest on one thread, and oversubscribed cores (CI runs other work
# beside the tests) make multi-threaded small ops orders of magnitude slower.
os.environ.setdefault("RECSIFT_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ["RECSIFT_THREADS"]))

import pytest

FIXTURES = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = os.environ.get("RECSIFT_DATA_DIR")
    if not root or not Path(root).is_dir():
        pytest.skip("staged datasets not available (set RECSIFT_DATA_DIR)")
    return Path(root)


@pytest.fixture()
def fixtures() -> Path:
    return FIXTURES
