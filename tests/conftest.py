"""Shared fixtures. Tests that need staged datasets use `data_dir` and skip when it is absent."""
from __future__ import annotations

import os
from pathlib import Path

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
