"""The CLI contract: JSON output, one clear error with exit code 2, and a real demo."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from recsift.cli import main


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err


def test_info_json_on_a_user_file(fixtures, capsys):
    code, out, _ = run_cli(["datasets", "info", str(fixtures / "seqlines" / "seq.txt"), "--json"], capsys)
    assert code == 0
    info = json.loads(out)
    assert (info["n_users"], info["n_items"], info["n_interactions"]) == (3, 5, 10)
    assert info["split"]["protocol"] == "loo" and info["split"]["test_cases"] == 2


@pytest.mark.dataset
def test_info_json_beauty(data_dir, capsys):
    code, out, _ = run_cli(["datasets", "info", "beauty", "--json", "--no-split"], capsys)
    assert code == 0
    info = json.loads(out)
    assert (info["n_users"], info["n_items"], info["n_interactions"]) == (22363, 12101, 198502)


@pytest.mark.parametrize("args,needle", [
    (["datasets", "info", "beautyy"], "unknown dataset 'beautyy'. Did you mean 'beauty'?"),
    (["datasets", "info", "/no/such/file.csv"], "no such file"),
    (["datasets", "info", "{fx}/csv_dates/clicks.csv", "--user-col", "nope"], "no column 'nope'"),
    (["datasets", "info", "{fx}/seqlines/seq.txt", "--split", "bogus"], "unknown split 'bogus'"),
    (["demo", "--budget", "1.5"], "(0, 1]"),
    (["demo", "--budget", "0"], "positive"),
    (["demo", "--models", "pop,sasrecc"], "unknown model 'sasrecc'"),
    (["train", "-d", "synthetic", "-m", "sasrec", "--param", "hidden_size=abc"],
     "model 'sasrec': parameter hidden_size='abc' is invalid: Input should be a valid integer"),
    (["curate", "-d", "synthetic", "--method", "ccs", "--param", "beta=abc", "--budget", "0.5", "--out", "{tmp}/o"],
     "give a value of type float (default 0.0)"),
])
def test_errors_are_one_message_and_exit_2(args, needle, fixtures, capsys, tmp_path):
    args = [a.replace("{fx}", str(fixtures)).replace("{tmp}", str(tmp_path)) for a in args]
    if args[0] == "demo":
        args += ["--out", str(tmp_path / "demo")]
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert needle in " ".join(err.split())
    assert "Traceback" not in err + out
    assert not (tmp_path / "demo").exists() and not (tmp_path / "o").exists()  # nothing written on a bad request


def test_empty_file_error(tmp_path, capsys):
    p = tmp_path / "empty.csv"
    p.write_text("")
    code, _, err = run_cli(["datasets", "info", str(p)], capsys)
    assert code == 2 and "empty" in err


def test_too_little_data_and_a_file_as_runs_dir_are_one_message(tmp_path, capsys):
    p = tmp_path / "one.csv"
    p.write_text("u,i\n1,5\n1,6\n1,7\n")  # one user, 3 interactions: no next-item sample under leave-one-out
    base = ["-d", str(p), "--user-col", "u", "--item-col", "i"]
    for args in (["curate", *base, "--method", "random", "--budget", "0.5", "--out", str(tmp_path / "o")],
                 ["train", *base, "-m", "gru4rec", "--epochs", "1"]):
        code, out, err = run_cli(args, capsys)
        assert code == 2 and "the training set is empty" in err and "from 4 interactions on" in " ".join(err.split())
        assert "Traceback" not in err + out
    assert not (tmp_path / "o").exists()
    (tmp_path / "afile").write_text("")
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(f"datasets: [synthetic]\ncurators: [random]\nbudgets: [0.5]\nmodels: [pop]\nseeds: [0]\n"
                   f"runs_dir: {tmp_path / 'afile'}\n")
    code, _, err = run_cli(["run", str(cfg)], capsys)
    assert code == 2 and "is a file; give a folder" in err


def test_missing_dataset_says_where_to_put_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECSIFT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RECSIFT_CACHE_DIR", str(tmp_path / "cache"))
    code, _, err = run_cli(["datasets", "info", "beauty"], capsys)
    assert code == 2
    assert "beauty/Beauty.txt" in err and str(tmp_path) in err and "RECSIFT_DATA_DIR" in err


def test_demo_runs_the_pipeline_and_writes_the_report(tmp_path, capsys):
    import pandas as pd

    d = tmp_path / "d"
    args = ["demo", "--out", str(d), "--users", "300", "--items", "80", "--json", "--seeds", "1", "--epochs", "1",
            "--budget", "0.3,0.6", "--curators", "random,el2n", "--models", "pop,gru4rec"]
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    res = json.loads(out)
    rows = {(r["curator"], r["budget"], r["model"]): r for r in res["rows"]}
    assert set(rows) == {("full", "1.0", m) for m in ("pop", "gru4rec")} | {
        (c, b, m) for c in ("random", "el2n") for b in ("0.3", "0.6") for m in ("pop", "gru4rec")}
    n = res["facts"]["train_samples"]
    assert rows[("random", "0.3", "pop")]["fraction_kept"] == int(0.3 * n) / n
    assert rows[("full", "1.0", "gru4rec")]["retained"] == 1.0
    # the runner's table and the report are in the runs folder; every curated row names its noisy share
    table = pd.read_csv(res["results"])
    assert len(table) == 10 and set(table["seed"]) == {0}
    assert 0 < rows[("el2n", "0.3", "pop")]["noisy_share"] < 1 and rows[("full", "1.0", "pop")]["noisy_share"] is None
    assert "NaN" not in out  # strict JSON
    page = (d / "report.html").read_text()
    assert res["report"] == str(d / "report.html") and 'id="main"' in page and 'data:image/png;base64,' in page
    # a second run is all cache hits: nothing trains again
    code, out, _ = run_cli(args, capsys)
    again = json.loads(out)
    assert code == 0 and again["ran"] == 0 and again["cached"] == res["steps"]
    assert again["rows"] == res["rows"]


def test_console_script_runs_as_a_process(fixtures):
    exe = os.path.join(os.path.dirname(sys.executable), "recsift")
    r = subprocess.run([exe, "datasets", "info", "nosuch"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown dataset" in r.stderr and "Traceback" not in r.stderr


def test_score_on_a_csv_passes_the_probe_and_file_options(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    from recsift.data.synthetic import generate

    inter = generate(120, 40, seed=1).interactions
    path = tmp_path / "clicks.csv"
    pd.DataFrame({"sid": inter.user, "pid": inter.item, "ts": inter.time}).to_csv(path, sep=";", index=False)
    code, out, err = run_cli(["score", "-d", str(path), "--user-col", "sid", "--item-col", "pid", "--time-col", "ts",
                              "--sep", ";", "-m", "gru4rec", "--epochs", "2", "--lr", "0.01", "--batch-size", "64",
                              "--seed", "3", "--score", "el2n,aum", "--out", str(tmp_path / "s.npz"), "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    cfg = summary["probe"]["config"]
    assert (summary["probe"]["probe"], cfg["epochs"], cfg["lr"], cfg["batch_size"], cfg["seed"]) == \
        ("gru4rec", 2, 0.01, 64, 3)
    with np.load(tmp_path / "s.npz") as z:
        assert len(z["score_el2n"]) == len(z["score_aum"]) == summary["n_samples"] > 0
        assert np.isfinite(z["score_el2n"]).all() and (z["score_el2n"] >= 0).all()


def test_curate_out_must_be_a_new_empty_or_earlier_curation_folder(tmp_path, capsys):
    """`--out .` or a folder of other files would scatter samples.npz among them: refused before any work;
    an earlier curation's folder is overwritten."""
    base = ["curate", "-d", "synthetic", "--method", "ccs", "--budget", "0.5", "--out"]
    (tmp_path / "afile").write_text("")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    for out, msg in ((tmp_path / "afile", "is a file; give a folder"),
                     (other, "already holds other files (notes.txt)")):
        code, stdout, err = run_cli([*base, str(out)], capsys)
        assert code == 2 and msg in " ".join(err.split()) and "Traceback" not in err + stdout
        assert "probe" not in stdout  # refused before the probe trained
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    again = ["curate", "-d", "synthetic", "--method", "random", "--budget", "0.5", "--out", str(tmp_path / "c")]
    assert run_cli(again, capsys)[0] == 0
    assert run_cli([*again[:-3], "0.3", *again[-2:]], capsys)[0] == 0  # same folder again: overwritten
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["curation.json", "samples.npz"]
    (tmp_path / "c" / ".samples.npz.x1y2.tmp").write_text("")  # left by a killed write: still our folder
    assert run_cli(again, capsys)[0] == 0
