"""The experiment runner: grid -> cached steps -> one results table (recsift.experiment).

One tiny grid (300 synthetic users; random and EL2N at keep 50%; pop and GRU4Rec for one
epoch; one seed) is run once per module and serves as the reference table for the cache,
resume, lock, process-pool and Ray checks.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsift.data import load_split
from recsift.errors import BudgetError, ConfigError, DatasetNotFoundError, UnknownNameError
from recsift.experiment import ExperimentConfig, plan_experiment, run_experiment
from recsift.experiment.cache import MARKER, is_done, read_marker
from recsift.experiment.runner import TIMING_COLUMNS

ENV = {**os.environ, "RECSIFT_THREADS": "1"}


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal tables up to timing and memory, which no two runs share."""
    drop = list(TIMING_COLUMNS)
    pd.testing.assert_frame_equal(a.drop(columns=drop).reset_index(drop=True),
                                  b.drop(columns=drop).reset_index(drop=True), check_exact=True)


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory) -> Path:
    from recsift.data.synthetic import generate

    it = generate(300, 80, seed=0).interactions
    path = tmp_path_factory.mktemp("data") / "tiny.csv"
    pd.DataFrame({"user_id": it.user_ids[it.user], "item_id": it.item_ids[it.item],
                  "timestamp": it.time}).to_csv(path, index=False)
    return path


def base_config(csv: Path, runs_dir: Path, **over) -> dict:
    return {"name": "tiny", "datasets": [str(csv)], "curators": ["random", "el2n"], "budgets": [0.5],
            "models": ["pop", "gru4rec"], "seeds": [0], "metrics": ["recall@20", "mrr@20"],
            "train": {"epochs": 1}, "probe": {"train": {"epochs": 1}}, "runs_dir": str(runs_dir), **over}


@pytest.fixture(scope="module")
def reference(tiny_csv, tmp_path_factory):
    """The tiny grid run once, uninterrupted, sequentially in this process."""
    runs = tmp_path_factory.mktemp("reference") / "runs"
    cfg = base_config(tiny_csv, runs)
    res = run_experiment(ExperimentConfig.from_dict(cfg))
    return {"cfg": cfg, "runs": runs, "result": res, "table": res.table.copy(),
            "csv": (runs / "results.csv").read_bytes()}


def test_grid_writes_one_row_per_cell(reference):
    res, t = reference["result"], reference["table"]
    assert res.n_steps == 8 and res.n_ran == 8  # 2 curations, 2 full-data + 4 curated retrains
    assert len(t) == 6  # (full + 2 curators x 1 budget) x 2 models x 1 seed
    assert list(t["curator"]) == ["full", "full", "random", "random", "el2n", "el2n"]
    assert set(t["model"]) == {"pop", "gru4rec"} and set(t["dataset"]) == {"tiny"}
    full = t[t["curator"] == "full"]
    assert (full["retained"] == 1.0).all() and (full["fraction_kept"] == 1.0).all()
    cur = t[t["curator"] != "full"]
    assert (cur["fraction_kept"] == 0.5).all() and (cur["kept_samples"] * 2 == cur["n_samples"]).all()
    for _, row in cur.iterrows():
        ref = full.loc[full["model"] == row["model"], "recall@20"].item()
        assert row["retained"] == pytest.approx(row["recall@20"] / ref)
    el2n = t[t["curator"] == "el2n"]
    assert (el2n["curation_seconds"] > 0).all() and (t["peak_rss_mb"] > 0).all()
    on_disk = pd.read_csv(res.table_path)
    assert len(on_disk) == 6 and list(on_disk.columns) == list(t.columns)
    step = Path(plan_experiment(ExperimentConfig.from_dict(reference["cfg"])).cells[-1].retrain.folder)
    with np.load(step / "per_user.npz") as z:  # per-user test metrics for significance tests
        assert set(z.files) == {"users", "recall@20", "mrr@20"} and len(z["users"]) == len(z["recall@20"]) == 300
    result = json.loads((step / "result.json").read_text())
    assert result["metrics"]["recall@20"] == el2n[el2n["model"] == "gru4rec"]["recall@20"].item()


def test_rerun_trains_nothing_and_a_new_budget_runs_only_its_steps(reference, monkeypatch):
    import recsift.curators
    import recsift.experiment.runner as runner
    import recsift.train

    def boom(*a, **k):
        raise AssertionError("a cached step was run again")

    cfg = reference["cfg"]
    with monkeypatch.context() as m:
        for mod, name in ((recsift.train, "train_model"), (recsift.curators, "curate"), (runner, "run_step")):
            m.setattr(mod, name, boom)
        again = run_experiment(ExperimentConfig.from_dict(cfg))
    assert again.n_ran == 0 and again.n_cached == 8
    assert (reference["runs"] / "results.csv").read_bytes() == reference["csv"]  # the identical table

    calls = {"train_model": 0, "curate": 0}
    for mod, name in ((recsift.train, "train_model"), (recsift.curators, "curate")):
        orig = getattr(mod, name)

        def counted(*a, _orig=orig, _name=name, **k):
            calls[_name] += 1
            return _orig(*a, **k)

        monkeypatch.setattr(mod, name, counted)
    more = run_experiment(ExperimentConfig.from_dict({**cfg, "budgets": [0.5, 0.3]}))
    # only curate@0.3 (random, el2n: its probe comes from the probe cache) and the 4 retrains on them
    assert calls == {"curate": 2, "train_model": 4}
    assert more.n_ran == 6 and all("0.3" in o["label"] for o in more.ran)
    t = more.table
    assert len(t) == 10
    _same(t[t["budget"] != "0.3"], reference["table"])


def test_killed_run_resumes_to_the_same_table(reference, tiny_csv, tmp_path):
    runs = tmp_path / "runs"
    cfg_path = tmp_path / "exp.json"
    cfg_path.write_text(json.dumps(base_config(tiny_csv, runs)))
    proc = subprocess.Popen([sys.executable, "-m", "recsift.cli", "run", str(cfg_path)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600  # generous: on a loaded machine the first step can take minutes
    while not list(runs.glob(f"steps/*/*/{MARKER}")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cfg = ExperimentConfig.from_dict(json.loads(cfg_path.read_text()))
    plan = plan_experiment(cfg)
    pending = plan.pending()
    assert 0 < len(pending) < len(plan.steps), "the run was not killed mid-way"
    # a half-written step: artifacts without the marker must never be read back
    victim = Path(next(s for s in pending if s.kind == "retrain").folder)
    victim.mkdir(parents=True, exist_ok=True)
    (victim / "result.json").write_text(json.dumps({"metrics": {"recall@20": 123.0, "mrr@20": 123.0}}))
    (victim / "per_user.npz").write_bytes(b"PK\x03\x04 truncated")
    res = run_experiment(cfg.with_overrides(workers=2))  # the rest in a process pool
    assert res.n_ran == len(pending)
    _same(res.table, reference["table"])
    assert all(is_done(s.folder) and not list(Path(s.folder).glob(".*.tmp")) for s in plan.steps)
    assert not list(runs.glob(".checkpoints/*"))  # per-epoch retrain checkpoints are gone once a step is done
    with np.load(victim / "per_user.npz") as z:
        assert len(z["users"]) == 300
    pool_pids = {read_marker(s.folder)["pid"] for s in pending}
    assert os.getpid() not in pool_pids


RACER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from recsift.experiment import ExperimentConfig, plan_experiment, run_step
    plan = plan_experiment(ExperimentConfig.load(sys.argv[1]))
    step = next(s for s in plan.steps if s.kind == "retrain" and s.upstream is None and s.inputs["model"] == "gru4rec")
    Path(sys.argv[2]).touch()
    while not Path(sys.argv[3]).exists():
        time.sleep(0.002)
    print(json.dumps({**run_step(step), "folder": step.folder}))
""")


def test_two_processes_on_one_step_run_it_once(tiny_csv, tmp_path):
    cfg_path = tmp_path / "exp.json"
    cfg_path.write_text(json.dumps(base_config(tiny_csv, tmp_path / "runs", train={"epochs": 5, "patience": None})))
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(cfg_path), str(tmp_path / f"ready{i}"), str(go)],
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    deadline = time.time() + 600
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.time() < deadline:
        time.sleep(0.01)
    go.touch()  # both past planning: release them onto the same step at the same moment
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=900)
        assert p.returncode == 0, stderr
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert sorted(o["status"] for o in outs) == ["cached", "ran"]
    assert next(o for o in outs if o["status"] == "cached")["waited"]  # it blocked on the lock, then re-checked
    folder = Path(outs[0]["folder"])
    marker = read_marker(folder)
    assert marker["key"] == outs[0]["key"] and marker["pid"] == next(o for o in outs if o["status"] == "ran")["pid"]
    result = json.loads((folder / "result.json").read_text())
    assert result["epochs_run"] == 5 and 0 <= result["metrics"]["recall@20"] <= 1
    with np.load(folder / "per_user.npz") as z:
        assert np.allclose(z["recall@20"].mean(), result["metrics"]["recall@20"])
    assert not list(folder.glob(".*.tmp"))


def test_ray_run_matches_local_run_in_worker_processes(reference, tmp_path):
    ray = pytest.importorskip("ray")
    cfg = ExperimentConfig.from_dict({**reference["cfg"], "curators": ["random"], "runs_dir": str(tmp_path / "runs"),
                                      "executor": "ray"})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        res = run_experiment(cfg)
    finally:
        ray.shutdown()
    assert res.n_ran == 5  # random@0.5, then 2 full-data and 2 curated retrains
    ref = reference["table"]
    _same(res.table, ref[ref["curator"].isin(["full", "random"])])
    pids = {read_marker(s.folder)["pid"] for s in plan_experiment(cfg).steps}
    assert os.getpid() not in pids  # every step ran in a Ray worker, not in this driver


@pytest.mark.parametrize("change,error,needle", [
    ({"curators": ["randon"]}, UnknownNameError, "Did you mean 'random'"),
    ({"budgets": [0.5, 1.5]}, BudgetError, "budget 1.5 is out of range"),
    ({"budgets": [100000]}, BudgetError, "larger than the 2700 samples"),
    ({"datasets": ["/no/such/clicks.csv"]}, DatasetNotFoundError, "not found"),
    ({"datasets": ["beauty"], "data_dir": "{tmp}/empty"}, DatasetNotFoundError, "dataset 'beauty' not found"),
    ({"budgetz": [0.5]}, ConfigError, "unknown key 'budgetz'. Did you mean 'budgets'"),
    ({"curators": [{"name": "random", "parms": {}}]}, ConfigError,
     "unknown key 'curators[0].parms'. Did you mean 'params'"),
    ({"models": ["gru4recc"]}, UnknownNameError, "Did you mean 'gru4rec'"),
    ({"metrics": ["recal@20"]}, UnknownNameError, "unknown metric 'recal'"),
    ({"train": {"epoch": 1}}, ConfigError, "unknown key 'train.epoch'. Did you mean 'epochs'"),
    ({"curators": [{"name": "ccs", "params": {"betta": 0.1}}]}, ConfigError, "unknown parameter"),
    ({"models": [{"name": "gru4rec", "params": {"hiden_size": 8}}]}, ConfigError, "Did you mean 'hidden_size'"),
    ({"models": [{"name": "gru4rec", "params": {"hidden_size": "big"}}]}, ConfigError,
     "models: model 'gru4rec': parameter hidden_size='big' is invalid"),
    ({"curators": [{"name": "ccs", "params": {"beta": "abc"}}]}, ConfigError,
     "curator 'ccs': parameter beta='abc' is invalid: Input should be a valid number"),
])
def test_bad_config_fails_before_any_work(tiny_csv, tmp_path, monkeypatch, change, error, needle):
    monkeypatch.delenv("RECSIFT_DATA_DIR", raising=False)
    monkeypatch.setenv("RECSIFT_CACHE_DIR", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    cfg = base_config(tiny_csv, runs)
    if "budgetz" in change:
        del cfg["budgets"]
    cfg.update({k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in change.items()})
    with pytest.raises(error, match=needle.replace("(", r"\(").replace("[", r"\[")):
        run_experiment(ExperimentConfig.from_dict(cfg))
    assert not runs.exists() and not (tmp_path / "cache").exists()


def test_cli_dry_run_and_error(reference, tmp_path, capsys):
    from recsift.cli import main

    cfg_path = tmp_path / "exp.yaml"
    import yaml

    cfg_path.write_text(yaml.safe_dump({**reference["cfg"], "budgets": [0.5, 0.7]}))
    with pytest.raises(SystemExit) as e:
        main(["run", str(cfg_path), "--dry-run", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert e.value.code == 0 and out["rows"] == 10 and len(out["steps"]) == 14
    assert out["cached"] == 8 and not any(s["cached"] for s in out["steps"] if "0.7" in s["step"])
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**reference["cfg"], "budgets": [1.5], "runs_dir": str(tmp_path / "r")}))
    with pytest.raises(SystemExit) as e:
        main(["run", str(bad)])
    assert e.value.code == 2 and "budget 1.5 is out of range" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_validate(path):
    """Every shipped example config parses and resolves (names, params, budgets) before any work."""
    from recsift.data import DATASETS
    from recsift.experiment.config import ExperimentConfig, resolve

    cfg = ExperimentConfig.load(path)
    staged = os.environ.get("RECSIFT_DATA_DIR")
    for d in cfg.datasets:
        if d.name != "synthetic" and d.name in DATASETS and not staged:
            pytest.skip(f"{path.name} needs the staged dataset {d.name} (set RECSIFT_DATA_DIR)")
    resolve(cfg)


def test_cf_grid_with_distill_cf_and_user_units(tmp_path):
    """A CF experiment: whole-user sampling and Distill-CF (a regenerated matrix, saved and read back)
    retrain ∞-AE; Distill-CF's fraction kept is synthetic users / real users."""
    from recsift.experiment import run_experiment
    from recsift.experiment.config import ExperimentConfig

    cfg = ExperimentConfig.from_dict({
        "datasets": [{"name": "synthetic", "split": "ratio"}],
        "curators": [{"name": "random", "unit": "user"}, {"name": "distill_cf", "params": {"steps": 1}}],
        "budgets": [0.05], "models": ["infae"], "metrics": ["ndcg@10"], "probe": {"model": "bpr"},
        "runs_dir": str(tmp_path / "runs")})
    table = run_experiment(cfg).table
    rows = {r["method"]: r for r in table.to_dict("records")}
    n_real = load_split("synthetic", split="ratio").n_users
    assert rows["distill_cf"]["fraction_kept"] == pytest.approx(int(0.05 * n_real) / n_real)
    assert rows["random"]["fraction_kept"] < 0.1 and rows["full"]["fraction_kept"] == 1.0
    assert 0 < rows["distill_cf"]["ndcg@10"] <= 1
    with pytest.raises(Exception, match="probe"):  # distill_cf needs matrices: a sequential probe is refused
        from recsift.experiment.config import resolve

        resolve(ExperimentConfig.from_dict({**cfg.model_dump(mode="json"), "probe": {"model": "gru4rec"}}))
