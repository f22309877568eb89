"""Every staged dataset loads with the counts of ../shared/datasets/stats.json (skips without data)."""
from __future__ import annotations

import json

import pytest

from recsift.data import dataset_info, list_datasets, load_split

pytestmark = pytest.mark.dataset
STAGED = ["beauty", "toys", "lastfm", "video", "ml-1m", "magazine", "ml-100k", "yoochoose-100k", "diginetica-sample"]


def test_registry_has_every_staged_dataset():
    assert set(STAGED) | {"synthetic"} == set(list_datasets())


@pytest.mark.parametrize("name", STAGED)
def test_raw_counts_match_stats_json(name, data_dir):
    stats = json.loads((data_dir / "stats.json").read_text())[name]
    info = dataset_info(name, data_dir=data_dir, with_split=False)
    assert (info["n_users"], info["n_items"], info["n_interactions"]) == (
        stats["users"], stats["items"], stats["interactions"])
    assert info["timestamps"] == stats["timestamps"]
    assert info["avg_len"] == pytest.approx(stats["avg_len"], abs=0.01)


def test_ml1m_index_split_counts(data_dir):
    s = load_split("ml-1m", data_dir=data_dir)
    stats = json.loads((data_dir / "stats.json").read_text())["ml-1m"]["split_index_counts"]
    assert (len(s.train), len(s.valid.tgt_items), len(s.test.tgt_items)) == (stats["train"], stats["val"], stats["test"])
    assert s.mask_history


def test_ratio_split_reproduces_the_shipped_ml1m_counts(data_dir):
    """Same rule as the original preprocess.py: identical per-user sizes to the shipped index."""
    s = load_split("ml-1m", data_dir=data_dir, split="ratio", seed=0)
    assert (len(s.train), len(s.valid.tgt_items), len(s.test.tgt_items)) == (791_718, 99_692, 108_799)


def test_magazine_filtered_counts(data_dir):
    s = load_split("magazine", data_dir=data_dir)
    stats = json.loads((data_dir / "stats.json").read_text())["magazine"]["after_index_filter"]
    assert (s.n_users, s.n_items) == (stats["users"], stats["items"])
    assert (len(s.train), s.info["valid_rows"], s.info["test_rows"]) == (stats["train"], stats["val"], stats["test"])
    assert len(s.valid) == 411  # users with a validation item
    # 124 test rows repeat a (user, item) pair already in that user's test rows: one target each
    assert len(s.test.tgt_items) == stats["test"] - 124


def test_yoochoose_given_files(data_dir):
    s = load_split("yoochoose-100k", data_dir=data_dir)
    parts = json.loads((data_dir / "stats.json").read_text())["yoochoose-100k"]["parts"]
    assert len(s.train) == parts["train_tr"]["rows"]
    assert s.info["train_sessions"] == parts["train_tr"]["sessions"]
    # every prefix of a test session is a test case
    assert len(s.test) == parts["test"]["rows"] - parts["test"]["sessions"]
    assert len(s.valid) == parts["train_valid"]["rows"] - parts["train_valid"]["sessions"]


def test_beauty_leave_one_out(data_dir):
    s = load_split("beauty", data_dir=data_dir)
    assert len(s.test) == len(s.valid) == 22_363
    assert len(s.train) == 198_502 - 2 * 22_363
    assert len(s.training_set()) == len(s.train) - 22_363  # one sample per item after the first
