"""EASE: closed form against a direct computation; λ on validation; trains on distilled users."""
import numpy as np
import pytest

from recsift.data import InteractionMatrix, TrainingSet, load_split
from recsift.data.cases import EvalCases
from recsift.errors import ConfigError
from recsift.models.ease import EASE


def test_closed_form_matches_the_paper_formula():
    rng = np.random.default_rng(0)
    u, i = np.nonzero(rng.random((40, 12)) < 0.3)
    ts = TrainingSet(InteractionMatrix.from_pairs(u, i + 1, 40, 12))
    m = EASE(lam=3.0).fit(ts)
    x = np.zeros((40, 12))
    x[u, i] = 1
    p = np.linalg.inv(x.T @ x + 3.0 * np.eye(12))
    b = np.eye(12) - p / np.diag(p)[None, :]  # B = I − P diag(1/diag P)
    assert np.allclose(m.B_.numpy()[1:, 1:], b, atol=1e-5)
    assert np.allclose(np.diag(m.B_.numpy()), 0)
    cases = EvalCases.from_lists([0], [[1, 3]], [[5]], n_items=12)
    assert np.allclose(m.score(cases)[0, 1:], b[0] + b[2], atol=1e-5)


def test_lambda_on_validation_and_distilled_training():
    split = load_split("synthetic", split="ratio")
    full = split.training_set("matrix")
    m = EASE(lambdas=(1.0, 50.0)).fit(full, split.valid)
    assert set(m.valid_metrics_) == {1.0, 50.0} and m.lam_ == max(m.valid_metrics_, key=m.valid_metrics_.get)
    from recsift.curators import CurationContext, curate
    from recsift.evaluate import evaluate

    pop = np.bincount(split.train.item, minlength=split.n_items + 1).astype(np.float32)
    base = evaluate(lambda b: np.tile(pop, (len(b), 1)), split.test, ["ndcg@10"], mask_history=True).means["ndcg@10"]
    distilled, _ = curate(full, "distill_cf", 20, CurationContext(split=split), steps=2)
    on_distilled = EASE(lambdas=(1.0, 50.0)).fit(distilled, split.valid)
    value = evaluate(on_distilled.score, split.test, ["ndcg@10"], mask_history=True).means["ndcg@10"]
    assert value > base  # 20 synthetic users teach EASE more than popularity


def test_bad_input():
    with pytest.raises(ConfigError, match="lam"):
        EASE(lam=0)
    seq = load_split("synthetic").training_set("sequence")  # prefix samples count as user x target
    assert EASE(lam=1).fit(seq).B_.shape[0] == seq.data.store.n_items + 1
