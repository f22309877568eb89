"""CF models and their trainer: negatives, learning, weights, CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from recsift.cli import main
from recsift.data import Interactions, ratio_split
from recsift.train import TrainConfig, train_model
from recsift.train.cf import sample_negatives


def test_negatives_avoid_positives():
    rng = np.random.default_rng(0)
    users = np.array([0, 0, 1, 1])
    items = np.array([1, 2, 3, 4])
    keys = np.sort(users * 6 + items)
    neg = sample_negatives(np.repeat([0, 1], 500), 3, 5, keys, rng)
    assert neg.shape == (1000, 3)
    assert not np.isin(neg[:500], [1, 2]).any() and not np.isin(neg[500:], [3, 4]).any()
    assert neg.min() >= 1 and neg.max() <= 5


def _blocks(seed=0):
    """Two user groups, each liking its own block of items: easy to learn for any CF model."""
    rng = np.random.default_rng(seed)
    u, i = [], []
    for user in range(120):
        block = np.arange(1, 21) if user % 2 else np.arange(21, 41)
        picks = rng.choice(block, 10, replace=False)
        u += [user] * 10
        i += picks.tolist()
    return ratio_split(Interactions.from_raw(np.array(u), np.array(i)), seed=seed)


@pytest.mark.parametrize("model,lr", [("bpr", 0.05), ("neumf", 0.01)])
def test_cf_models_learn_the_blocks(model, lr):
    split = _blocks()
    res = train_model(split, model, TrainConfig(epochs=30, batch_size=256, lr=lr, seed=0, patience=None,
                                                metrics=("recall_norm@10",), valid_metric="recall_norm@10"))
    # a random ranking over 40 items would get about 0.25; the right block gets close to 1
    assert res.test["recall_norm@10"] > 0.8
    assert res.layout == "pairs" and res.n_train == len(split.train)


def test_cf_scores_all_items_with_padding_column():
    split = _blocks()
    res = train_model(split, "neumf", TrainConfig(epochs=1, seed=0))
    s = res.model.score_users(torch.arange(5))
    assert s.shape == (5, split.n_items + 1)


def test_baseline_through_train_model():
    split = _blocks()
    res = train_model(split, "itemknn", TrainConfig(metrics=("recall_norm@10",), valid_metric="recall_norm@10"))
    assert res.test["recall_norm@10"] > 0.8 and res.layout == "fit"


def test_cli_train_json(tmp_path, capsys, fixtures):
    with pytest.raises(SystemExit) as e:
        main(["train", "-d", str(fixtures / "seqlines" / "seq.txt"), "-m", "pop", "--json", "--out", str(tmp_path)])
    assert e.value.code == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("test", "best_epoch", "train_seconds_per_epoch", "peak_rss_mb"):
        assert key in out
    assert (tmp_path / "result.json").exists()


def test_cli_train_rejects_bad_config(capsys, fixtures):
    with pytest.raises(SystemExit) as e:
        main(["train", "-d", str(fixtures / "seqlines" / "seq.txt"), "-m", "bpr", "--lr", "-1"])
    assert e.value.code == 2
    assert "lr" in capsys.readouterr().err


def test_cli_train_checkpoint_is_removed_after_the_run_and_a_bad_one_is_refused(tmp_path, capsys, fixtures):
    data = str(fixtures / "seqlines" / "seq.txt")
    ckpt = tmp_path / "bpr.ckpt"
    with pytest.raises(SystemExit) as e:
        main(["train", "-d", data, "-m", "bpr", "--epochs", "2", "--checkpoint", str(ckpt), "--json"])
    assert e.value.code == 0 and not ckpt.exists()
    capsys.readouterr()
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit) as e:
        main(["train", "-d", data, "-m", "bpr", "--epochs", "2", "--checkpoint", str(ckpt)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert str(ckpt) in err and "delete it" in err and "Traceback" not in err
