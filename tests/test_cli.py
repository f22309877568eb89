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
])
def test_errors_are_one_message_and_exit_2(args, needle, fixtures, capsys, tmp_path):
    args = [a.replace("{fx}", str(fixtures)) for a in args]
    if args[0] == "demo":
        args += ["--out", str(tmp_path / "demo")]
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert needle in " ".join(err.split())
    assert "Traceback" not in err + out
    assert not (tmp_path / "demo").exists()  # nothing written on a bad request


def test_empty_file_error(tmp_path, capsys):
    p = tmp_path / "empty.csv"
    p.write_text("")
    code, _, err = run_cli(["datasets", "info", str(p)], capsys)
    assert code == 2 and "empty" in err


def test_missing_dataset_says_where_to_put_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECSIFT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RECSIFT_CACHE_DIR", str(tmp_path / "cache"))
    code, _, err = run_cli(["datasets", "info", "beauty"], capsys)
    assert code == 2
    assert "beauty/Beauty.txt" in err and str(tmp_path) in err and "RECSIFT_DATA_DIR" in err


def test_demo_trains_real_models_and_writes_results(tmp_path, capsys):
    code, out, _ = run_cli(["demo", "--out", str(tmp_path / "d"), "--users", "1500", "--items", "300", "--json",
                            "--models", "pop,itemknn,gru4rec", "--epochs", "2"], capsys)
    assert code == 0
    res = json.loads(out)
    rows = {(r["model"], r["train_data"]): r for r in res["rows"]}
    assert set(rows) == {(m, d) for m in ("pop", "itemknn", "gru4rec") for d in ("full", "random 0.5")}
    assert rows[("gru4rec", "full")]["epochs"] == 2
    # item-kNN learns the planted transitions: far above popularity
    assert rows[("itemknn", "full")]["test_recall@10"] > 2 * rows[("pop", "full")]["test_recall@10"]
    assert rows[("itemknn", "random 0.5")]["train_samples"] == res["facts"]["train_samples"] // 2
    on_disk = json.loads((tmp_path / "d" / "results.json").read_text())
    assert on_disk["rows"] == res["rows"]
    assert (tmp_path / "d" / "results.csv").read_text().count("\n") == 7


def test_console_script_runs_as_a_process(fixtures):
    exe = os.path.join(os.path.dirname(sys.executable), "recsift")
    r = subprocess.run([exe, "datasets", "info", "nosuch"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown dataset" in r.stderr and "Traceback" not in r.stderr
