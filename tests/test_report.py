"""The HTML report (recsift.report): built from a small real runs folder, checked against the
results table and the saved artifacts it reads, and robust to missing pieces.

One tiny grid (300 synthetic sessions; random, EL2N and MoE with two one-epoch experts at keep
50%; pop and GRU4Rec retrained for one epoch; two seeds) is run once per module.
"""
from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsift.experiment import ExperimentConfig, run_experiment
from recsift.report import RunsDirError, build_report

SECTIONS = ["curves", "main", "transfer", "cost", "embedding", "popularity", "agreement", "lookup"]
METRICS = ["recall@20", "mrr@20"]


class Page(HTMLParser):
    """Sections (id -> class), images, and table cells (table id -> rows of (text, attrs))."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: dict[str, str] = {}
        self.imgs: list[dict[str, str]] = []
        self.tables: dict[str, list[list[tuple[str, dict[str, str]]]]] = {}
        self.notes: dict[str, list[str]] = {}
        self._table = self._cell = self._section = None
        self._note = None
        self.external: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        for k in ("src", "href"):
            if re.match(r"(https?:)?//", a.get(k, "")):
                self.external.append(a[k])
        if tag == "section":
            self._section = a["id"]
            self.sections[a["id"]] = a.get("class", "")
        elif tag == "img":
            self.imgs.append(a)
        elif tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag == "td" and self._table:
            self._cell = ["", a]
        elif tag == "p" and "note" in a.get("class", ""):
            self._note = ""
        elif tag in ("link", "iframe"):
            self.external.append(tag)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[self._table][-1].append((self._cell[0], self._cell[1]))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "p" and self._note is not None:
            self.notes.setdefault(self._section, []).append(self._note)
            self._note = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data
        if self._note is not None:
            self._note += data


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    from recsift.data.synthetic import generate

    root = tmp_path_factory.mktemp("report")
    it = generate(300, 80, seed=0).interactions
    csv = root / "tiny.csv"
    pd.DataFrame({"session_id": it.user_ids[it.user], "item_id": it.item_ids[it.item], "timestamp": it.time}).to_csv(
        csv, index=False)
    cfg = {"name": "tiny report", "datasets": [{"name": str(csv), "label": "tiny"}],
           "curators": ["random", "el2n", {"name": "moe", "label": "moe", "params": {
               "experts": ["sasrec", "narm"], "expert_epochs": 1, "expert_patience": 1, "gate_epochs": 1}}],
           "budgets": [0.5], "models": ["pop", "gru4rec"], "seeds": [0, 1], "metrics": METRICS,
           "train": {"epochs": 1, "batch_size": 256}, "probe": {"train": {"epochs": 1, "batch_size": 256}},
           "runs_dir": str(root / "runs")}
    with pytest.MonkeyPatch.context() as mp:  # embed a sample smaller than the ~2,600 training samples
        mp.setattr("recsift.experiment.runner.EXPLAIN_MAX_EMBEDDED", 500)
        run_experiment(ExperimentConfig.from_dict(cfg))
    return root / "runs"


@pytest.fixture(scope="module")
def built(runs, tmp_path_factory) -> tuple[Path, Page]:
    out = build_report(runs, tmp_path_factory.mktemp("out") / "r.html")
    return out, Page(out.read_text())


def test_report_has_every_section_and_is_self_contained(built):
    out, page = built
    assert list(page.sections) == SECTIONS
    assert all(cls == "ok" for cls in page.sections.values()), page.sections
    assert page.external == []  # no network fetch: no external src/href, stylesheet link or frame
    assert 'name="viewport"' in out.read_text()  # readable on a narrow screen
    assert "@media (max-width" in out.read_text()
    # the transfer table: GRU4Rec is the probe of el2n (seen) and no expert of moe (unseen); pop is left out
    rows = {(r[1][0], r[3][0]): r[4][0] for r in page.tables["transfer"] if r}
    assert rows == {("el2n", "gru4rec"): "seen", ("moe", "gru4rec"): "unseen"}


def test_every_image_is_an_embedded_png_also_written_to_disk(built):
    out, page = built
    assert len(page.imgs) >= 5  # curves x 2 models, embedding, popularity, agreement
    for img in page.imgs:
        head, b64 = img["src"].split(",", 1)
        assert head == "data:image/png;base64"
        png = base64.b64decode(b64, validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
        assert (out.parent / "r-figures" / img["data-file"]).read_bytes() == png


def test_main_table_equals_mean_and_std_from_results_csv(built, runs):
    _, page = built
    df = pd.read_csv(runs / "results.csv", dtype={"budget": str})
    for model in ("pop", "gru4rec"):
        rows = [r for r in page.tables[f"main-tiny-{model}"] if r]
        assert [(r[0][0], r[1][0]) for r in rows] == [("full", "1.0"), ("random", "0.5"), ("el2n", "0.5"),
                                                      ("moe", "0.5")]
        for r in rows:
            g = df[(df["model"] == model) & (df["curator"] == r[0][0]) & (df["budget"] == r[1][0])]
            assert len(g) == 2
            for j, metric in enumerate([*METRICS, "retained"], start=3):
                text, attrs = r[j]
                vals = g[metric].to_numpy()
                mean, std = vals.mean(), vals.std(ddof=1)
                assert attrs["data-metric"] == metric
                assert float(attrs["data-mean"]) == pytest.approx(mean, rel=1e-12, abs=1e-15)
                assert float(attrs["data-std"]) == pytest.approx(std, rel=1e-12, abs=1e-15)
                scale, digits = (100, 1) if metric == "retained" else (1, 4)
                assert text == f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"
        # best per column within the budget: the highest mean among the curated rows, marked
        for j, metric in enumerate(METRICS, start=3):
            cur = [r for r in rows if r[0][0] != "full"]
            means = [float(r[j][1]["data-mean"]) for r in cur]
            marked = [i for i, r in enumerate(cur) if "best" in r[j][1].get("class", "")]
            assert marked == [i for i, m in enumerate(means) if m == max(means)]


def test_significance_is_wilcoxon_over_seed_averaged_per_user_metrics(built, runs):
    from scipy.stats import wilcoxon

    _, page = built
    df = pd.read_csv(runs / "results.csv", dtype={"budget": str, "retrain_step": str})

    def per_user(curator):
        keys = df[(df["model"] == "gru4rec") & (df["curator"] == curator)]["retrain_step"]
        arrays = []
        for k in keys:
            (folder,) = (runs / "steps" / "retrain").glob(f"*-{k}")
            with np.load(folder / "per_user.npz") as z:
                arrays.append(pd.Series(z["recall@20"], index=z["users"]))
        return pd.concat(arrays, axis=1).mean(axis=1)

    diff = (per_user("el2n") - per_user("random")).to_numpy()
    row = next(r for r in page.tables["main-tiny-gru4rec"] if r and r[0][0] == "el2n")
    cell = row[6][1]
    assert float(cell["data-diff"]) == pytest.approx(diff.mean(), abs=1e-12)
    assert float(cell["data-p"]) == pytest.approx(wilcoxon(diff).pvalue, rel=1e-9)
    assert int(cell["data-users"]) == len(diff) == 300


def test_lookup_counts_match_the_saved_curation(built, runs):
    out, _ = built
    blob = re.search(r'<script type="application/json" class="lookup-data">(.*?)</script>', out.read_text(), re.S)
    data = json.loads(blob.group(1))
    df = pd.read_csv(runs / "results.csv", dtype={"budget": str, "curation_step": str})
    key = df[(df["curator"] == "moe") & (df["seed"] == 0)]["curation_step"].iloc[0]
    (folder,) = (runs / "steps" / "curation").glob(f"*-{key}")
    with np.load(folder / "samples.npz") as s, np.load(folder / "explain.npz") as e:
        kept, reason, user, raw = s["kept"], s["reason"], e["user"], e["user_raw"]
    col = next(c for c in data["curations"] if c["label"] == "moe @ 0.5")
    assert data["ids"] == raw.tolist()
    for u in (0, 17, 299):
        assert data["n"][u] == int((user == u).sum())
        assert col["counts"][u] == np.bincount(reason[user == u], minlength=len(data["reasons"])).tolist()
        kept_n = sum(v for r, v in zip(data["reasons"], col["counts"][u]) if r.startswith("kept"))
        assert kept_n == int(kept[user == u].sum())


def test_missing_artifacts_give_skipped_sections_with_notes(runs, tmp_path):
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    for f in [*copy.glob("steps/curation/*/explain.npz"), *copy.glob("steps/retrain/*/per_user.npz"),
              *copy.glob("steps/curation/*/step.json")]:
        f.unlink()
    page = Page(build_report(copy).read_text())
    assert page.sections["main"] == "ok" and page.sections["curves"] == "ok" and page.sections["cost"] == "ok"
    for sid in ("transfer", "embedding", "popularity", "agreement"):
        assert page.sections[sid] == "skipped", sid
        assert page.notes.get(sid), sid
    assert any("skipped for 4 row(s): per-user metrics not saved" in n for n in page.notes["main"])
    assert any("explain.npz" in n for n in page.notes["popularity"])
    assert any("by training sample id" in n for n in page.notes["lookup"])  # falls back to sample ids
    (copy / "steps").rename(copy / "gone")  # every artifact missing: the tables still come from results.csv
    page = Page(build_report(copy).read_text())
    assert page.sections["main"] == "ok" and page.sections["lookup"] == "skipped"
    assert any("samples.npz not found" in n for n in page.notes["lookup"])


@pytest.mark.parametrize("case", ["missing", "empty", "file", "empty_csv"])
def test_a_folder_without_results_is_one_clear_error(tmp_path, case):
    folder = tmp_path / "runs"
    if case == "empty":
        folder.mkdir()
    elif case == "file":
        folder.write_text("x")
    elif case == "empty_csv":
        folder.mkdir()
        (folder / "results.csv").write_text("")
    with pytest.raises(RunsDirError) as e:
        build_report(folder)
    msg = str(e.value)
    assert str(folder) in msg and "recsift run exp.yaml" in msg
    assert not (folder / "report.html").exists() if folder.is_dir() else True


def test_cli_report_prints_the_path_and_errors_cleanly(runs, tmp_path, capsys):
    from recsift.cli import main

    out = tmp_path / "x" / "rep.html"
    with pytest.raises(SystemExit) as e:
        main(["report", str(runs), "--out", str(out)])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == str(out) and out.is_file()
    with pytest.raises(SystemExit) as e:
        main(["report", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "nowhere" in err and "recsift run exp.yaml" in err and "Traceback" not in err


def test_difference_from_random_is_paired_by_seed_with_its_standard_error(built, runs):
    _, page = built
    df = pd.read_csv(runs / "results.csv", dtype={"budget": str})
    g = df[df["model"] == "gru4rec"].set_index(["curator", "seed"])["retained"]
    diff = np.array([g[("moe", s)] - g[("random", s)] for s in (0, 1)])
    se = diff.std(ddof=1) / np.sqrt(2)
    row = next(r for r in page.tables["vs-random"] if r and r[1][0] == "gru4rec" and r[3][0] == "moe")
    assert float(row[4][1]["data-diff"]) == pytest.approx(diff.mean(), abs=1e-12)
    assert row[5][0] == f"{100 * se:.1f}" and row[6][0] == f"{diff.mean() / se:.1f}"
    assert row[7][0] == ("≥ 2 SE above random" if diff.mean() / se >= 2 else "≥ 2 SE below random"
                         if diff.mean() / se <= -2 else "within 2 SE of random")
    text = built[0].read_text()
    moe = 100 * g["moe"].mean()
    assert f"tiny, retrained gru4rec: moe at keep 0.5 retains {moe:.1f}% of full-data recall@20" in text


def test_save_explain_keeps_a_sample_of_probe_embeddings(tmp_path):
    from recsift.curators import CurationContext, curate
    from recsift.data import leave_one_out
    from recsift.data.synthetic import generate
    from recsift.experiment.runner import save_explain
    from recsift.train import TrainConfig

    split = leave_one_out(generate(120, 40, seed=1).interactions)
    full = split.training_set()
    ctx = CurationContext(split=split, seed=3, probe_config=TrainConfig(epochs=1, patience=None, batch_size=256))
    curate(full, "moderate", 0.5, ctx)
    z = np.load(save_explain(tmp_path / "explain.npz", split, full, ctx, seed=3, max_embedded=100))
    assert z["user"].tolist() == full.data.user.tolist() and z["item"].tolist() == full.data.targets.tolist()
    rows = z["embedding_rows"]
    assert len(rows) == 100 and np.all(np.diff(rows) > 0) and rows.max() < len(full)
    assert z["embedding"].dtype == np.float16 and z["embedding"].shape[0] == 100
    assert "agreement" not in z  # not a moe curation
    emb = ctx.score_inputs(full, embeddings=True).embeddings
    np.testing.assert_allclose(z["embedding"], emb[rows].astype(np.float16))


def test_a_broken_artifact_skips_only_its_sections(runs, tmp_path):
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    for f in copy.glob("steps/curation/*/explain.npz"):  # an explain.npz that lost its embedding rows
        with np.load(f) as z:
            arrays = {k: z[k] for k in z.files if k != "embedding_rows"}
        np.savez(f, **arrays)
    for f in copy.glob("steps/retrain/*/per_user.npz"):  # truncated files
        f.write_bytes(f.read_bytes()[:40])
    page = Page(build_report(copy).read_text())
    assert page.sections["embedding"] == "skipped" and "KeyError" in page.notes["embedding"][0]
    assert any("paired significance skipped for 4 row(s): per-user metrics unreadable" in n for n in page.notes["main"])
    assert all(page.sections[s] == "ok" for s in ("curves", "main", "transfer", "cost", "popularity", "agreement",
                                                  "lookup"))
    main = next(r for r in page.tables["main-tiny-gru4rec"] if r and r[0][0] == "el2n")
    assert main[6][0] == "–" and "unreadable" in main[6][1]["data-note"]


def test_the_embedding_sample_is_independent_of_the_random_curator(built, runs):
    """The map's sample must not share the random curator's RNG stream (default_rng(s) == default_rng([s, 0]))."""
    df = pd.read_csv(runs / "results.csv", dtype={"budget": str, "curation_step": str})
    for seed in (0, 1):
        keys = df[(df["seed"] == seed) & (df["curator"] != "full")].drop_duplicates("curator")
        folder = {c: next((runs / "steps" / "curation").glob(f"*-{k}")) for c, k in zip(keys["curator"],
                                                                                         keys["curation_step"])}
        with np.load(folder["moe"] / "explain.npz") as e, np.load(folder["random"] / "samples.npz") as s:
            rows, kept = e["embedding_rows"], s["kept"]
        assert len(rows) == 500 < len(kept)
        share = kept[rows].mean()  # about the kept fraction (0.5) for an independent sample
        assert abs(share - kept.mean()) < 0.1, share


def _browser() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def test_report_renders_in_headless_chromium(built, tmp_path):
    """The page opens in a real browser: every figure decodes, tables render, a narrow-screen
    screenshot is taken. Under CI a missing browser is a failure (.ci/run installs chromium)."""
    import os
    import subprocess

    browser = _browser()
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no chromium found: .ci/run installs Debian's chromium for this test")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    out, page = built
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000"]
    dom = subprocess.run([*flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=180).stdout
    total = int(re.search(r'data-images-total="(\d+)"', dom).group(1))
    loaded = int(re.search(r'data-images-loaded="(\d+)"', dom).group(1))
    assert total == len(page.imgs) > 0 and loaded == total
    assert int(re.search(r'data-tables-with-rows="(\d+)"', dom).group(1)) >= 4
    shot = tmp_path / "narrow.png"
    subprocess.run([*flags, "--window-size=390,1400", f"--screenshot={shot}", out.as_uri()], capture_output=True,
                   timeout=180)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
