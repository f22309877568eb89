"""Curators end to end on synthetic data with planted noise: scores find it, selectors keep the
budget exactly, coverage covers every item, and curated sets round-trip through disk and the CLI."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from recsift.curators import REASONS, CurationContext, curate, load_curated, save_curation
from recsift.data import leave_one_out, load_split
from recsift.data.synthetic import generate
from recsift.errors import BudgetError, ConfigError, DataFormatError, UnknownNameError
from recsift.train import TrainConfig


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    from scipy.stats import rankdata

    r = rankdata(scores)
    n1 = int(positive.sum())
    n0 = len(positive) - n1
    return float((r[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


@pytest.fixture(scope="module")
def planted():
    """2000 sessions, 10% noisy (items i.i.d. from the clean item frequencies, same lengths), a
    GRU4Rec probe trained 10 epochs with dynamics recorded (shared by the tests of this module)."""
    syn = generate(2000, 400, seed=0)
    split = leave_one_out(syn.interactions)
    ts = split.training_set("sequence")
    ctx = CurationContext(split=split, seed=0,
                          probe_config=TrainConfig(epochs=10, patience=None, lr=3e-3, batch_size=256))
    inputs = ctx.score_inputs(ts, embeddings=True)
    return syn, split, ts, ctx, inputs


# measured on this fixture (2026-11-27): loss .93, loss_mean .92, forgetting .89, el2n .83, aum .88,
# entropy .97, confidence .93 (sample level); session level (mean per session) all >= .98
SEPARATING = ["loss", "loss_mean", "forgetting", "el2n", "aum", "entropy", "confidence"]


@pytest.mark.parametrize("name", SEPARATING)
def test_dynamics_scores_separate_planted_noise(planted, name):
    from recsift.scoring import compute_score, get_score, oriented

    syn, _, ts, _, inputs = planted
    noisy = syn.user_kind[ts.data.user] == 1
    hard = oriented(compute_score(name, inputs), get_score(name).hard)
    assert roc_auc(hard, noisy) >= 0.8
    per_session = np.bincount(ts.data.user, weights=hard) / np.bincount(ts.data.user)
    assert roc_auc(per_session, syn.user_kind == 1) >= 0.95


def test_keeping_the_easiest_half_drops_the_noisy_sessions(planted):
    syn, _, ts, ctx, _ = planted
    user_ctx = replace(ctx, unit="user")
    kept, report = curate(ts, "loss_mean", 0.5, user_ctx, keep="easy")
    noisy_users = np.flatnonzero(syn.user_kind == 1)
    kept_users = np.unique(kept.data.user)
    assert len(kept_users) == 1000  # the budget counts sessions
    assert np.isin(noisy_users, kept_users).mean() < 0.03
    # sample unit: the easiest half by final-model loss keeps < 3% of the noisy samples
    kept_s, rep_s = curate(ts, "loss", 0.5, ctx, keep="easy")
    noisy = syn.user_kind[ts.data.user] == 1
    assert len(kept_s) == len(ts) // 2
    assert noisy[rep_s.kept].sum() / noisy.sum() < 0.03
    assert rep_s.scores is not None and rep_s.score_name == "loss"


def test_random_curator_report_and_provenance(planted):
    _, _, ts, ctx, _ = planted
    kept, rep = curate(ts, "random", 1000, ctx)
    assert len(kept) == 1000 and rep.kept.sum() == 1000
    assert rep.summary()["reasons"] == {REASONS[0]: len(ts) - 1000, REASONS[1]: 1000}
    assert kept.provenance["curator"] == "random" and kept.provenance["budget"] == "1000"
    again, _ = curate(ts, "random", 1000, ctx)
    np.testing.assert_array_equal(kept.data.sample_id, again.data.sample_id)  # seeded


@pytest.mark.parametrize("method,params", [
    ("random", {}), ("el2n", {}), ("ccs", {"beta": 0.1}), ("d2", {"graph": "session"}), ("d2", {"graph": "knn"}),
    ("moderate", {}), ("prototype", {"n_clusters": 20}), ("popularity", {}),
    ("prefix_length", {}),
])
@pytest.mark.parametrize("unit", ["sample", "user"])
def test_every_curator_keeps_exactly_the_budget_with_coverage_first(planted, method, params, unit):
    _, split, ts, ctx, _ = planted
    c = replace(ctx, unit=unit, coverage=True)
    kept, rep = curate(ts, method, 0.3, c, **params)
    n_units = len(ts) if unit == "sample" else len(np.unique(ts.data.user))
    assert rep.extra["kept_units"] == int(0.3 * n_units)
    units_kept = rep.kept.sum() if unit == "sample" else len(np.unique(kept.data.user))
    assert units_kept == int(0.3 * n_units)
    # every training item still appears in the kept data (prefix items or target)
    train_items = np.unique(ts.data.store.items)
    seen = np.concatenate([kept.data.targets, kept.data.prefixes(max_len=50).ravel()])
    assert np.isin(train_items, seen).all()
    assert rep.extra["coverage_units"] > 0
    assert (rep.reason == REASONS.index("kept: item coverage")).any()


@pytest.mark.parametrize("keep", ["head", "tail"])
def test_popularity_curator_keeps_one_end_of_target_popularity(planted, keep):
    _, _, ts, ctx, _ = planted
    targets = ts.data.targets
    pop = np.bincount(targets)[targets]
    kept, rep = curate(ts, "popularity", 0.5, ctx, keep=keep)
    assert len(kept) == len(ts) // 2 and rep.score_name == "target_popularity"
    np.testing.assert_array_equal(rep.scores, pop)
    inside, outside = pop[rep.kept], pop[~rep.kept]
    if keep == "head":
        assert inside.min() >= outside.max()
    else:
        assert inside.max() <= outside.min()
    # the boundary popularity is shared by many samples: those kept among them are a random draw, not
    # the lowest indices
    edge = np.flatnonzero(pop == (inside.min() if keep == "head" else inside.max()))
    n_edge_kept = int(rep.kept[edge].sum())
    assert 0 < n_edge_kept < len(edge)
    assert not rep.kept[edge[:n_edge_kept]].all()
    with pytest.raises(ConfigError, match="keep='middle'"):
        curate(ts, "popularity", 0.5, ctx, keep="middle")


@pytest.mark.parametrize("keep", ["long", "short"])
def test_prefix_length_curator_keeps_one_end_of_the_history_lengths(planted, keep):
    _, split, ts, ctx, _ = planted
    plen = ts.data.prefix_lengths
    _, rep = curate(ts, "prefix_length", 0.4, ctx, keep=keep)
    assert rep.kept.sum() == int(0.4 * len(ts)) and rep.score_name == "prefix_length"
    inside, outside = plen[rep.kept], plen[~rep.kept]
    assert inside.min() >= outside.max() if keep == "long" else inside.max() <= outside.min()
    with pytest.raises(ConfigError, match="needs sequence data"):
        curate(split.training_set("matrix"), "prefix_length", 0.4, ctx)


def test_popularity_curator_on_an_interaction_matrix(planted):
    _, split, _, ctx, _ = planted
    ts = split.training_set("matrix")
    _, items = ts.data.coo_pairs()
    pop = np.bincount(items)[items]
    _, rep = curate(ts, "popularity", 0.25, ctx)
    assert rep.kept.sum() == len(ts) // 4 and pop[rep.kept].min() >= pop[~rep.kept].max()


def test_ccs_cutoff_drops_the_lowest_aum(planted):
    from recsift.scoring import compute_score

    _, _, ts, ctx, inputs = planted
    kept, rep = curate(ts, "ccs", 0.5, ctx, beta=0.2)
    aum = compute_score("aum", inputs)
    cut = rep.reason == REASONS.index("dropped: hard cutoff")
    assert cut.sum() == int(0.2 * len(ts))
    assert aum[cut].max() <= aum[~cut].min()
    assert not (cut & rep.kept).any()
    with pytest.raises(BudgetError, match="beta"):
        curate(ts, "ccs", 0.9, ctx, beta=0.2)


def test_bad_requests_fail_before_any_work(planted):
    _, _, ts, ctx, _ = planted
    for b in (0, -3, 1.5, 10**9):
        with pytest.raises(BudgetError):
            curate(ts, "random", b, ctx)
    with pytest.raises(UnknownNameError, match="Did you mean 'el2n'"):
        curate(ts, "el2m", 0.5, ctx)
    with pytest.raises(ConfigError, match="keep"):
        curate(ts, "el2n", 0.5, ctx, keep="middle")
    with pytest.raises(ConfigError, match="unknown parameter"):
        curate(ts, "random", 0.5, ctx, gamma=1)
    with pytest.raises(ConfigError, match="accepts"):
        curate(ts, "d2", 0.5, ctx, gama=1)
    with pytest.raises(ConfigError, match=r"parameter k=2.5 is invalid: .*integer.*give a value of type int \(default"):
        curate(ts, "d2", 0.5, ctx, k=2.5)
    kept, _ = curate(ts, "ccs", 0.5, ctx, beta=0)  # an int for a float is fine (coerced to 0.0)
    assert len(kept) > 0
    with pytest.raises(ConfigError, match="need the split"):
        curate(ts, "el2n", 0.5, CurationContext())
    with pytest.raises(BudgetError, match="coverage"):
        curate(ts, "random", 5, replace(ctx, coverage=True))


def test_curation_round_trips_through_disk(planted, tmp_path):
    _, split, ts, ctx, _ = planted
    kept, rep = curate(ts, "el2n", 0.4, ctx)
    save_curation(tmp_path / "cur", ts, rep, dataset=split.name, protocol=split.protocol)
    back, meta = load_curated(tmp_path / "cur", split)
    np.testing.assert_array_equal(back.data.sample_id, kept.data.sample_id)
    assert meta["method"] == "score" and meta["kept_samples"] == len(kept)
    with np.load(tmp_path / "cur" / "samples.npz") as z:
        np.testing.assert_allclose(z["score"], rep.scores)
    other = leave_one_out(generate(300, 100, seed=1).interactions)
    with pytest.raises(DataFormatError, match="curate again"):
        load_curated(tmp_path / "cur", other)
    (tmp_path / "half").mkdir()
    with pytest.raises(DataFormatError, match="not a complete curation folder"):
        load_curated(tmp_path / "half", split)


def test_cli_curate_then_train_on_the_curated_set(tmp_path, capsys):
    from recsift.cli import main

    def run(args):
        with pytest.raises(SystemExit) as e:
            main(args)
        cap = capsys.readouterr()
        return e.value.code, cap.out, cap.err

    out = tmp_path / "cur"
    code, o, _ = run(["curate", "-d", "synthetic", "--method", "random", "--budget", "0.25", "--out", str(out),
                      "--json"])
    assert code == 0, o
    summary = json.loads(o)
    code, o, _ = run(["train", "-d", "synthetic", "-m", "pop", "--train-set", str(out), "--json"])
    assert code == 0
    res = json.loads(o)
    assert res["n_train"] == summary["kept_samples"] == res["train_set"]["kept_samples"]
    code, _, err = run(["curate", "-d", "synthetic", "--method", "random", "--budget", "1.5", "--out",
                        str(tmp_path / "bad")])
    assert code == 2 and "out of range" in err and not (tmp_path / "bad").exists()
    code, _, err = run(["train", "-d", "synthetic", "-m", "pop", "--train-set", str(tmp_path / "nothing")])
    assert code == 2 and "not a complete curation folder" in err


@pytest.mark.parametrize("method,params", [("random", {}), ("loss", {}), ("d2", {"score": "loss"})])
def test_budget_in_targets_keeps_whole_users_up_to_the_target_budget(method, params):
    """With the user unit and budget_in='targets', a fraction keeps that fraction of prefix
    samples (training targets), in whole users, short of it by less than one user."""
    split = load_split("synthetic")
    ts = split.training_set()
    ctx = CurationContext(split=split, unit="user", budget_in="targets", seed=0,
                          probe_config=TrainConfig(epochs=1, patience=None, batch_size=2048))
    kept, rep = curate(ts, method, 0.3, ctx, **params)
    budget = int(0.3 * len(ts))
    sizes = np.bincount(ts.data.user)
    assert len(kept) <= budget and budget - len(kept) < sizes.max()
    assert rep.extra["kept_targets"] == len(kept) and rep.extra["budget_in"] == "targets"
    users = np.unique(kept.data.user)
    assert sizes[users].sum() == len(kept)  # whole users only
    units, _ = curate(ts, method, 0.3, CurationContext(split=split, unit="user", seed=0,
                                                       probe_config=ctx.probe_config), **params)
    assert len(np.unique(units.data.user)) == int(0.3 * len(np.unique(ts.data.user)))


def test_budget_in_validation():
    with pytest.raises(ConfigError, match="budget_in"):
        CurationContext(budget_in="items")
    with pytest.raises(ConfigError, match="unit"):
        CurationContext(unit="session")


def test_a_probe_read_from_the_cache_keeps_its_training_seconds(tmp_path):
    from recsift.curators.base import cached_cost_seconds, probe_cost_key

    split = leave_one_out(generate(150, 40, seed=2).interactions)
    ts = split.training_set("sequence")
    mk = lambda: CurationContext(split=split, seed=0, coverage=False, cache_dir=tmp_path,  # noqa: E731
                                 probe_config=TrainConfig(epochs=1, patience=None, batch_size=256))
    first = mk()
    curate(ts, "el2n", 0.5, first)
    entry = first._memo[probe_cost_key(first.probe_key(ts))]
    assert entry["seconds"] > 0 and entry["cached"] is False
    assert cached_cost_seconds(first) == 0  # trained here: already in this curation's wall time
    second = mk()
    curate(ts, "d2", 0.5, second, score="el2n")  # same probe, read back from tmp_path
    again = second._memo[probe_cost_key(second.probe_key(ts))]
    assert again == {"seconds": entry["seconds"], "cached": True}
    assert cached_cost_seconds(second) == entry["seconds"]


def test_probe_key_ignores_only_the_neutral_training_fields():
    """Progress bars and the evaluation chunk size never change a probe: its cache key ignores
    them (a run with --progress reuses the probe of one without), but not any other field."""
    split = leave_one_out(generate(60, 20, seed=1).interactions)
    ts = split.training_set("sequence")
    base = TrainConfig(epochs=1, patience=None)
    key = lambda cfg: CurationContext(split=split, seed=0, probe_config=cfg).probe_key(ts)  # noqa: E731
    assert TrainConfig.NEUTRAL == {"progress", "eval_batch_size"}
    assert key(base.model_copy(update={"progress": True, "eval_batch_size": 7})) == key(base)
    for change in ({"epochs": 2}, {"pack": False}, {"batch_size": 128}):
        assert key(base.model_copy(update=change)) != key(base), change
