"""Scores: worked examples from hand-built dynamics, registry behaviour, and sample outputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from recsift.errors import ConfigError, UnknownNameError
from recsift.scoring import ScoreInputs, compute_score, get_score, list_scores, oriented, rank_normalise
from recsift.train import DynamicsRecorder


def _three_epochs() -> DynamicsRecorder:
    """3 samples, 3 items, 3 epochs of hand-set logits (target item 1 for every sample).

    sample 0: learned from epoch 0 and kept    (R R R)
    sample 1: learned, forgotten, relearned    (R W R)  -> 1 forgetting event
    sample 2: never learned                    (W W W)
    With top_k = 1 "correct" means the target has the largest logit.
    """
    rec = DynamicsRecorder(3, top_k=1, early_epochs=2)
    R = [0.0, 2.0, 0.0, 0.0]  # column 0 is padding; target (item 1) wins
    W = [0.0, 0.0, 2.0, 0.0]  # item 2 wins
    for e, rows in enumerate([(R, R, W), (R, W, W), (R, R, W)]):
        rec.update(e, torch.arange(3), torch.tensor(rows), torch.tensor([1, 1, 1]))
        rec.end_epoch()
    return rec


def _softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def test_dynamics_scores_match_hand_computation():
    rec = _three_epochs()
    inp = ScoreInputs.from_recorder(rec)
    pr, pw = _softmax([2, 0, 0]), _softmax([0, 2, 0])  # probabilities when right / wrong (target = index 0)
    e_r, e_w = np.linalg.norm(pr - [1, 0, 0]), np.linalg.norm(pw - [1, 0, 0])
    np.testing.assert_allclose(compute_score("forgetting", inp), [0, 1, 4])  # never learned -> epochs + 1
    np.testing.assert_allclose(compute_score("forgetting", inp, never_learned="zero"), [0, 1, 0])
    np.testing.assert_allclose(compute_score("correctness", inp), [3, 2, 0])
    np.testing.assert_allclose(compute_score("el2n", inp), [2 * e_r, e_r + e_w, 2 * e_w], rtol=1e-5)  # first 2 epochs
    np.testing.assert_allclose(compute_score("el2n", inp, window="all"), [3 * e_r, 2 * e_r + e_w, 3 * e_w], rtol=1e-5)
    np.testing.assert_allclose(compute_score("aum", inp), [2.0, (2 + 2 - 2) / 3, -2.0], rtol=1e-5)  # logit margins
    m_r, m_w = pr[0] - pr[1], pw[0] - pw[1]
    np.testing.assert_allclose(compute_score("aum", inp, on="prob"), [m_r, (2 * m_r + m_w) / 3, m_w], rtol=1e-5)
    py = np.array([[pr[0]] * 3, [pr[0], pw[0], pr[0]], [pw[0]] * 3])
    np.testing.assert_allclose(compute_score("confidence", inp), py.mean(1), rtol=1e-5)
    np.testing.assert_allclose(compute_score("variance", inp), py.std(1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(compute_score("loss_mean", inp), (-np.log(py)).mean(1), rtol=1e-5)
    np.testing.assert_allclose(compute_score("loss_variance", inp), (-np.log(py)).var(1), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(compute_score("loss_last", inp), -np.log(py[:, -1]), rtol=1e-5)


def test_every_score_is_registered_with_a_direction_and_orientation_flips_low_scores():
    names = set(list_scores())
    assert {"loss", "loss_mean", "loss_last", "el2n", "grand", "forgetting", "aum", "entropy", "margin", "variance",
            "loss_variance", "moderate", "prototype"} <= names
    assert get_score("aum").hard == "low" and get_score("el2n").hard == "high"
    np.testing.assert_array_equal(oriented(np.array([1.0, -2.0]), "low"), [-1.0, 2.0])
    r = rank_normalise(np.array([0.3, -1.0, 5.0]), "low")  # lowest AUM = hardest = 1
    np.testing.assert_allclose(r, [2 / 3, 1.0, 1 / 3])
    assert r.min() > 0


def test_registry_errors_name_the_fix():
    with pytest.raises(UnknownNameError, match="Did you mean 'el2n'"):
        get_score("el2m")
    with pytest.raises(ConfigError, match="needs dynamics"):
        compute_score("el2n", ScoreInputs())
    with pytest.raises(ConfigError, match="needs embeddings"):
        compute_score("prototype", ScoreInputs())
    bad = {"loss": np.array([0.1, np.nan])}
    with pytest.raises(ConfigError, match="non-finite"):
        compute_score("loss", ScoreInputs(outputs=bad))
    with pytest.raises(ConfigError, match="snapshot_epochs"):
        compute_score("el2n", ScoreInputs.from_recorder(_three_epochs()), window=5)


def test_sample_outputs_are_the_eval_mode_values_of_the_model():
    from recsift.data import SequenceSamples, SequenceStore, TrainingSet
    from recsift.models import build_model
    from recsift.train import TrainConfig, sample_outputs

    torch.manual_seed(0)
    store = SequenceStore.from_lists([[1, 2, 3, 4], [2, 3, 1], [4, 1, 2, 3, 2]], n_items=4)
    ts = TrainingSet(SequenceSamples.all_prefixes(store))
    model = build_model("gru4rec", n_items=4, max_len=50)
    out = sample_outputs(model, ts, TrainConfig(batch_size=3), embeddings=True)
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        seq = torch.from_numpy(ts.data.prefixes(max_len=50, pad_left=False))
        lengths = torch.from_numpy(ts.data.prefix_lengths)
        h = model(seq[:, : int(lengths.max())], lengths)
        logp = torch.log_softmax(model.logits(h)[:, 1:], 1).numpy()
    y = ts.data.targets - 1
    np.testing.assert_allclose(out["loss"], -logp[np.arange(len(y)), y], rtol=1e-4)
    np.testing.assert_allclose(out["embedding"], h.numpy(), rtol=1e-4, atol=1e-6)
    p = np.exp(logp)
    np.testing.assert_allclose(out["entropy"], -(p * logp).sum(1), rtol=1e-4)
    ranks = (logp > logp[np.arange(len(y)), y][:, None]).sum(1)
    np.testing.assert_array_equal(out["rank"], ranks)
