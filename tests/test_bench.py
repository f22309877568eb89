"""bench/pruning_table.py bookkeeping: the summary arithmetic, --resume, --reuse and --render on small
hand-made results in a temporary results folder (no training)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
import _common  # noqa: E402
import pruning_table as pt  # noqa: E402

SETTINGS = dict(dataset="toy", epochs=100, patience=10, batch_size=256, lr=1e-3, probe_epochs=10,
                experts="core,gru4rec,narm", expert_epochs=20, metrics="recall@20")


def args(**kw) -> argparse.Namespace:
    base = dict(SETTINGS, budgets="0.5", seeds="0,1", models="gru4rec", curators="random,moe", suffix="",
                resume=False, reuse="", render=False, data_dir=None)
    return argparse.Namespace(**{**base, **kw})


def row(seed, curator, budget, r20, model="gru4rec"):
    return {"seed": seed, "model": model, "curator": curator, "budget": budget, "kept": 10, "fraction": budget,
            "recall@20": r20}


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(pt, "RESULTS", tmp_path)
    monkeypatch.setattr(_common, "RESULTS", tmp_path)
    monkeypatch.setattr(sys, "argv", ["bench/pruning_table.py", "--test"])
    return tmp_path


def save(folder: Path, name: str, rows: list[dict], **settings) -> None:
    payload = {"benchmark": name, "date": "2026-01-01 00:00 UTC", "command": "python earlier",
               "machine": {"cpu": "cpu", "cores": 2, "memory_gb": 1, "torch": "x"},
               "args": {**SETTINGS, **settings}, "rows": rows}
    (folder / f"{name}.json").write_text(json.dumps(payload))


def test_summary_is_the_per_seed_ratio_to_full():
    rows = [row(0, "full", 1.0, 0.50), row(1, "full", 1.0, 0.40), row(0, "random", 0.5, 0.25),
            row(1, "random", 0.5, 0.30)]
    table = {r["curator"]: r for r in pt.summarise(rows, ("recall@20",))}
    rnd = table["random"]
    assert rnd["n_seeds"] == 2 and rnd["recall@20"] == pytest.approx(0.275)
    assert rnd["recall@20_std"] == pytest.approx(0.0353553, abs=1e-6)
    # per-seed ratios .5 and .75 (not .275 / .45): mean .625, se = std / sqrt(2) = .125
    assert rnd["recall@20_retained"] == pytest.approx(0.625)
    assert rnd["recall@20_retained_se"] == pytest.approx(0.125)
    assert table["full"]["recall@20_retained"] == pytest.approx(1.0)


def test_rows_without_a_full_reference_show_no_ratio():
    """A --no-full run has no full-data rows: its "% of full" cells read "-" and it has no line
    against Random, instead of a KeyError or a NaN in the table."""
    rows = [row(0, "random", 0.5, 0.25), row(1, "random", 0.5, 0.30), row(0, "el2n", 0.5, 0.1),
            row(1, "el2n", 0.5, 0.2), row(0, "full", 1.0, 0.5)]  # seed 1 has no full row
    table = {r["curator"]: r for r in pt.summarise(rows[:4], ("recall@20",))}
    assert np.isnan(table["random"]["recall@20_retained"])
    md = pt.to_markdown(list(table.values()), ("recall@20",), args(), seeds="0,1")
    assert "| gru4rec | el2n | 0.5 | 10 | 2 | 15.00 ± 7.07 | - |" in md and "Against Random" not in md
    part = {r["curator"]: r for r in pt.summarise(rows, ("recall@20",))}
    assert np.isnan(part["el2n"]["recall@20_retained"])  # one seed without a reference: no mean


def test_resume_keeps_rows_and_refuses_other_settings(results):
    save(results, "pruning_table_toy", [row(0, "full", 1.0, 0.5)])
    a = args(resume=True)
    assert [pt.row_key(r) for r in pt.previous_rows(a)] == [(0, "gru4rec", "full", 1.0)]
    assert a.earlier_commands == ["python earlier"]
    with pytest.raises(SystemExit, match="epochs"):
        pt.previous_rows(args(resume=True, epochs=50))
    assert pt.previous_rows(args(resume=True, suffix="_other")) == []  # nothing earlier: start afresh


def test_reuse_copies_only_wanted_rows_whose_own_settings_match(results):
    # an earlier run with other MoE experts: its random and full rows are reusable, its MoE rows are not
    save(results, "earlier", [row(0, "full", 1.0, 0.5), row(0, "random", 0.5, 0.3), row(0, "random", 0.3, 0.2),
                              row(0, "moe", 0.5, 0.4), row(5, "random", 0.5, 0.1)],
         experts="core,gru4rec,srgnn")
    rows = pt.reused_rows(args(reuse="earlier"), [row(0, "full", 1.0, 0.5)])
    keys = [pt.row_key(r) for r in rows]
    # the full row was there already; budget 0.3 and seed 5 are not asked for; moe has other experts
    assert keys == [(0, "gru4rec", "full", 1.0), (0, "gru4rec", "random", 0.5)]
    assert rows[1]["reused_from"] == "earlier" and "reused_from" not in rows[0]
    # the same experts: the MoE row comes too; other retrain epochs: nothing comes
    save(results, "same", [row(0, "moe", 0.5, 0.4)])
    assert [r["curator"] for r in pt.reused_rows(args(reuse="same"), [])] == ["moe"]
    save(results, "short", [row(0, "random", 0.5, 0.3)], epochs=20)
    assert pt.reused_rows(args(reuse="short"), []) == []


def test_settings_each_row_depends_on():
    assert "experts" not in pt.row_settings("random") and "probe_epochs" not in pt.row_settings("full")
    assert "probe_epochs" in pt.row_settings("el2n") and "experts" not in pt.row_settings("d2")
    assert {"experts", "expert_epochs"} <= set(pt.row_settings("moe_k3"))
    # the data-only curators train neither a probe nor experts: their rows are reused across those settings
    assert pt.row_settings("popularity") == pt.row_settings("prefix_length") == pt.row_settings("random")


def test_write_then_render_rewrites_only_the_markdown(results):
    a = args(seeds="0")
    rows = [row(0, "full", 1.0, 0.5), {**row(0, "random", 0.5, 0.3), "reused_from": "earlier"}]
    pt.write(rows, ("recall@20",), a)
    md = (results / "pruning_table_toy.md").read_text()
    assert "| gru4rec | random | 0.5 | 10 | 1 | 30.00 ± 0.00 | 60.0 ± 0.0 |" in md
    assert "earlier: seed 0 gru4rec random 0.5" in md
    payload = json.loads((results / "pruning_table_toy.json").read_text())
    (results / "pruning_table_toy.md").write_text("stale")
    before = (results / "pruning_table_toy.json").read_text()
    r = args(render=True, epochs=1)  # --render takes the run's own settings, whatever the flags say
    pt.write(pt.previous_rows(r), ("recall@20",), r)
    assert (results / "pruning_table_toy.json").read_text() == before
    again = (results / "pruning_table_toy.md").read_text()
    assert again.startswith(f"# pruning_table_toy\n\n{payload['date']}") and "up to 100 epochs" in again
    with pytest.raises(SystemExit, match="no .* to render"):
        pt.previous_rows(args(render=True, suffix="_missing"))


def test_versus_random_is_the_difference_over_combined_standard_errors():
    rows = [row(0, "full", 1.0, 0.50), row(1, "full", 1.0, 0.50),
            row(0, "random", 0.3, 0.30), row(1, "random", 0.3, 0.32),  # retained .60, .64: se .02
            row(0, "moe", 0.3, 0.35), row(1, "moe", 0.3, 0.35),  # retained .70, .70: se 0
            row(0, "d2", 0.3, 0.40)]  # one seed: no comparison
    v = pt.versus_random(pt.summarise(rows, ("recall@20",)), "recall@20")
    assert [x["curator"] for x in v] == ["moe"]
    assert v[0]["diff"] == pytest.approx(0.08) and v[0]["z"] == pytest.approx(0.08 / 0.02)
    assert v[0]["n_seeds"] == 2


def test_a_pure_merge_writes_the_table_and_a_run_with_nothing_new_leaves_it(results, monkeypatch):
    main_args = ["--dataset", "synthetic", "--budgets", "0.5", "--seeds", "0,1", "--curators", "random",
                 "--epochs", "100", "--patience", "10", "--probe-epochs", "10", "--experts", "core,gru4rec,narm",
                 "--expert-epochs", "20", "--metrics", "recall@20"]
    settings = dict(dataset="synthetic")
    save(results, "pruning_table_synthetic", [row(0, "full", 1.0, 0.5), row(0, "random", 0.5, 0.4)], **settings)
    save(results, "pruning_table_synthetic_s1", [row(1, "full", 1.0, 0.5), row(1, "random", 0.5, 0.3)], **settings)
    monkeypatch.setattr(sys, "argv", ["pruning_table.py", *main_args, "--resume", "--reuse", "pruning_table_synthetic_s1"])
    pt.main()  # every row is there: nothing retrains, the copied rows are written
    merged = json.loads((results / "pruning_table_synthetic.json").read_text())
    assert sorted((r["seed"], r["curator"]) for r in merged["rows"]) == [(0, "full"), (0, "random"), (1, "full"),
                                                                         (1, "random")]
    assert "seed 1 gru4rec random 0.5" in (results / "pruning_table_synthetic.md").read_text()
    before = (results / "pruning_table_synthetic.json").read_text()
    monkeypatch.setattr(sys, "argv", ["pruning_table.py", *main_args, "--resume"])
    pt.main()  # nothing new: the result (its date and list of commands) stays as it was
    assert (results / "pruning_table_synthetic.json").read_text() == before


def test_routing_is_labelled_per_model_only_when_the_models_rows_differ():
    """The gate's routing belongs to the scorer: one entry per curator and budget, unless the
    retrained models' rows average different seeds; the footer lists the seeds the rows have."""
    def r(model, seed, share):
        return {**row(seed, "moe", 0.3, 0.5, model), "routing_share": {"core": share, "gru4rec": 1 - share}}

    full = [row(s, "full", 1.0, 1.0, m) for m in ("gru4rec", "sasrec") for s in (0, 1)]
    same = pt.summarise(full + [r(m, s, 0.6) for m in ("gru4rec", "sasrec") for s in (0, 1)], ("recall@20",))
    md = pt.to_markdown(same, ("recall@20",), args(), seeds="0,1")
    assert "): moe 0.3 core 0.60, gru4rec 0.40\n" in md + "\n" and "sasrec moe" not in md
    differ = pt.summarise(full + [r("gru4rec", 0, 0.6), r("gru4rec", 1, 0.4), r("sasrec", 0, 0.6)], ("recall@20",))
    md = pt.to_markdown(differ, ("recall@20",), args(seeds="0"), seeds="0,1")
    assert "gru4rec moe 0.3 core 0.50, gru4rec 0.50; sasrec moe 0.3 core 0.60, gru4rec 0.40" in md
    assert "\nseeds 0,1 (" in md


def test_dr4sr_summary_pairs_seeds_and_separates_recipes(results, monkeypatch):
    import dr4sr_summary as ds

    def run(seed, variant, r10, n10=0.03):
        return {"seed": seed, "model": "sasrec", "variant": variant,
                "test": {"recall@10": r10, "ndcg@10": n10, "recall@20": 2 * r10, "ndcg@20": n10}}

    def put(name, runs, epochs=200, patience=20, tau=10.0):
        (results / f"{name}.json").write_text(json.dumps(
            {"args": {"dataset": "beauty", "epochs": epochs, "patience": patience, "tau_init": tau}, "runs": runs}))

    put("a", [run(1, "original", 0.050), run(1, "dr4sr", 0.055)])
    put("b", [run(2, "original", 0.040), run(3, "dr4sr", 0.070)])
    put("c", [run(1, "doubled", 0.060)], epochs=100, patience=10)
    hist = {"edges": [0.0, 0.5, 1.0], "counts": [3, 1], "quantiles": {"0.5": 0.4}}
    put("d", [{**run(1, "dr4sr_plus", 0.052), "weight_histogram": hist}], tau=1.0)
    rows = {(r["variant"], r["cap"]): r for r in ds.summarise(ds.load_runs(["a", "b", "c", "d"]))}
    orig, regen = rows[("original", 200)], rows[("dr4sr", 200)]
    assert orig["seeds"] == [1, 2] and orig["recall@10"] == pytest.approx(0.045)
    assert orig["recall@10_std"] == pytest.approx(np.std([0.05, 0.04], ddof=1))
    # only seed 1 is measured on both: +10%, one paired seed (seed 3 has no original to pair with)
    assert regen["paired_seeds"] == 1 and regen["recall@10_vs_original"] == pytest.approx(0.10)
    # another recipe: compared with the original recipe that has the most seeds, and says so
    assert rows[("doubled", 100)]["original_recipe"] == "200 / 20"
    assert rows[("doubled", 100)]["recall@10_vs_original"] == pytest.approx(0.20)
    assert ("dr4sr_plus (tau 1)", 200) in rows
    # a fixed-epoch control (patience = cap) with fewer epochs is compared with the fixed-epoch original,
    # though the early-stopped original has more seeds
    put("e", [run(1, "original", 0.040)], patience=200)
    put("f", [run(1, "doubled", 0.050)], epochs=173, patience=200)
    fixed = {(r["variant"], r["cap"]): r for r in ds.summarise(ds.load_runs(["a", "b", "e", "f"]))}[("doubled", 173)]
    assert fixed["original_recipe"] == "200 / 200" and fixed["recall@10_vs_original"] == pytest.approx(0.25)
    # another γ / K is another regenerated set: a row of its own, labelled; the original data is not
    assert ds.label("dr4sr", {"gamma": 0.5, "k_memories": 5, "tau_init": 10.0}) == " (gamma 0.5)"
    assert ds.label("dr4sr_plus", {"gamma": 0.3, "k_memories": 3, "tau_init": 1.0}) == " (K 3, tau 1)"
    assert ds.label("original", {"gamma": 0.5, "k_memories": 3}) == ""
    assert ds.label("dr4sr", {}) == ""
    assert ds.label("no_diversity", {"gamma": 1.0, "restrictive_steps": 2}) == " (gamma 1, restrictive 2)"
    assert ds.label("patterns", {"gamma": 1.0}) == "" and ds.label("original_patterns", {"gamma": 1.0}) == ""
    assert "| beauty | sasrec | dr4sr | 200 / 20 | 2 (1, 3) |" in ds.table(list(rows.values()))
    with pytest.raises(SystemExit, match="no result"):
        ds.load_runs(["missing"])
    monkeypatch.setattr(sys, "argv", ["dr4sr_summary.py", "--runs", "a,b,c,d", "--name", "summary"])
    ds.main()  # the DR4SR+ run's weights are plotted and the table points to the plot
    assert (results / "summary_weights.png").stat().st_size > 0
    assert "1 DR4SR+ runs" in (results / "summary.md").read_text()


def test_dr4sr_resume_keeps_finished_runs_and_refuses_other_settings(results):
    import argparse

    import dr4sr

    settings = {"epochs": 200, "patience": 200, "regen_epochs": 40, "gamma": 0.3, "k_memories": 5,
                "bilevel_epochs": 30, "warmup_epochs": 10, "tau_init": 10.0}
    args = argparse.Namespace(dataset="beauty", tag="_fixed", **settings)
    assert dr4sr.previous(args) == ([], [])  # nothing to resume: a fresh run
    run = {"seed": 2023, "model": "sasrec", "variant": "original", "test": {"recall@10": 0.05}}
    regen = {"seed": 2023, "n_patterns": 10}
    (results / "dr4sr_beauty_fixed.json").write_text(json.dumps(
        {"args": {"dataset": "beauty", **settings}, "runs": [run], "regeneration": [regen]}))
    assert dr4sr.previous(args) == ([run], [regen])
    with pytest.raises(SystemExit, match="other settings .*'patience': \\(200, 20\\)"):
        dr4sr.previous(argparse.Namespace(**{**vars(args), "patience": 20}))


def test_kept_profile_describes_a_kept_set_and_joins_the_retained_accuracy(results, monkeypatch):
    import kept_profile as kp

    # 6 samples, targets 0 (x3), 1 (x2), 2 (x1); users 0, 0, 1, 1, 2, 2; prefix lengths 1..6
    targets = np.array([0, 0, 0, 1, 1, 2])
    pop = np.bincount(targets)[targets].astype(float)
    kept = np.array([True, True, False, False, False, True])
    got = kp.profile(kept, targets, np.array([0, 0, 1, 1, 2, 2]), np.arange(1.0, 7.0), pop)
    # kept popularities 3, 3, 1; the tail (at or below the 20% quantile of 1, 2, 2, 3, 3, 3, which is 2) is the
    # three samples of targets 1 and 2, of which the last is kept
    assert got == {"kept": 3, "median_pop": 3.0, "tail_kept": 1 / 3, "items_covered": 2 / 3, "users_present": 2 / 3,
                   "mean_prefix": (1 + 2 + 6) / 3}
    table = {"rows": [row(0, "full", 1.0, 0.5), row(0, "random", 0.5, 0.4), row(1, "random", 0.5, 0.1)]}
    assert kp.retained(table, "gru4rec", "random", 0.5, 0, "recall@20") == pytest.approx(80.0)
    assert kp.retained(table, "gru4rec", "random", 0.5, 1, "recall@20") is None  # seed 1 has no full-data row
    assert kp.retained(None, "gru4rec", "random", 0.5, 0, "recall@20") is None
    monkeypatch.setattr(kp, "RESULTS", results)
    monkeypatch.setattr(sys, "argv", ["kept_profile.py", "--table", "pruning_table_nope"])
    with pytest.raises(SystemExit, match="--table: no result pruning_table_nope"):
        kp.main()
    monkeypatch.setattr(sys, "argv", ["kept_profile.py", "--render"])
    with pytest.raises(SystemExit, match="--render: no .*kept_profile_beauty_0.5_s0.json"):
        kp.main()


def test_dr4sr_phase_cost_reports_time_and_peak_memory_per_phase():
    import dr4sr

    h = [{"bilevel": False, "seconds": 10.0, "peak_rss_mb": 900.0}, {"bilevel": False, "seconds": 12.0, "peak_rss_mb": 950.0},
         {"bilevel": True, "seconds": 13.0, "peak_rss_mb": 1100.0}, {"bilevel": True, "seconds": 15.0, "peak_rss_mb": 1140.0},
         {"bilevel": True, "seconds": 14.0, "peak_rss_mb": 1000.0}]
    c = dr4sr.phase_cost(h)
    assert c == {"plain_s_per_epoch": 11.0, "plain_peak_rss_mb": 950.0,
                 "bilevel_s_per_epoch": 14.0, "bilevel_peak_rss_mb": 1140.0}
    assert dr4sr.rss_change(c) == "peak RSS per epoch plain 950 MB, bi-level 1140 MB (+20%), "
    # a history without per-epoch peaks (older runs) makes no memory claim
    old = dr4sr.phase_cost([{k: v for k, v in e.items() if k != "peak_rss_mb"} for e in h])
    assert old["bilevel_peak_rss_mb"] is None and dr4sr.rss_change(old) == ""


def test_dr4sr_summary_correlates_the_weights_of_two_target_models(tmp_path):
    import dr4sr_summary as ds

    # samples 0-1 are mined patterns (weight 1 in both runs) and are left out; on the other four
    # the second run's weights rank the samples in the reverse order
    np.savez(tmp_path / "a.npz", weights=np.array([1, 1, 0.2, 0.4, 0.6, 0.8], np.float32))
    np.savez(tmp_path / "b.npz", weights=np.array([1, 1, 0.9, 0.7, 0.5, 0.3], np.float32))
    np.savez(tmp_path / "c.npz", weights=np.ones(3, np.float32))
    got = ds.weight_correlations({"sasrec": tmp_path / "a.npz", "gru4rec": tmp_path / "b.npz"})
    assert got == [{"a": "sasrec", "b": "gru4rec", "spearman": pytest.approx(-1.0), "n": 4}]
    with pytest.raises(SystemExit, match="different sizes"):
        ds.weight_correlations({"a": tmp_path / "a.npz", "c": tmp_path / "c.npz"})
    with pytest.raises(SystemExit, match="no file"):
        ds.weight_correlations({"a": tmp_path / "missing.npz"})


def test_dr4sr_resume_end_to_end_trains_only_the_missing_runs(results, monkeypatch):
    """A first run finishes 'original'; the same command with --resume and one more variant trains only that
    variant (train_model is called once) and the result holds both runs."""
    import dr4sr

    import recsift.train

    base = ["--dataset", "synthetic", "--models", "gru4rec", "--epochs", "1", "--seeds", "0", "--tag", "_t"]
    dr4sr.main(base + ["--variants", "original"])
    first = json.loads((results / "dr4sr_synthetic_t.json").read_text())["runs"]
    assert [(r["variant"], r["epochs_run"]) for r in first] == [("original", 1)]
    calls = []
    real = recsift.train.train_model

    def counting(split, model, cfg, **kw):
        calls.append(len(kw["train_set"]))
        return real(split, model, cfg, **kw)

    monkeypatch.setattr(recsift.train, "train_model", counting)
    dr4sr.main(base + ["--variants", "original,doubled", "--resume"])
    runs = json.loads((results / "dr4sr_synthetic_t.json").read_text())["runs"]
    assert [r["variant"] for r in runs] == ["original", "doubled"]
    assert runs[0] == first[0]  # kept as it was, not retrained
    assert calls == [2 * first[0]["n_train"]]  # one training, on the doubled set
    assert "| gru4rec | doubled | 0 |" in (results / "dr4sr_synthetic_t.md").read_text()


def stub_train(caps: list, params: list | None = None):
    """A `train_model` stand-in for bench/dr4sr.py's wiring tests: records each run's epoch cap (and model
    parameters) and returns a result that trained for all of them without stopping early."""
    from types import SimpleNamespace

    import dr4sr_summary as ds

    def fake_train(split, model, cfg, train_set=None, checkpoint=None, model_params=None):
        caps.append(cfg.epochs)
        if params is not None:
            params.append(model_params)
        hist = [{"epoch": e, "valid": {"ndcg@20": 0.1}} for e in range(cfg.epochs)]
        return SimpleNamespace(test={m: 0.1 for m in ds.METRICS}, best_epoch=0, history=hist,
                               extra={"stopped_early": False}, train_seconds_per_epoch=0.0, peak_rss_mb=1.0)

    return fake_train


def test_dr4sr_equal_samples_trains_the_doubled_control_for_the_regenerated_sets_samples(results, monkeypatch):
    """--equal-samples: the doubled control's epoch cap is set so that it sees as many samples as --epochs of
    the + DR4SR set; curation and training are stubbed (sizes 1.5x and 2x the original data), the wiring is real."""
    from types import SimpleNamespace

    import dr4sr
    import dr4sr_summary as ds

    import recsift.curators
    import recsift.train

    assert dr4sr.equal_sample_epochs(200, 227379, 262826) == 173 and dr4sr.equal_sample_epochs(1, 1, 10) == 1

    def fake_curate(full, method, budget, ctx, original_copies=1, **kw):
        n = len(full) * (2 if original_copies == 2 else 1.5)
        info = dict.fromkeys(("mine_seconds", "pretrain_seconds", "inference_seconds"), 0.0)
        return full.subset(np.arange(int(n)) % len(full)), SimpleNamespace(extra=info)

    caps = []
    monkeypatch.setattr(recsift.curators, "curate", fake_curate)
    monkeypatch.setattr(recsift.train, "train_model", stub_train(caps))
    dr4sr.main(["--dataset", "synthetic", "--models", "gru4rec", "--variants", "original,doubled", "--equal-samples",
                "--epochs", "4", "--seeds", "0", "--tag", "_eq"])
    assert caps == [4, 3]  # the original keeps --epochs; 4 epochs of 1.5n samples = 3 epochs of 2n
    runs = json.loads((results / "dr4sr_synthetic_eq.json").read_text())["runs"]
    assert [r.get("epochs_cap") for r in runs] == [None, 3] and runs[1]["cap_binds"]
    assert [r["cap"] for r in ds.load_runs(["dr4sr_synthetic_eq"])] == [4, 3]


def test_dr4sr_original_patterns_is_the_original_data_plus_the_mined_patterns(results):
    """The 'original_patterns' ablation (+ DR4SR without its regenerated sequences) trains on exactly the original
    set and the 'patterns' set together: its samples are the sum of theirs, and no regenerator is trained."""
    import dr4sr

    dr4sr.main(["--dataset", "synthetic", "--models", "gru4rec", "--variants", "original,patterns,original_patterns",
                "--epochs", "1", "--seeds", "0", "--tag", "_op"])
    out = json.loads((results / "dr4sr_synthetic_op.json").read_text())
    n = {r["variant"]: r["n_train"] for r in out["runs"]}
    assert n["patterns"] > 0 and n["original_patterns"] == n["original"] + n["patterns"]
    assert out["regeneration"] == []  # nothing was regenerated


def test_dr4sr_no_diversity_reports_its_own_regeneration(results, monkeypatch):
    """The no-diversity ablation regenerates with its own regenerator: its run records how many distinct
    sequences that gave (curation stubbed: the wiring from the curator's report to the table is what is tested)."""
    from types import SimpleNamespace

    import dr4sr

    import recsift.curators
    import recsift.train

    seen = []

    def fake_curate(full, method, budget, ctx, **kw):
        seen.append(kw.get("diversity"))
        info = {"pretrain_seconds": 12.0, "inference_seconds": 3.0, "n_regenerated": 77}
        return full, SimpleNamespace(extra=info)

    monkeypatch.setattr(recsift.curators, "curate", fake_curate)
    monkeypatch.setattr(recsift.train, "train_model", stub_train([]))
    dr4sr.main(["--dataset", "synthetic", "--models", "gru4rec", "--variants", "no_diversity", "--epochs", "1",
                "--seeds", "0", "--tag", "_nd"])
    assert seen == [False]
    run = json.loads((results / "dr4sr_synthetic_nd.json").read_text())["runs"][0]
    assert run["n_regenerated"] == 77 and run["pretrain_seconds"] == 12.0
    assert "77 distinct regenerated sequences" in (results / "dr4sr_synthetic_nd.md").read_text()


def test_dr4sr_model_param_reaches_the_target_training(results, monkeypatch):
    import dr4sr

    import recsift.train

    seen = []
    monkeypatch.setattr(recsift.train, "train_model", stub_train([], seen))
    dr4sr.main(["--dataset", "synthetic", "--models", "dr4sr_gnn", "--variants", "original", "--epochs", "1",
                "--seeds", "0", "--model-param", "graph_norm=row+col", "--model-param", "gnn_layers=2", "--tag", "_mp"])
    assert seen == [{"graph_norm": "row+col", "gnn_layers": 2}]
    args = json.loads((results / "dr4sr_synthetic_mp.json").read_text())["args"]
    assert args["model_param"] == ["graph_norm=row+col", "gnn_layers=2"]  # the result says which graph it used
    import dr4sr_summary as ds

    # the summary keeps it apart from (and never pairs it with) the default model's runs
    assert [r["model"] for r in ds.load_runs(["dr4sr_synthetic_mp"])] == ["dr4sr_gnn (graph_norm=row+col, gnn_layers=2)"]
    with pytest.raises(SystemExit, match="target training only"):
        dr4sr.main(["--dataset", "synthetic", "--variants", "dr4sr_plus", "--model-param", "gnn_layers=2"])


def test_gnn_step_times_both_graph_products_and_restores_the_default(results):
    import gnn_step

    gnn_step.main(["--dataset", "synthetic", "--rounds", "1", "--calls", "1"])
    out = json.loads((results / "gnn_step_synthetic.json").read_text())
    assert len(out["ms"]) == 4 and all(v[0] > 0 for v in out["ms"].values())
    md = (results / "gnn_step_synthetic.md").read_text()
    assert "| propagation (forward + backward) | scipy CSR (default) |" in md and "| whole step | torch.sparse.mm" in md


def test_gnn_graph_scale_measures_each_training_sets_graph(results):
    import gnn_graph_scale as gs
    import scipy.sparse as sp

    # hand case: A = 2I on 3 items (+ padding row 0) doubles every non-padding row per layer
    a = sp.diags([0.0, 2.0, 2.0, 2.0]).tocsr()
    x = np.ones((4, 2))
    x[0] = 0
    out = gs.graph_scale(a, x, 3)
    assert out["stretch"] == pytest.approx([2.0, 4.0, 8.0]) and out["row_sum"]["max"] == 2.0 and out["nnz"] == 3
    gs.main(["--dataset", "synthetic", "--regen-epochs", "1", "--layers", "2"])
    rows = json.loads((results / "gnn_graph_scale_synthetic.json").read_text())["rows"]
    assert [(r["training set"], r["norm"]) for r in rows] == [
        (t, n) for t in ("original", "+ DR4SR") for n in ("row", "row+col", "row_sum")]
    for plain, both, stochastic in (rows[:3], rows[3:]):
        # row+col adds the transpose's non-negative entries; row_sum's rows sum to 1
        assert both["row_sum"]["p50"] >= plain["row_sum"]["p50"] and plain["nnz"] == both["nnz"] == stochastic["nnz"]
        assert stochastic["row_sum"]["p50"] == pytest.approx(1.0, abs=1e-5)
        assert stochastic["row_sum"]["max"] == pytest.approx(1.0, abs=1e-5)
    assert rows[3]["samples"] > rows[0]["samples"] and all(len(r["stretch"]) == 2 for r in rows)
