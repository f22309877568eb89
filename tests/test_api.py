"""The top-level Python API reads like the CLI: load -> curate -> train (-> report)."""
import numpy as np
import pytest

import recsift


def test_api_round_trip_on_synthetic():
    ds = recsift.load("synthetic")
    kept, report = recsift.curate(ds, "random", budget=0.5, seed=1)
    full = ds.training_set()
    assert len(kept) == len(full) // 2 and report.kept.sum() == len(kept)
    res = recsift.train(ds, "pop", train_set=kept)
    ref = recsift.train(ds, "pop")
    assert 0 < res.test["recall@10"] <= 1 and 0 < ref.test["recall@10"] <= 1
    from recsift.train import TrainConfig  # the package still imports as a package

    assert TrainConfig().epochs > 0


def test_api_picks_the_matrix_for_cf_curators():
    ds = recsift.load("synthetic", split="ratio")
    out, rep = recsift.curate(ds, "distill_cf", 10, steps=1)
    assert out.kind == "matrix" and out.data.n_users == 10 and rep.extra["regenerated"]


def test_load_csv_names_columns(tmp_path):
    rows = ["who,what,when"] + [f"u{u},i{(u * 7 + t) % 13},{t}" for u in range(30) for t in range(6)]
    (tmp_path / "clicks.csv").write_text("\n".join(rows) + "\n")
    ds = recsift.load_csv(tmp_path / "clicks.csv", user="who", item="what", time="when")
    assert ds.n_users == 30 and len(ds.test) == 30
    with pytest.raises(recsift.errors.RecsiftError, match="nope"):
        recsift.load_csv(tmp_path / "clicks.csv", user="nope", item="what")


def test_all_names_resolve():
    for name in recsift.__all__:
        assert getattr(recsift, name) is not None
    assert np.isin(["load", "curate", "train"], recsift.__all__).all()


def test_report_is_callable_and_names_a_missing_runs_dir(tmp_path):
    from recsift.report import RunsDirError

    with pytest.raises(RunsDirError, match="recsift run"):
        recsift.report(tmp_path / "nope")


def test_api_train_rejects_a_foreign_training_set_and_bad_config_in_one_message():
    from recsift.data import leave_one_out
    from recsift.data.synthetic import generate
    from recsift.errors import ConfigError

    ds = recsift.load("synthetic")
    other = leave_one_out(generate(n_users=300, n_items=ds.n_items + 7, seed=1).interactions)  # another item id space
    foreign = other.training_set("sequence")
    for model in ("gru4rec", "pop"):  # a torch model and a fitted baseline
        with pytest.raises(ConfigError, match=rf"item ids 1..{ds.n_items + 7} but the split has {ds.n_items} items"):
            recsift.train(ds, model, train_set=foreign, epochs=1)
    with pytest.raises(ConfigError, match="must be a recsift TrainingSet .* not list"):
        recsift.train(ds, "pop", train_set=[1, 2, 3])
    with pytest.raises(ConfigError, match="invalid training config: epochs: Input should be a valid integer"):
        recsift.train(ds, "pop", epochs="x")
